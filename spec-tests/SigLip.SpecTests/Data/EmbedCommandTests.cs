using SigLip.Reference.IO;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Data;

/// <summary>`siglip embed` and `siglip similarity` on the tiny checkpoint folder.</summary>
[Collection("Console")]
public sealed class EmbedCommandTests(ITestOutputHelper output)
{
    private const string Backend = "reference";

    [Fact]
    public void Embed_writes_normalised_text_embeddings_with_their_inputs()
    {
        using var dir = new TinyCheckpointFolder();
        string outFile = Path.Combine(dir.Root, "out", "texts.safetensors");
        Directory.CreateDirectory(Path.GetDirectoryName(outFile)!);
        var (code, _, err) = CliRunner.Run("embed", "--checkpoint", dir.Root, "--texts", "a red circle", "a blue star", "--out", outFile, "--backend", Backend);
        output.WriteLine(err);
        Assert.True(code == 0, err);
        using var file = SafeTensorsFile.Open(outFile);
        var t = file.ReadTensor("text_embeds");
        Assert.Equal(new[] { 2, 32 }, t.Shape);
        for (int i = 0; i < 2; i++) Assert.Equal(1.0, Math.Sqrt(t.Data.Skip(i * 32).Take(32).Sum(v => v * v)), 12);
        Assert.Contains("a blue star", file.Metadata["texts"]);
    }

    [Fact]
    public void Similarity_prints_a_row_per_image_and_a_column_per_text()
    {
        using var dir = new TinyCheckpointFolder();
        using var folder = new TestFolder(goodImages: 2);
        string a = Path.Combine(folder.Root, folder.Good[0].Image), b = Path.Combine(folder.Root, folder.Good[1].Image);
        var (code, stdout, err) = CliRunner.Run("similarity", "--checkpoint", dir.Root, "--images", a, b, "--texts", "a red circle", "a green star", "--backend", Backend);
        output.WriteLine(stdout);
        Assert.True(code == 0, err);
        Assert.Contains(Path.GetFileName(a), stdout);
        Assert.Contains(Path.GetFileName(b), stdout);
        Assert.Contains("a green star", stdout);
        Assert.Contains("sigmoid(", stdout);
    }

    [Fact]
    public void Embed_needs_exactly_one_of_images_and_texts_and_reports_bad_images()
    {
        using var dir = new TinyCheckpointFolder();
        var (code, _, err) = CliRunner.Run("embed", "--checkpoint", dir.Root, "--backend", Backend);
        Assert.Equal(1, code);
        Assert.Contains("--images", err);
        var (code2, _, err2) = CliRunner.Run("embed", "--checkpoint", dir.Root, "--images", "/nonexistent/x.png", "--backend", Backend);
        Assert.Equal(1, code2);
        Assert.Contains("/nonexistent/x.png", err2);
    }
}
