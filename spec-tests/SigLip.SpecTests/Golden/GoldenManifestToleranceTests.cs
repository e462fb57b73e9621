using System.Text.Json.Nodes;
using SigLip.Reference.IO.Golden;
using SigLip.SpecTests.IO;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Golden;

/// <summary>
/// A manifest may tighten the built-in tolerances but not loosen them: a looser one is replaced by
/// the built-in one for the dtype, and the report's notes say so.
/// </summary>
[Collection("Golden generation")]
public sealed class GoldenManifestToleranceTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private const string Target = "grad.vision_model.encoder.layers.0.mlp.fc1.weight";

    // A copy of golden/ holding model-tiny, with the manifest's float64 tolerance replaced.
    private string GoldenWithFloat64Tolerance(double atol, double rtol, bool relative)
    {
        var dir = Path.Combine(_temp.Path, "golden");
        Directory.CreateDirectory(Path.Combine(dir, "model-tiny"));
        foreach (var f in Directory.GetFiles(Path.Combine(RepoPaths.Golden, "model-tiny")))
            File.Copy(f, Path.Combine(dir, "model-tiny", Path.GetFileName(f)));
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(RepoPaths.Golden, GoldenFormat.ManifestFile)))!.AsObject();
        var float64 = manifest["tolerances"]!["float64"]!.AsObject();
        float64["atol"] = atol;
        float64["rtol"] = rtol;
        float64["atol_relative_to_max_abs"] = relative;
        File.WriteAllText(Path.Combine(dir, GoldenFormat.ManifestFile), manifest.ToJsonString());
        return dir;
    }

    private GoldenReport VerifyWithError(string dir, double error)
    {
        var backend = new ModelAdapterBackend { Tamper = (name, t) => { if (name == Target) t.Data[4] += error; } };
        var report = GoldenVerifier.Verify(backend, dir, n => n == "model-tiny");
        foreach (var n in report.Notes) output.WriteLine("note: " + n);
        foreach (var f in report.Failures) output.WriteLine(f);
        return report;
    }

    [Theory]
    [InlineData(1.0, 1e-9, false)]   // atol loosened
    [InlineData(1e-11, 0.5, false)]  // rtol loosened
    [InlineData(1e-11, 1e-9, true)]  // atol made relative to the tensor's largest |e|
    public void A_manifest_looser_than_the_built_in_tolerance_is_not_trusted(double atol, double rtol, bool relative)
    {
        var dir = GoldenWithFloat64Tolerance(atol, rtol, relative);
        // 1e-6 is far outside float64's built-in bound (atol 1e-11, rtol 1e-9), inside the loosened one.
        var report = VerifyWithError(dir, 1e-6);
        Assert.False(report.Passed);
        var bad = Assert.Single(Assert.Single(report.Cases).Tensors, t => !t.Passed);
        Assert.Equal(Target, bad.Name);
        Assert.Equal(GoldenTolerance.Defaults["float64"].Rtol, bad.Tolerance.Rtol);
        Assert.Contains(report.Notes, n => n.Contains("looser than the built-in", StringComparison.Ordinal) && n.Contains("float64", StringComparison.Ordinal));
    }

    [Fact]
    public void A_manifest_as_strict_as_the_built_in_tolerance_is_used_without_a_note()
    {
        var builtIn = GoldenTolerance.Defaults["float64"];
        var dir = GoldenWithFloat64Tolerance(builtIn.Atol, builtIn.Rtol, builtIn.AtolRelativeToMaxAbs);
        var report = VerifyWithError(dir, 0);
        Assert.True(report.Passed, string.Join("\n", report.Failures));
        Assert.DoesNotContain(report.Notes, n => n.Contains("looser", StringComparison.Ordinal));
    }

    [Fact]
    public void The_bfloat16_tolerance_is_the_a_priori_rounding_count_for_the_deepest_committed_case()
    {
        // (2L + 2) u: L the most layers of any tower in any committed case, u = 2^-8 (bfloat16).
        int deepest = Directory.GetFiles(RepoPaths.Golden, "config.json", SearchOption.AllDirectories)
            .Select(Reference.IO.HfConfig.Read)
            .Max(c => Math.Max(c.Text.NumHiddenLayers, c.Vision.NumHiddenLayers));
        double bound = (2 * deepest + 2) * Math.Pow(2, -8);
        var builtIn = GoldenTolerance.Defaults["bfloat16"];
        Assert.Equal((bound, bound, true), (builtIn.Atol, builtIn.Rtol, builtIn.AtolRelativeToMaxAbs));
        var committed = GoldenManifest.Read(Path.Combine(RepoPaths.Golden, GoldenFormat.ManifestFile)).Tolerances["bfloat16"];
        Assert.Equal((bound, bound), (committed.Atol, committed.Rtol));
    }

    [Fact]
    public void IsLooserThan_compares_every_part()
    {
        var d = new GoldenTolerance(1e-5, 1e-4, false, "");
        Assert.False(d.IsLooserThan(d));
        Assert.False((d with { Atol = 1e-6, Rtol = 1e-5 }).IsLooserThan(d));
        Assert.True((d with { Atol = 2e-5 }).IsLooserThan(d));
        Assert.True((d with { Rtol = 2e-4 }).IsLooserThan(d));
        Assert.True((d with { AtolRelativeToMaxAbs = true }).IsLooserThan(d));
        Assert.False(d.IsLooserThan(d with { AtolRelativeToMaxAbs = true }));
    }
}
