using SigLip.Data;
using SigLip.Data.Images;
using SkiaSharp;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Data;

public sealed class ImageLoaderTests(ITestOutputHelper output)
{
    [Fact]
    public void Png_decodes_to_the_exact_pixels()
    {
        using var bmp = TestImages.Pattern(13, 7, seed: 3);
        var img = ImageLoader.Decode(TestImages.Png(bmp), "pattern.png");
        Assert.Equal((13, 7), (img.Width, img.Height));
        for (int y = 0; y < 7; y++)
            for (int x = 0; x < 13; x++)
            {
                var c = bmp.GetPixel(x, y);
                Assert.Equal((c.Red, c.Green, c.Blue), (img[x, y, 0], img[x, y, 1], img[x, y, 2]));
            }
    }

    [Fact]
    public void Jpeg_decodes_close_to_the_original()
    {
        using var bmp = new SKBitmap(new SKImageInfo(32, 24, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        bmp.Erase(new SKColor(200, 60, 30));
        var img = ImageLoader.Decode(TestImages.Jpeg(bmp, 100), "flat.jpg");
        Assert.Equal((32, 24), (img.Width, img.Height));
        int worst = img.Pixels.Select((v, i) => Math.Abs(v - (i % 3 == 0 ? 200 : i % 3 == 1 ? 60 : 30))).Max();
        Assert.True(worst <= 3, $"a flat JPEG (quality 100) decoded {worst} levels away from its colour");
    }

    [Fact]
    public void Grey_images_become_rgb_and_alpha_is_dropped_without_blending()
    {
        using var grey = new SKBitmap(new SKImageInfo(4, 3, SKColorType.Gray8, SKAlphaType.Opaque));
        grey.Erase(new SKColor(90, 90, 90));
        var g = ImageLoader.Decode(TestImages.Png(grey), "grey.png");
        Assert.All(g.Pixels, v => Assert.Equal(90, v));

        // Pixel 0 fully transparent with a colour stored anyway, pixel 1 opaque, pixel 2 half transparent.
        var a = ImageLoader.Decode(TestImages.RawRgbaPng(3, 1, [200, 100, 50, 0, 10, 20, 30, 255, 90, 180, 240, 128]), "alpha.png");
        Assert.Equal(new byte[] { 200, 100, 50, 10, 20, 30, 90, 180, 240 }, a.Pixels); // Pillow's convert("RGB") keeps stored colours
    }

    [Fact]
    public void Broken_files_throw_image_decode_exceptions_naming_the_file()
    {
        using var bmp = TestImages.Pattern(64, 64);
        byte[] jpeg = TestImages.Jpeg(bmp);
        var truncated = Assert.Throws<ImageDecodeException>(() => ImageLoader.Decode(jpeg[..(jpeg.Length / 2)], "half.jpg"));
        Assert.Contains("half.jpg", truncated.Message);
        output.WriteLine(truncated.Message);
        var garbage = Assert.Throws<ImageDecodeException>(() => ImageLoader.Decode("not an image at all"u8.ToArray(), "notes.jpg"));
        Assert.Contains("notes.jpg", garbage.Message);
        Assert.Throws<ImageDecodeException>(() => ImageLoader.Decode([], "empty.png"));
        var missing = Assert.Throws<ImageDecodeException>(() => ImageLoader.Decode("/nonexistent/cat.jpg"));
        Assert.Contains("/nonexistent/cat.jpg", missing.Message);
    }

    [Fact]
    public void Pil_bicubic_kernel_is_keys_with_a_minus_one_half()
    {
        // Catmull-Rom values: k(0) = 1, k(1) = k(2) = 0, k(1/2) = 9/16, k(3/2) = -1/16.
        Assert.Equal(1.0, PilBicubic.Kernel(0));
        Assert.Equal(0.0, PilBicubic.Kernel(1));
        Assert.Equal(0.0, PilBicubic.Kernel(-2));
        Assert.Equal(9.0 / 16, PilBicubic.Kernel(0.5), 15);
        Assert.Equal(-1.0 / 16, PilBicubic.Kernel(-1.5), 15);
        Assert.Equal(0.0, PilBicubic.Kernel(2.5));
    }

    [Fact]
    public void Pil_bicubic_weights_sum_to_one_and_cover_the_stretched_support()
    {
        foreach (var (inSize, outSize) in new[] { (17, 5), (5, 17), (224, 224), (640, 224), (3, 1), (1, 9) })
        {
            var (first, weights) = PilBicubic.Coefficients(inSize, outSize);
            for (int i = 0; i < outSize; i++)
            {
                Assert.Equal(1.0, weights[i].Sum(), 12);
                Assert.InRange(first[i], 0, inSize - 1);
                Assert.InRange(first[i] + weights[i].Length, 1, inSize);
            }
            double scale = Math.Max((double)inSize / outSize, 1);
            Assert.True(weights.Max(w => w.Length) <= (int)Math.Ceiling(2 * scale) * 2 + 1);
        }
    }

    [Fact]
    public void Pil_bicubic_shrinks_a_row_by_two_as_computed_by_hand()
    {
        // [0, 0, 255, 255] -> 2 pixels. Scale 2, support 4; output 0 is centred at 1.0 and weighs source
        // pixels 0..3 by k(-1/4), k(1/4), k(3/4), k(5/4) (kernel arguments divided by the scale 2):
        // 0.8671875, 0.8671875, 0.2265625, -0.0703125, sum 1.890625; 255 * 0.15625 / 1.890625 = 21.07 -> 21.
        var row = new RgbImage(4, 1, [0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255]);
        var half = PilBicubic.Resize(row, 2, 1);
        Assert.Equal(new byte[] { 21, 21, 21, 234, 234, 234 }, half.Pixels);
    }

    [Theory]
    [InlineData(ImageResampler.PilBicubic)]
    [InlineData(ImageResampler.SkiaCatmullRom)]
    [InlineData(ImageResampler.SkiaMitchell)]
    public void A_constant_image_stays_constant_at_any_size(ImageResampler resampler)
    {
        var flat = RgbImage.Solid(37, 23, 12, 200, 99);
        foreach (var (w, h) in new[] { (16, 16), (224, 224), (5, 40), (37, 23) })
        {
            var r = ImageLoader.Resize(flat, w, h, resampler);
            Assert.Equal((w, h), (r.Width, r.Height));
            for (int i = 0; i < r.Pixels.Length; i += 3) Assert.Equal((12, 200, 99), ((int)r.Pixels[i], (int)r.Pixels[i + 1], (int)r.Pixels[i + 2]));
        }
    }

    /// <summary>
    /// Enlarging, where Pillow does not stretch its kernel: Skia's Catmull-Rom must agree with Pillow's
    /// bicubic up to rounding away from the border, which shows that Pillow's a = -0.5 cubic is
    /// Catmull-Rom. On mid-range content (no overshoot past 0 or 255) the two differ by at most one level
    /// (Pillow rounds to 8 bits between its two passes); on full-range, sharp content Pillow also clamps
    /// the overshoot between the passes where Skia clamps once, and they differ by more (printed).
    /// Mitchell is a different kernel and differs more.
    /// </summary>
    [Fact]
    public void Skia_catmull_rom_matches_pil_bicubic_when_enlarging_and_mitchell_does_not()
    {
        using var bmp = TestImages.Pattern(16, 16, seed: 5);
        var full = ImageLoader.Decode(TestImages.Png(bmp), "p.png");
        var mid = full with { Pixels = full.Pixels.Select(v => (byte)(64 + v / 2)).ToArray() };
        int Interior(RgbImage src, ImageResampler resampler)
        {
            var pil = PilBicubic.Resize(src, 40, 40);
            var other = ImageLoader.Resize(src, 40, 40, resampler);
            int worst = 0;
            for (int y = 6; y < 34; y++) for (int x = 6; x < 34; x++) for (int c = 0; c < 3; c++)
                worst = Math.Max(worst, Math.Abs(pil[x, y, c] - other[x, y, c]));
            return worst;
        }
        int catmull = Interior(mid, ImageResampler.SkiaCatmullRom), mitchell = Interior(mid, ImageResampler.SkiaMitchell);
        output.WriteLine($"enlarging 16 -> 40, mid-range pattern, interior: max |Skia Catmull-Rom - Pillow| = {catmull} levels, max |Skia Mitchell - Pillow| = {mitchell} levels");
        output.WriteLine($"same on the full-range pattern: Catmull-Rom {Interior(full, ImageResampler.SkiaCatmullRom)} levels, Mitchell {Interior(full, ImageResampler.SkiaMitchell)} levels");
        Assert.True(catmull <= 1, $"Skia Catmull-Rom differs from Pillow bicubic by {catmull} levels on mid-range content");
        Assert.True(mitchell > 2 * catmull + 2, $"Mitchell should differ clearly from Pillow's kernel, got {mitchell} levels");
    }

    /// <summary>Shrinking 2:1 a one-pixel checkerboard: Pillow's stretched kernel averages it to grey; an unstretched cubic aliases.</summary>
    [Fact]
    public void Shrinking_pil_bicubic_antialiases_where_skia_cubic_does_not()
    {
        var p = new byte[64 * 64 * 3];
        for (int y = 0; y < 64; y++) for (int x = 0; x < 64; x++) for (int c = 0; c < 3; c++) p[(y * 64 + x) * 3 + c] = (byte)((x + y) % 2 == 0 ? 255 : 0);
        var board = new RgbImage(64, 64, p);
        static (int Min, int Max) Range(RgbImage r)
        {
            int lo = 255, hi = 0;
            for (int y = 4; y < r.Height - 4; y++) for (int x = 4; x < r.Width - 4; x++) { lo = Math.Min(lo, r[x, y, 0]); hi = Math.Max(hi, r[x, y, 0]); }
            return (lo, hi);
        }
        var pil = Range(PilBicubic.Resize(board, 27, 27));
        var skia = Range(ImageLoader.Resize(board, 27, 27, ImageResampler.SkiaCatmullRom));
        output.WriteLine($"checkerboard 64 -> 27, interior range: Pillow bicubic {pil}, Skia Catmull-Rom {skia}");
        Assert.True(pil.Max - pil.Min < 40, $"Pillow-style shrink should be nearly flat grey, got range {pil}");
        Assert.True(skia.Max - skia.Min > pil.Max - pil.Min);
    }

    [Fact]
    public void Pixel_values_are_channel_first_in_minus_one_to_one()
    {
        var img = new RgbImage(2, 1, [0, 128, 255, 255, 0, 64]);
        var t = ImageLoader.ToPixelValues(img);
        Assert.Equal(new[] { 3, 1, 2 }, t.Shape);
        Assert.Equal(-1.0, t.Data[0]);                       // R of pixel 0
        Assert.Equal(1.0, t.Data[1]);                        // R of pixel 1
        // float32(128/255) = 0.501960813999176025390625; minus 0.5, times 2 (exact in float32):
        Assert.Equal(0.00392162799835205078125, t.Data[2]);   // G of pixel 0
        Assert.Equal(-1.0, t.Data[3]);                       // G of pixel 1
        Assert.Equal(1.0, t.Data[4]);
        Assert.NotEqual((128 / 255.0 - 0.5) / 0.5, t.Data[2]);  // the float64 formula differs by ~6e-9
    }

    [Fact]
    public void Load_gives_three_by_size_by_size_from_any_shape()
    {
        using var bmp = TestImages.Pattern(37, 23);
        var loader = new ImageLoader(16);
        var t = loader.Load(TestImages.Jpeg(bmp), "p.jpg");
        Assert.Equal(new[] { 3, 16, 16 }, t.Shape);
        Assert.All(t.Data, v => Assert.InRange(v, -1.0, 1.0));
        var batch = ImageLoader.Stack([t, t], 16);
        Assert.Equal(new[] { 2, 3, 16, 16 }, batch.Shape);
    }
}
