using SigLip.Data.Images;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Evaluation;
using SigLip.Reference.IO;
using SkiaSharp;

namespace SigLip.Data;

/// <summary>How images are brought to the model's size.</summary>
public enum ImageResampler
{
    /// <summary>Pillow's bicubic (Keys a = -0.5, kernel stretched when shrinking): what HF's SiglipImageProcessor does. Default.</summary>
    PilBicubic,
    /// <summary>SkiaSharp's cubic sampler with Catmull-Rom weights (B = 0, C = 1/2): the same kernel, but never stretched, so shrinking aliases.</summary>
    SkiaCatmullRom,
    /// <summary>SkiaSharp's cubic sampler with Mitchell-Netravali weights (B = C = 1/3): smoother, not what HF does.</summary>
    SkiaMitchell,
}

/// <summary>What was wrong with an image that could not be loaded (a folder counts its skipped images by it).</summary>
public enum ImageProblem
{
    /// <summary>The bytes are not a whole image in a format the decoder knows.</summary>
    Undecodable,
    /// <summary>No file at the path.</summary>
    Missing,
    /// <summary>The file exists but cannot be read (permissions, an I/O error).</summary>
    Unreadable,
    /// <summary>The image is larger than the loader accepts.</summary>
    TooLarge,
}

/// <summary>Thrown when an image cannot be decoded; the message names the file and says why, <see cref="Problem"/> says what kind of problem it is.</summary>
public sealed class ImageDecodeException(string message, Exception? inner = null, ImageProblem problem = ImageProblem.Undecodable) : Exception(message, inner)
{
    public ImageProblem Problem { get; } = problem;
}

/// <summary>
/// Loads images as SigLIP's HF image processor prepares them: decode (SkiaSharp: JPEG, PNG, WebP, GIF,
/// BMP, ICO, WBMP, HEIF where the platform has it), convert to RGB (grey is repeated, alpha is dropped
/// without blending, as Pillow's <c>convert("RGB")</c> does), resize to size x size (no crop, aspect
/// not kept) with bicubic, rescale by 1/255 and normalise with mean 0.5 and std 0.5 to [-1, 1].
/// Rescale and normalise run in float32 as HF does (its pixel_values are float32), then widen to float64.
/// EXIF orientation is not applied (neither Pillow's resize nor HF applies it).
/// </summary>
public sealed class ImageLoader
{
    public ImageLoader(int imageSize, ImageResampler resampler = ImageResampler.PilBicubic)
    {
        if (imageSize <= 0) throw new ArgumentOutOfRangeException(nameof(imageSize), $"Image size must be positive, got {imageSize}.");
        ImageSize = imageSize;
        Resampler = resampler;
    }

    public int ImageSize { get; }
    public ImageResampler Resampler { get; }

    /// <summary>Pixel values [3, S, S] in [-1, 1] of the image file at <paramref name="path"/>.</summary>
    public Tensor Load(string path) => ToPixelValues(Resize(Decode(path), ImageSize, ImageSize, Resampler));

    /// <summary>Pixel values [3, S, S] of an encoded image held in memory.</summary>
    public Tensor Load(byte[] encoded, string source) => ToPixelValues(Resize(Decode(encoded, source), ImageSize, ImageSize, Resampler));

    /// <summary>
    /// L2-normalised image embeddings [N, D] of image files, decoded and embedded a batch at a time
    /// (<see cref="Embeddings.OfImages(ISiglipModel, int, Func{int, int, Tensor}, int)"/>); an unreadable file is an error naming it.
    /// </summary>
    public Tensor Embed(ISiglipModel model, IReadOnlyList<string> paths, int batchSize = 16)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(paths);
        if (ImageSize != model.Config.Vision.ImageSize)
            throw new ArgumentException($"The image loader makes {ImageSize}x{ImageSize} images but the model's vision_config.image_size is {model.Config.Vision.ImageSize}.");
        return Embeddings.OfImages(model, paths.Count, (start, count) => LoadBatch(paths.Skip(start).Take(count).ToList()), batchSize);
    }

    /// <summary>Pixel values [B, 3, S, S] of several files.</summary>
    public Tensor LoadBatch(IReadOnlyList<string> paths) => Stack(paths.Select(Load).ToList(), ImageSize);

    /// <summary>Stacks [3, S, S] tensors into [B, 3, S, S].</summary>
    public static Tensor Stack(IReadOnlyList<Tensor> images, int imageSize)
    {
        int per = 3 * imageSize * imageSize;
        var data = new double[images.Count * per];
        for (int b = 0; b < images.Count; b++)
        {
            if (images[b].Size != per) throw new ArgumentException($"Image {b} has shape {Tensor.ShapeToString(images[b].Shape)}; expected [3, {imageSize}, {imageSize}].");
            Array.Copy(images[b].Data, 0, data, b * per, per);
        }
        return new Tensor([images.Count, 3, imageSize, imageSize], data);
    }

    public static RgbImage Decode(string path)
    {
        if (!File.Exists(path)) throw new ImageDecodeException($"{path}: no such image file.", null, ImageProblem.Missing);
        // A FIFO would block, a device such as /dev/zero never end: only a regular file is read.
        if (InputFile.Problem(path) is { } notAFile) throw new ImageDecodeException($"{path}: {notAFile}; expected an image file.", null, ImageProblem.Unreadable);
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { throw new ImageDecodeException($"{path}: cannot be read ({ex.Message}).", ex, ImageProblem.Unreadable); }
        return Decode(bytes, path);
    }

    /// <summary>
    /// Decodes to 8-bit RGB; throws <see cref="ImageDecodeException"/> naming <paramref name="source"/> when the data is not a whole image,
    /// <see cref="ImageLibraryException"/> when SkiaSharp's native library cannot be loaded (no image could be decoded).
    /// </summary>
    public static RgbImage Decode(byte[] encoded, string source)
    {
        if (encoded.Length == 0) throw new ImageDecodeException($"{source}: the file is empty.");
        // SkiaSharp is used in its own method: its native library is loaded (and fails) inside that call, caught here.
        try { return DecodeWithSkia(encoded, source); }
        catch (Exception ex) when (ImageLibraryException.Translate(ex, $"{source}: cannot decode images") is { } library) { throw library; }
    }

    private static RgbImage DecodeWithSkia(byte[] encoded, string source)
    {
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data) ?? throw new ImageDecodeException($"{source}: not an image SkiaSharp can decode (expected JPEG, PNG, WebP, GIF, BMP or ICO).");
        var info = codec.Info;
        if (info.Width <= 0 || info.Height <= 0) throw new ImageDecodeException($"{source}: the image has size {info.Width}x{info.Height}.");
        if ((long)info.Width * info.Height > 100_000_000) throw new ImageDecodeException($"{source}: {info.Width}x{info.Height} pixels is more than the 100 megapixels this loader accepts.", null, ImageProblem.TooLarge);
        // Unpremultiplied RGBA: the stored colour of a transparent pixel is kept, as Pillow keeps it.
        var target = new SKImageInfo(info.Width, info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[target.BytesSize];
        SKCodecResult result;
        unsafe
        {
            fixed (byte* p = rgba) result = codec.GetPixels(target, (IntPtr)p);
        }
        if (result != SKCodecResult.Success)
            throw new ImageDecodeException($"{source}: decoding failed ({result}{(result == SKCodecResult.IncompleteInput ? ": the file is truncated" : "")}).");
        var rgb = new byte[info.Width * info.Height * 3];
        for (int i = 0, j = 0; j < rgb.Length; i += 4, j += 3)
        {
            rgb[j] = rgba[i]; rgb[j + 1] = rgba[i + 1]; rgb[j + 2] = rgba[i + 2];
        }
        return new RgbImage(info.Width, info.Height, rgb);
    }

    public static RgbImage Resize(RgbImage image, int width, int height, ImageResampler resampler) => resampler switch
    {
        ImageResampler.PilBicubic => PilBicubic.Resize(image, width, height),
        ImageResampler.SkiaCatmullRom => SkiaResize(image, width, height, catmullRom: true),
        ImageResampler.SkiaMitchell => SkiaResize(image, width, height, catmullRom: false),
        _ => throw new ArgumentOutOfRangeException(nameof(resampler), resampler, "Unknown resampler."),
    };

    // Every SkiaSharp member (the resampler included) is touched inside the try, so that whichever first needs
    // the native library, its failure is translated here.
    private static RgbImage SkiaResize(RgbImage image, int width, int height, bool catmullRom)
    {
        try { return SkiaScale(image, width, height, catmullRom ? SKCubicResampler.CatmullRom : SKCubicResampler.Mitchell); }
        catch (Exception ex) when (ImageLibraryException.Translate(ex, "cannot resize images with SkiaSharp") is { } library) { throw library; }
    }

    private static RgbImage SkiaScale(RgbImage image, int width, int height, SKCubicResampler cubic)
    {
        var rgba = new byte[image.Width * image.Height * 4];
        for (int i = 0, j = 0; j < image.Pixels.Length; i += 4, j += 3)
        {
            rgba[i] = image.Pixels[j]; rgba[i + 1] = image.Pixels[j + 1]; rgba[i + 2] = image.Pixels[j + 2]; rgba[i + 3] = 255;
        }
        var srcInfo = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var dstInfo = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var outRgba = new byte[dstInfo.BytesSize];
        unsafe
        {
            fixed (byte* s = rgba)
            fixed (byte* d = outRgba)
            {
                using var src = new SKPixmap(srcInfo, (IntPtr)s, srcInfo.RowBytes);
                using var dst = new SKPixmap(dstInfo, (IntPtr)d, dstInfo.RowBytes);
                if (!src.ScalePixels(dst, new SKSamplingOptions(cubic)))
                    throw new InvalidOperationException($"SkiaSharp could not scale a {image.Width}x{image.Height} image to {width}x{height}.");
            }
        }
        var rgb = new byte[width * height * 3];
        for (int i = 0, j = 0; j < rgb.Length; i += 4, j += 3)
        {
            rgb[j] = outRgba[i]; rgb[j + 1] = outRgba[i + 1]; rgb[j + 2] = outRgba[i + 2];
        }
        return new RgbImage(width, height, rgb);
    }

    /// <summary>[3, H, W]: value/255 (float64 product rounded to float32, as HF), then (x - 0.5) / 0.5 in float32.</summary>
    public static Tensor ToPixelValues(RgbImage image)
    {
        int hw = image.Width * image.Height;
        var data = new double[3 * hw];
        for (int p = 0; p < hw; p++)
            for (int c = 0; c < 3; c++)
            {
                float rescaled = (float)(image.Pixels[p * 3 + c] * (1.0 / 255.0));
                data[c * hw + p] = (rescaled - 0.5f) / 0.5f;
            }
        return new Tensor([3, image.Height, image.Width], data);
    }
}
