using System.Diagnostics;
using SigLip.Cli;
using SigLip.Reference.IO;
using SigLip.Reference.IO.Golden;
using SigLip.SpecTests.IO;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Golden;

/// <summary>
/// Generation switches the process-wide kernel mode to the naive loops; nothing else may run meanwhile.
/// </summary>
[CollectionDefinition("Golden generation", DisableParallelization = true)]
public sealed class GoldenGenerationCollection;

[Collection("Golden generation")]
public sealed class GoldenTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private static string HfFixture => RepoPaths.Fixture("hf-siglip-tiny");

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) CopyFolder(d, Path.Combine(to, Path.GetFileName(d)));
    }

    private void Log(GoldenReport report)
    {
        foreach (var n in report.Notes) output.WriteLine("note: " + n);
        foreach (var c in report.Cases) output.WriteLine($"{c.Name}: {c.Status} {c.Problem}");
        foreach (var f in report.Failures.Take(20)) output.WriteLine(f);
    }

    [Fact]
    public void Regenerating_gives_the_committed_golden_files_byte_for_byte()
    {
        var fresh = Path.Combine(_temp.Path, "golden");
        GoldenGenerator.Generate(fresh, HfFixture);
        var committed = RepoPaths.Golden;
        static IEnumerable<string> Files(string root) => Directory.GetFiles(root, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/'))
            .Where(f => !f.StartsWith('.') && f != "README.md")
            .Order(StringComparer.Ordinal);
        Assert.Equal(Files(committed), Files(fresh));
        foreach (var file in Files(committed))
        {
            var a = File.ReadAllBytes(Path.Combine(committed, file));
            var b = File.ReadAllBytes(Path.Combine(fresh, file));
            if (a.AsSpan().SequenceEqual(b)) continue;
            var detail = file.EndsWith(".safetensors", StringComparison.Ordinal) ? Difference(Path.Combine(committed, file), Path.Combine(fresh, file)) : "";
            Assert.Fail($"golden/{file} drifted: regenerating gives different bytes. {detail} If the change is intended, run `siglip golden generate` and bump GoldenFormat.GeneratorVersion.");
        }
    }

    private static string Difference(string committed, string fresh)
    {
        using var a = SafeTensorsFile.Open(committed);
        using var b = SafeTensorsFile.Open(fresh);
        var worst = a.Entries.Where(e => e.DType.IsFloat() && b.Contains(e.Name))
            .Select(e => (e.Name, diff: a.ReadTensor(e.Name).Data.Zip(b.ReadTensor(e.Name).Data, (x, y) => Math.Abs(x - y)).DefaultIfEmpty(0).Max()))
            .OrderByDescending(x => x.diff).FirstOrDefault();
        return $"Largest change: {worst.Name} by {worst.diff:E3}.";
    }

    [Fact]
    public void Committed_golden_passes_on_the_model_adapter_and_every_case_is_listed()
    {
        var report = GoldenVerifier.Verify(new ModelAdapterBackend(), RepoPaths.Golden);
        Log(report);
        Assert.True(report.ManifestFound);
        Assert.Empty(report.Notes);
        Assert.Equal(GoldenGenerator.CaseNames.Order(StringComparer.Ordinal), report.Cases.Select(c => c.Name).Order(StringComparer.Ordinal));
        Assert.True(report.Passed, string.Join("\n", report.Failures));
    }

    [Fact]
    public void A_folder_holding_a_copy_of_the_HF_fixture_passes_without_a_manifest()
    {
        CopyFolder(HfFixture, Path.Combine(_temp.Path, "hf-copy"));
        var report = GoldenVerifier.Verify(new ModelAdapterBackend(), _temp.Path);
        Log(report);
        Assert.False(report.ManifestFound);
        Assert.Contains(report.Notes, n => n.Contains("default tolerances", StringComparison.Ordinal));
        var only = Assert.Single(report.Cases);
        Assert.Equal(88 + 9, only.Tensors.Count);   // 88 gradients + 9 outputs
        Assert.True(report.Passed, string.Join("\n", report.Failures));
    }

    [Fact]
    public void A_case_folder_itself_can_be_given()
    {
        var report = GoldenVerifier.Verify(new ModelAdapterBackend(), HfFixture);
        Assert.Equal("hf-siglip-tiny", Assert.Single(report.Cases).Name);
        Assert.True(report.Passed, string.Join("\n", report.Failures));
    }

    private string CopyOfGolden(params string[] cases)
    {
        var dir = Path.Combine(_temp.Path, "golden-copy");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(RepoPaths.Golden, GoldenFormat.ManifestFile), Path.Combine(dir, GoldenFormat.ManifestFile));
        foreach (var c in cases) CopyFolder(Path.Combine(RepoPaths.Golden, c), Path.Combine(dir, c));
        return dir;
    }

    [Fact]
    public void A_changed_byte_is_reported_as_corruption_by_its_sha256_not_as_a_numerics_failure()
    {
        var dir = CopyOfGolden("loss-n7-d16", "model-tiny");
        var path = Path.Combine(dir, "model-tiny", GoldenFormat.ExpectedFile);
        var bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 0x40;   // inside the last tensor's data: still a well-formed file
        File.WriteAllBytes(path, bytes);
        var report = GoldenVerifier.Verify(new ModelAdapterBackend(), dir, n => n is "loss-n7-d16" or "model-tiny");
        Log(report);
        var tiny = report.Cases.Single(c => c.Name == "model-tiny");
        Assert.Equal(GoldenCaseStatus.Corrupted, tiny.Status);
        Assert.Contains("sha256", tiny.Problem);
        Assert.Contains(path, tiny.Problem);
        Assert.Empty(tiny.Tensors);
        Assert.Equal(GoldenCaseStatus.Passed, report.Cases.Single(c => c.Name == "loss-n7-d16").Status);
        Assert.False(report.Passed);
        Assert.Contains(report.Failures, f => f.Contains("CORRUPTED", StringComparison.Ordinal));
    }

    [Fact]
    public void A_truncated_file_without_a_manifest_is_reported_as_corruption()
    {
        var dir = Path.Combine(_temp.Path, "cases");
        CopyFolder(Path.Combine(RepoPaths.Golden, "loss-n2-d3"), Path.Combine(dir, "loss-n2-d3"));
        var path = Path.Combine(dir, "loss-n2-d3", GoldenFormat.ExpectedFile);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 20)]);
        var report = GoldenVerifier.Verify(new ModelAdapterBackend(), dir);
        Log(report);
        var c = Assert.Single(report.Cases);
        Assert.Equal(GoldenCaseStatus.Corrupted, c.Status);
        Assert.Contains("truncated", c.Problem);
    }

    [Fact]
    public void A_missing_case_listed_in_the_manifest_is_reported()
    {
        var dir = CopyOfGolden("loss-n1");
        var report = GoldenVerifier.Verify(new ModelAdapterBackend(), dir);
        Assert.Contains(report.Cases, c => c.Name == "model-tiny" && c.Status == GoldenCaseStatus.Corrupted && c.Problem!.Contains("listed in manifest.json"));
        Assert.False(report.Passed);
    }

    [Fact]
    public void A_wrong_gradient_element_fails_and_is_located()
    {
        var dir = CopyOfGolden("model-odd-heads");
        var broken = new ModelAdapterBackend
        {
            Tamper = (name, t) => { if (name == "grad.vision_model.encoder.layers.1.mlp.fc1.weight") t.Data[7] += 1e-6; },
        };
        var report = GoldenVerifier.Verify(broken, dir, n => n == "model-odd-heads");
        Log(report);
        var c = Assert.Single(report.Cases);
        Assert.Equal(GoldenCaseStatus.Failed, c.Status);
        var bad = Assert.Single(c.Tensors, t => !t.Passed);
        Assert.Equal("grad.vision_model.encoder.layers.1.mlp.fc1.weight", bad.Name);
        Assert.Equal(Reference.Tensor.Unravel(new[] { 33, 15 }, 7), bad.WorstIndex);
    }

    [Fact]
    public void A_wrong_sampled_gradient_element_fails_and_is_located_in_the_whole_tensor()
    {
        var dir = CopyOfGolden("b16-width-one-layer");
        long[] sampled;
        using (var f = SafeTensorsFile.Open(Path.Combine(dir, "b16-width-one-layer", GoldenFormat.ExpectedFile)))
            sampled = f.ReadInt64(GoldenFormat.GradSampleIndexPrefix + "text_model.encoder.layers.0.mlp.fc2.weight");
        var broken = new ModelAdapterBackend
        {
            Tamper = (name, t) => { if (name == "grad.text_model.encoder.layers.0.mlp.fc2.weight") t.Data[sampled[5]] *= 1.01; },
        };
        var report = GoldenVerifier.Verify(broken, dir, n => n == "b16-width-one-layer");
        var c = Assert.Single(report.Cases);
        var bad = Assert.Single(c.Tensors, t => !t.Passed);
        Assert.Equal(GoldenFormat.GradSamplePrefix + "text_model.encoder.layers.0.mlp.fc2.weight", bad.Name);
        Assert.Equal(Reference.Tensor.Unravel(new[] { 768, 3072 }, sampled[5]), bad.WorstIndex);
    }

    [Fact]
    public void Gradients_returned_for_a_locked_tower_break_the_contract()
    {
        var dir = CopyOfGolden("text-alone");
        var report = GoldenVerifier.Verify(new ModelAdapterBackend { IgnoreLocks = true }, dir, n => n == "text-alone");
        Log(report);
        var c = Assert.Single(report.Cases);
        Assert.Equal(GoldenCaseStatus.Failed, c.Status);
        Assert.Contains(c.Tensors, t => t.Problem is not null && t.Problem.Contains("locked", StringComparison.Ordinal));
    }

    [Fact]
    public void Report_json_names_every_case_and_tensor()
    {
        var dir = CopyOfGolden("loss-n1");
        var report = GoldenVerifier.Verify(new ModelAdapterBackend(), dir, n => n == "loss-n1");
        var json = System.Text.Json.JsonDocument.Parse(report.ToJson()).RootElement;
        Assert.True(json.GetProperty("passed").GetBoolean());
        var tensors = json.GetProperty("cases")[0].GetProperty("tensors");
        Assert.Equal(5, tensors.GetArrayLength());
        Assert.Contains(tensors.EnumerateArray(), t => t.GetProperty("name").GetString() == "grad.logit_scale");
    }

    [Fact]
    public void Empty_folder_does_not_pass()
    {
        var report = GoldenVerifier.Verify(new ModelAdapterBackend(), _temp.Path);
        Assert.False(report.Passed);
        Assert.Contains("no golden cases", Assert.Single(report.Failures));
    }

    [Fact]
    public void Unknown_backend_lists_the_known_ones()
    {
        var registry = CliBackends.Registry();
        var ex = Assert.Throws<ArgumentException>(() => registry.Find("no-such-backend"));
        Assert.Contains("no-such-backend", ex.Message);
        foreach (var p in registry.Providers) Assert.Contains(p.Name, ex.Message);
        Assert.Contains("torch", ex.Message);
        Assert.Contains("reference", ex.Message);
    }

    [Fact]
    public void Reference_backend_passes_the_committed_golden_cases()
    {
        using var backend = CliBackends.Registry().Start("reference");
        var report = GoldenVerifier.Verify(backend, RepoPaths.Golden);
        Log(report);
        Assert.Equal(GoldenGenerator.CaseNames.Count, report.Cases.Count);
        Assert.True(report.Passed, string.Join("\n", report.Failures));
    }

    [Fact]
    public void Cli_verify_reference_on_a_folder_holding_a_copy_of_the_HF_fixture_exits_zero_and_writes_the_report()
    {
        var cases = Path.Combine(_temp.Path, "cases");
        CopyFolder(HfFixture, Path.Combine(cases, "hf-copy"));
        var reportPath = Path.Combine(_temp.Path, "report.json");
        var (code, stdout, stderr) = RunCli("golden", "verify", "--backend", "reference", "--cases", cases, "--report", reportPath);
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        Assert.Contains("hf-copy", stdout);
        Assert.Contains("grad.vision_model.head.probe", stdout);
        Assert.Contains("default tolerances", stdout);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(reportPath));
        Assert.True(json.RootElement.GetProperty("passed").GetBoolean());
        Assert.Equal("reference", json.RootElement.GetProperty("backend").GetString());
    }

    [Fact]
    public void Cli_verify_reports_a_corrupted_case_and_exits_non_zero()
    {
        var cases = Path.Combine(_temp.Path, "cases");
        CopyFolder(Path.Combine(RepoPaths.Golden, "loss-n7-d16"), Path.Combine(cases, "loss-n7-d16"));
        var path = Path.Combine(cases, "loss-n7-d16", GoldenFormat.ExpectedFile);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^8]);
        var (code, stdout, stderr) = RunCli("golden", "verify", "--backend", "reference", "--cases", cases);
        output.WriteLine(stdout + stderr);
        Assert.Equal(1, code);
        Assert.Contains("CORRUPTED", stdout);
        Assert.DoesNotContain("FAIL loss", stdout);
    }

    [Fact]
    public void Cli_backends_lists_every_registered_backend()
    {
        var (code, stdout, stderr) = RunCli("backends");
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        foreach (var name in new[] { "reference", "torch", "cuda" }) Assert.Contains(name, stdout);
    }

    [Fact]
    public void Cli_unknown_backend_exits_non_zero_with_the_known_names()
    {
        var (code, stdout, stderr) = RunCli("golden", "verify", "--backend", "no-such-backend", "--cases", RepoPaths.Golden);
        output.WriteLine(stdout + stderr);
        Assert.Equal(1, code);
        Assert.Contains("Unknown backend 'no-such-backend'", stderr);
        Assert.Contains("torch", stderr);
        Assert.DoesNotContain("   at ", stderr);   // no stack trace
    }

    internal static (int Code, string Stdout, string Stderr) RunCli(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "siglip.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepoPaths.Root };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr);
    }
}

[Collection("Golden generation")]
public sealed class GoldenToleranceTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(2e-8, true)]    // float32 rounding noise on a gradient that is zero in exact arithmetic
    [InlineData(1e-3, false)]   // a real error
    public void A_structurally_zero_gradient_is_held_to_the_case_scale_in_float32(double noise, bool passes)
    {
        var backend = new ModelAdapterBackend
        {
            DType = SigLip.Reference.Backends.DType.Float32,
            Tamper = (name, t) => { if (name == "grad.text_model.encoder.layers.0.self_attn.k_proj.bias") t.Data[1] += noise; },
        };
        var report = GoldenVerifier.Verify(backend, RepoPaths.Golden, n => n == "model-tiny");
        foreach (var f in report.Failures) output.WriteLine(f);
        var k = report.Cases.Single().Tensors.Single(t => t.Name == "grad.text_model.encoder.layers.0.self_attn.k_proj.bias");
        Assert.Equal(passes, k.Passed);
        Assert.True(k.Tolerance.Atol > 1e-8 && k.Tolerance.Atol < 1e-3, $"atol {k.Tolerance.Atol}");
    }
}
