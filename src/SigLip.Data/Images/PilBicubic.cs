namespace SigLip.Data.Images;

/// <summary>
/// Bicubic resampling as Pillow's <c>Image.resize(size, Image.BICUBIC)</c> does it (libImaging/Resample.c),
/// which is what HF's SiglipImageProcessor calls: a separable convolution, horizontal pass then
/// vertical pass, with
/// - the Keys cubic kernel with a = -0.5 (Catmull-Rom): |x| &lt; 1: (a+2)|x|^3 - (a+3)|x|^2 + 1;
///   1 &lt;= |x| &lt; 2: a(|x|^3 - 5|x|^2 + 8|x| - 4); else 0;
/// - when shrinking by a factor s &gt; 1 the kernel is stretched by s (support 2s), so every source pixel
///   is weighed in (antialiasing); when enlarging the support stays 2;
/// - weights normalised to sum 1, then turned into 22-bit fixed point, sums rounded and clamped to
///   0..255 after each pass (the intermediate image is 8-bit, as in Pillow).
/// Pixel centres: output pixel i samples the source at (i + 0.5) * s - 0.5.
/// </summary>
public static class PilBicubic
{
    private const int PrecisionBits = 32 - 8 - 2;

    public static double Kernel(double x)
    {
        const double a = -0.5;
        if (x < 0) x = -x;
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }

    public static RgbImage Resize(RgbImage image, int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"Target size {width}x{height} must be positive.");
        var current = image;
        if (width != image.Width) current = Horizontal(current, width);
        if (height != image.Height) current = Vertical(current, height);
        return ReferenceEquals(current, image) ? image with { Pixels = (byte[])image.Pixels.Clone() } : current;
    }

    /// <summary>The normalised float weights of one axis: for output i, the first source index and its weights.</summary>
    public static (int[] First, double[][] Weights) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = 2.0 * filterScale;
        var first = new int[outSize];
        var weights = new double[outSize][];
        for (int i = 0; i < outSize; i++)
        {
            double center = (i + 0.5) * scale;
            // (int) truncates toward zero as Pillow's C cast does.
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
            var k = new double[Math.Max(xmax, 0)];
            double sum = 0;
            for (int x = 0; x < k.Length; x++)
            {
                k[x] = Kernel((x + xmin - center + 0.5) / filterScale);
                sum += k[x];
            }
            if (sum != 0) for (int x = 0; x < k.Length; x++) k[x] /= sum;
            first[i] = xmin;
            weights[i] = k;
        }
        return (first, weights);
    }

    private static (int[] First, int[][] Fixed) FixedCoefficients(int inSize, int outSize)
    {
        var (first, weights) = Coefficients(inSize, outSize);
        var fixedWeights = weights.Select(k => k.Select(w => w < 0
            ? (int)(-0.5 + w * (1 << PrecisionBits))
            : (int)(0.5 + w * (1 << PrecisionBits))).ToArray()).ToArray();
        return (first, fixedWeights);
    }

    private static byte Clip8(int value)
    {
        int v = value >> PrecisionBits; // arithmetic shift: floor, as in C for the values that occur
        return (byte)Math.Clamp(v, 0, 255);
    }

    private static RgbImage Horizontal(RgbImage src, int outWidth)
    {
        var (first, k) = FixedCoefficients(src.Width, outWidth);
        var dst = new byte[outWidth * src.Height * 3];
        for (int y = 0; y < src.Height; y++)
        {
            int row = y * src.Width * 3;
            for (int xx = 0; xx < outWidth; xx++)
            {
                int s0 = 1 << (PrecisionBits - 1), s1 = s0, s2 = s0;
                var w = k[xx];
                int p = row + first[xx] * 3;
                for (int x = 0; x < w.Length; x++, p += 3)
                {
                    s0 += src.Pixels[p] * w[x];
                    s1 += src.Pixels[p + 1] * w[x];
                    s2 += src.Pixels[p + 2] * w[x];
                }
                int o = (y * outWidth + xx) * 3;
                dst[o] = Clip8(s0); dst[o + 1] = Clip8(s1); dst[o + 2] = Clip8(s2);
            }
        }
        return new RgbImage(outWidth, src.Height, dst);
    }

    private static RgbImage Vertical(RgbImage src, int outHeight)
    {
        var (first, k) = FixedCoefficients(src.Height, outHeight);
        int stride = src.Width * 3;
        var dst = new byte[src.Width * outHeight * 3];
        for (int yy = 0; yy < outHeight; yy++)
        {
            var w = k[yy];
            for (int x = 0; x < src.Width; x++)
            {
                int s0 = 1 << (PrecisionBits - 1), s1 = s0, s2 = s0;
                int p = first[yy] * stride + x * 3;
                for (int y = 0; y < w.Length; y++, p += stride)
                {
                    s0 += src.Pixels[p] * w[y];
                    s1 += src.Pixels[p + 1] * w[y];
                    s2 += src.Pixels[p + 2] * w[y];
                }
                int o = (yy * src.Width + x) * 3;
                dst[o] = Clip8(s0); dst[o + 1] = Clip8(s1); dst[o + 2] = Clip8(s2);
            }
        }
        return new RgbImage(src.Width, outHeight, dst);
    }
}
