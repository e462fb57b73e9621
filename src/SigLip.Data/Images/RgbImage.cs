namespace SigLip.Data.Images;

/// <summary>An 8-bit RGB image, row-major, channels interleaved: Pixels[(y * Width + x) * 3 + c].</summary>
public sealed record RgbImage(int Width, int Height, byte[] Pixels)
{
    public byte this[int x, int y, int channel] => Pixels[(y * Width + x) * 3 + channel];

    /// <summary>A solid image, for tests.</summary>
    public static RgbImage Solid(int width, int height, byte r, byte g, byte b)
    {
        var p = new byte[width * height * 3];
        for (int i = 0; i < p.Length; i += 3) { p[i] = r; p[i + 1] = g; p[i + 2] = b; }
        return new RgbImage(width, height, p);
    }
}
