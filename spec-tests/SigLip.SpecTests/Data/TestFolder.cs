using System.Text.Json;
using SkiaSharp;

namespace SigLip.SpecTests.Data;

/// <summary>A temporary folder of generated JPEG and PNG images with captions, one corrupt file and one missing file.</summary>
internal sealed class TestFolder : IDisposable
{
    public static readonly string[] Colours = ["red", "green", "blue", "yellow"];

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "siglip-data-" + Guid.NewGuid().ToString("N"));
    public List<(string Image, string Caption)> Good { get; } = [];

    /// <summary>Writes <paramref name="goodImages"/> images (alternately JPEG and PNG, a filled colour per image) plus a corrupt and a missing one.</summary>
    public TestFolder(int goodImages = 8, bool tsv = false, IEnumerable<string>? extraLines = null)
    {
        Directory.CreateDirectory(Path.Combine(Root, "img"));
        var lines = new List<string>();
        string Line(string image, string caption) => tsv ? $"{image}\t{caption}" : JsonSerializer.Serialize(new { image, caption });
        for (int i = 0; i < goodImages; i++)
        {
            string colour = Colours[i % Colours.Length];
            bool png = i % 2 == 1;
            string rel = $"img/{i:D2}_{colour}.{(png ? "png" : "jpg")}";
            using var bmp = new SKBitmap(new SKImageInfo(20 + i, 14 + 2 * i, SKColorType.Rgba8888, SKAlphaType.Unpremul));
            bmp.Erase(colour switch { "red" => SKColors.Red, "green" => SKColors.Green, "blue" => SKColors.Blue, _ => SKColors.Yellow });
            using (var canvas = new SKCanvas(bmp)) canvas.DrawCircle(10, 7, 4 + i % 3, new SKPaint { Color = SKColors.White });
            File.WriteAllBytes(Path.Combine(Root, rel), png ? TestImages.Png(bmp) : TestImages.Jpeg(bmp));
            string caption = $"A {colour.ToUpperInvariant()} picture, number {i}!";
            lines.Add(Line(rel, caption));
            Good.Add((rel, caption));
            if (i == goodImages / 2)
            {
                File.WriteAllBytes(Path.Combine(Root, "img", "corrupt.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 5, 6, 7, 8]);
                lines.Add(Line("img/corrupt.jpg", "a corrupt file"));
                lines.Add(Line("img/missing.png", "a missing file"));
            }
        }
        if (extraLines is not null) lines.AddRange(extraLines);
        File.WriteAllLines(Path.Combine(Root, tsv ? "captions.tsv" : "captions.jsonl"), lines);
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
