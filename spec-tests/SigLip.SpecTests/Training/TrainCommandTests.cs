using System.Diagnostics;
using System.Text.Json;
using SigLip.Reference.Training;
using Xunit.Abstractions;

using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Training;

/// <summary>`siglip train` end to end, as a user runs it (the CLI in its own process).</summary>
public sealed class TrainCommandTests(ITestOutputHelper output)
{
    private static (int ExitCode, string Output) Siglip(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "siglip.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    [Fact]
    public void AShortRunWritesTheCheckpointTheLossCurveAndTheReport()
    {
        using var folder = new TempFolder();
        string run = Path.Combine(folder.Path, "run");
        string report = Path.Combine(folder.Path, "report.json");
        var (code, text) = Siglip("train", "--steps", "3", "--batch-size", "8", "--skip-golden-check", "--out", run, "--report", report);
        output.WriteLine(text);
        Assert.Equal(0, code);
        Assert.Contains("--skip-golden-check", text); // the warning
        Assert.True(File.Exists(Path.Combine(run, "loss.png")));
        Assert.Equal(3, TrainingCheckpoint.Load(run).State.Step);

        using var json = JsonDocument.Parse(File.ReadAllText(report));
        var root = json.RootElement;
        foreach (var field in new[] { "zero_shot_accuracy", "chance_accuracy", "image_to_text_recall_at_1", "text_to_image_recall_at_1",
                     "image_to_text_recall_at_5", "text_to_image_recall_at_5", "unseen_zero_shot_accuracy", "steps", "seconds", "pairs_per_second", "final_loss" })
            Assert.True(root.TryGetProperty(field, out _), $"report lacks '{field}'");
        Assert.Equal("managed", root.GetProperty("backend").GetString()); // the default backend
        Assert.Equal("float32", root.GetProperty("dtype").GetString());   // in its own dtype
        Assert.Equal(3, root.GetProperty("steps").GetInt32());
        Assert.Equal(1.0 / 12, root.GetProperty("chance_accuracy").GetDouble(), 12);
    }

    [Fact]
    public void TheReferenceBackendStillTrainsAfterItsGoldenGate()
    {
        using var folder = new TempFolder();
        string run = Path.Combine(folder.Path, "run");
        string report = Path.Combine(folder.Path, "report.json");
        var (code, text) = Siglip("train", "--backend", "reference", "--steps", "2", "--batch-size", "8", "--out", run, "--report", report);
        output.WriteLine(text);
        Assert.Equal(0, code);
        Assert.Contains("Golden check passed on 'reference'", text);
        using var json = JsonDocument.Parse(File.ReadAllText(report));
        Assert.Equal("reference", json.RootElement.GetProperty("backend").GetString());
        Assert.Equal("float64", json.RootElement.GetProperty("dtype").GetString());
        Assert.Equal(2, TrainingCheckpoint.Load(run).State.Step);
    }

    [Fact]
    public void TheGoldenGateRefusesToTrainWhenACaseFails()
    {
        using var folder = new TempFolder();
        string golden = Path.Combine(folder.Path, "golden");
        // The copy the CLI ships beside itself (the build copies it), else the repository's.
        string source = Path.Combine(AppContext.BaseDirectory, "golden");
        if (!Directory.Exists(source)) source = Support.RepoPaths.Golden;
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(golden, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        // Change one expected value of one case.
        string expected = Directory.EnumerateFiles(golden, "expected.safetensors", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).First();
        var bytes = File.ReadAllBytes(expected);
        bytes[^3] ^= 0x40;
        File.WriteAllBytes(expected, bytes);

        var (code, text) = Siglip("train", "--steps", "1", "--golden", golden, "--out", Path.Combine(folder.Path, "run"));
        output.WriteLine(text);
        Assert.Equal(1, code);
        Assert.Contains("Golden check failed", text);
        Assert.Contains(Path.GetFileName(Path.GetDirectoryName(expected)!), text); // the failing case is named
        Assert.Contains("refusing to train", text);
        Assert.False(Directory.Exists(Path.Combine(folder.Path, "run")));
    }

    [Fact]
    public void ResumeRefusesToChangeTheSavedSettings()
    {
        using var folder = new TempFolder();
        var (code, text) = Siglip("train", "--resume", folder.Path, "--lr", "0.1", "--skip-golden-check");
        Assert.Equal(1, code);
        Assert.Contains("--lr cannot change when resuming", text);
    }
}
