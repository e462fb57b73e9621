using SkiaSharp;

namespace SigLip.SpecTests.Data;

/// <summary>Images made with SkiaSharp for the tests: known pixels, encoded as PNG or JPEG.</summary>
internal static class TestImages
{
    /// <summary>A deterministic colourful pattern, RGBA unpremultiplied, alpha 255.</summary>
    public static SKBitmap Pattern(int width, int height, int seed = 0)
    {
        var bmp = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bmp.SetPixel(x, y, new SKColor((byte)((x * 37 + y * 11 + seed * 53) % 256), (byte)((x * 5 + y * 29 + seed) % 256), (byte)((x * y + seed * 7) % 256), 255));
        return bmp;
    }

    public static byte[] Encode(SKBitmap bmp, SKEncodedImageFormat format, int quality = 95)
    {
        using var image = SKImage.FromBitmap(bmp);
        using var data = image.Encode(format, quality) ?? throw new InvalidOperationException($"SkiaSharp cannot encode {format}");
        return data.ToArray();
    }

    /// <summary>
    /// A PNG written byte by byte (8-bit RGBA, no filter), so that stored colours of transparent pixels
    /// survive exactly: encoders may zero them, Pillow and this project's loader keep what is stored.
    /// </summary>
    public static byte[] RawRgbaPng(int width, int height, byte[] rgba)
    {
        var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = 6; // 8 bits, RGBA
        Chunk(png, "IHDR", ihdr);
        var raw = new MemoryStream();
        for (int y = 0; y < height; y++) { raw.WriteByte(0); raw.Write(rgba, y * width * 4, width * 4); }
        var z = new MemoryStream();
        using (var zs = new System.IO.Compression.ZLibStream(z, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true)) raw.WriteTo(zs);
        Chunk(png, "IDAT", z.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    /// <summary>A PNG whose header says width x height (RGB) but that holds almost no pixel data: enough for a decoder to read its size.</summary>
    public static byte[] HeaderOnlyPng(int width, int height)
    {
        var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = 2; // 8 bits, RGB
        Chunk(png, "IHDR", ihdr);
        var z = new MemoryStream();
        using (var zs = new System.IO.Compression.ZLibStream(z, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true)) zs.Write(new byte[16]);
        Chunk(png, "IDAT", z.ToArray()); // the first bytes of the first row only
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        var len = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        var body = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(body);
        uint crc = 0xFFFFFFFF;
        foreach (byte b in body)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        var c = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(c, ~crc);
        s.Write(c);
    }

    public static byte[] Png(SKBitmap bmp) => Encode(bmp, SKEncodedImageFormat.Png);
    public static byte[] Jpeg(SKBitmap bmp, int quality = 95) => Encode(bmp, SKEncodedImageFormat.Jpeg, quality);
}
