using SigLip.Reference.IO.Golden;
using SigLip.SpecTests.IO;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Golden;

/// <summary>
/// Damage to a model case's other files (model.safetensors, config.json, the b16 case's
/// weights.json) is reported as CORRUPTED, with the file named, and never reaches the numerics:
/// with a manifest by the file's sha256 (even an edit that keeps the file well formed), without
/// one by the file failing to read.
/// </summary>
[Collection("Golden generation")]
public sealed class GoldenCorruptionTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    // Well-formed edits: only the checksum can tell.
    private static void Edit(string path)
    {
        switch (Path.GetFileName(path))
        {
            case "model.safetensors":
                var bytes = File.ReadAllBytes(path);
                bytes[^5] ^= 0x01; // inside the last tensor's data
                File.WriteAllBytes(path, bytes);
                break;
            case "config.json":
                File.WriteAllText(path, File.ReadAllText(path).Replace("\"layer_norm_eps\": 1E-06", "\"layer_norm_eps\": 1E-05", StringComparison.Ordinal));
                break;
            case "weights.json":
                File.WriteAllText(path, File.ReadAllText(path).Replace("\"seed\": 208", "\"seed\": 209", StringComparison.Ordinal));
                break;
            default:
                throw new ArgumentException(path);
        }
    }

    private GoldenCaseResult Run(string dir, string caseName)
    {
        var report = GoldenVerifier.Verify(new ModelAdapterBackend(), dir, n => n == caseName);
        foreach (var n in report.Notes) output.WriteLine("note: " + n);
        foreach (var f in report.Failures) output.WriteLine(f);
        Assert.False(report.Passed);
        Assert.Contains(report.Failures, f => f.Contains("CORRUPTED", StringComparison.Ordinal));
        return Assert.Single(report.Cases);
    }

    [Theory]
    [InlineData("model-tiny", "model.safetensors")]
    [InlineData("model-tiny", "config.json")]
    [InlineData("b16-width-one-layer", "weights.json")]
    public void A_well_formed_edit_is_caught_by_the_manifest_checksum(string caseName, string file)
    {
        var dir = Path.Combine(_temp.Path, "golden");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(RepoPaths.Golden, GoldenFormat.ManifestFile), Path.Combine(dir, GoldenFormat.ManifestFile));
        CopyFolder(Path.Combine(RepoPaths.Golden, caseName), Path.Combine(dir, caseName));
        var path = Path.Combine(dir, caseName, file);
        string before = GoldenManifest.Sha256(path);
        Edit(path);
        Assert.NotEqual(before, GoldenManifest.Sha256(path)); // the edit happened
        var c = Run(dir, caseName);
        Assert.Equal(GoldenCaseStatus.Corrupted, c.Status);
        Assert.Contains("sha256", c.Problem);
        Assert.Contains(path, c.Problem);
        Assert.Empty(c.Tensors);
    }

    [Theory]
    [InlineData("model-tiny", "model.safetensors")]
    [InlineData("model-tiny", "config.json")]
    [InlineData("b16-width-one-layer", "weights.json")]
    public void A_truncated_file_without_a_manifest_is_corruption_and_named(string caseName, string file)
    {
        var dir = Path.Combine(_temp.Path, "cases");
        CopyFolder(Path.Combine(RepoPaths.Golden, caseName), Path.Combine(dir, caseName));
        var path = Path.Combine(dir, caseName, file);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var c = Run(dir, caseName);
        Assert.Equal(GoldenCaseStatus.Corrupted, c.Status);
        Assert.Contains(file, c.Problem);
        Assert.Empty(c.Tensors);
    }
}
