using SigLip.Data;
using SigLip.Reference.IO;
using SigLip.Reference.IO.Golden;
using SigLip.Reference.Training;
using SigLip.SpecTests.Golden;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.IO;

/// <summary>
/// Issue 15: every path read from a file stays inside its folder, after '..' and symbolic links, and
/// names a regular file: golden manifest entries, caption image paths, a checkpoint's `latest`, the
/// trainer state. Each refusal names the path, the folder and why.
/// </summary>
public sealed class ContainedPathTests : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private string Dir(string name) { var d = _temp.File(name); Directory.CreateDirectory(d); return d; }


    [SkippableFact]
    public void The_helper_refuses_dotdot_links_out_absolute_and_non_regular_files()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "symbolic links and FIFOs");
        var inside = Dir("in");
        var outside = Dir("out");
        File.WriteAllText(Path.Combine(outside, "secret.txt"), "s");
        File.WriteAllText(Path.Combine(inside, "ok.txt"), "ok");
        Directory.CreateDirectory(Path.Combine(inside, "sub"));
        File.CreateSymbolicLink(Path.Combine(inside, "out-link"), outside);                   // a folder link leaving
        File.CreateSymbolicLink(Path.Combine(inside, "sub", "deep"), Path.Combine(outside)); // sub/deep/.. is outside's parent
        File.CreateSymbolicLink(Path.Combine(inside, "good-link"), "ok.txt");
        Fifos.Make(Path.Combine(inside, "pipe"));

        Assert.Equal(Path.Combine(inside, "ok.txt"), ContainedPath.Resolve(inside, "good-link", "test"));
        Assert.Equal(Path.Combine(inside, "ok.txt"), ContainedPath.Resolve(inside, "sub/../ok.txt", "test"));
        foreach (var (bad, why) in new[]
                 {
                     ("../out/secret.txt", "leaves the folder"),
                     ("../../../../../../etc/hostname", "leaves the folder"),
                     ("out-link/secret.txt", "leaves the folder"),
                     ("sub/deep/../out/secret.txt", "leaves the folder"), // lexically inside (in/out/secret.txt), really outside
                     ("/etc/hostname", "absolute"),
                     ("pipe", "FIFO"),
                     ("sub", "a directory"),
                 })
        {
            var ex = Assert.Throws<PathRefusedException>(() => ContainedPath.Resolve(inside, bad, "manifest.json"));
            Assert.Contains(bad, ex.Message);
            Assert.Contains("manifest.json", ex.Message);
            Assert.Contains(why, ex.Message);
        }
    }

    [SkippableFact]
    public void A_golden_manifest_entry_outside_the_case_is_refused_not_read()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "symbolic links and FIFOs");
        var cases = Dir("golden");
        var dir = Path.Combine(cases, "case-a");
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, GoldenFormat.ExpectedFile), [1, 2, 3]);
        // Outside: a FIFO. Reading it to hash it would block this test forever.
        var fifo = _temp.File("outside-pipe");
        Fifos.Make(fifo);
        File.WriteAllText(Path.Combine(cases, GoldenFormat.ManifestFile), """
            {"format": "1", "generator": "t", "cases": [{"name": "case-a", "kind": "model", "covers": "x",
              "files": {"../../outside-pipe": "00"}}]}
            """);
        var run = Task.Run(() => GoldenVerifier.Verify(new ModelAdapterBackend(), cases, n => n == "case-a"));
        Assert.True(run.Wait(TimeSpan.FromSeconds(20)), "the verifier opened a FIFO outside the case folder");
        var result = Assert.Single(run.Result.Cases);
        Assert.Equal(GoldenCaseStatus.Corrupted, result.Status);
        Assert.Contains("refused", result.Problem);
        Assert.Contains("leaves the folder", result.Problem);
    }

    [SkippableFact]
    public void A_caption_image_that_links_outside_or_is_a_fifo_is_skipped_with_the_reason()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "symbolic links and FIFOs");
        var folder = Dir("data");
        File.WriteAllText(_temp.File("outside.png"), "not really");
        File.CreateSymbolicLink(Path.Combine(folder, "cat.png"), _temp.File("outside.png"));
        Fifos.Make(Path.Combine(folder, "pipe.png"));
        File.WriteAllLines(Path.Combine(folder, "captions.jsonl"),
            ["{\"image\": \"cat.png\", \"caption\": \"a cat\"}", "{\"image\": \"pipe.png\", \"caption\": \"a pipe\"}"]);
        var data = new ImageCaptionFolder(folder, imageSize: 8, shuffleBuffer: 1, maxSkipReasons: 10);
        Assert.Empty(data.Entries(0));
        var reasons = string.Join("\n", data.SkipReasons);
        Assert.Equal(2, data.Skipped);
        Assert.Contains("'cat.png' refused", reasons);
        Assert.Contains("leaves the folder", reasons);
        Assert.Contains("FIFO", reasons);
    }

    [Fact]
    public void A_checkpoint_latest_pointing_outside_the_run_folder_is_refused()
    {
        var run = Dir("run");
        var elsewhere = Dir("elsewhere");
        foreach (var f in new[] { TrainingCheckpoint.StateFile, TrainingCheckpoint.ModelFile, TrainingCheckpoint.OptimizerFile, TrainingCheckpoint.ConfigFile })
            File.WriteAllText(Path.Combine(elsewhere, f), "{}");
        Directory.CreateDirectory(Path.Combine(run, "step-000001"));
        File.WriteAllText(Path.Combine(run, TrainingCheckpoint.LatestFile), "step-000001/../../elsewhere\n");
        var ex = Assert.Throws<PathRefusedException>(() => TrainingCheckpoint.Resolve(run));
        Assert.Contains("leaves the folder", ex.Message);
        Assert.Contains(TrainingCheckpoint.LatestFile, ex.Message);
    }

    [SkippableFact]
    public void A_trainer_state_that_links_outside_the_checkpoint_is_refused()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "symbolic links");
        var step = Dir("step-000001");
        File.WriteAllText(_temp.File("outside-state.json"), "{}");
        File.CreateSymbolicLink(Path.Combine(step, TrainingCheckpoint.StateFile), _temp.File("outside-state.json"));
        var ex = Assert.ThrowsAny<Exception>(() => TrainingCheckpoint.Load(step));
        Assert.IsType<PathRefusedException>(ex);
        Assert.Contains(TrainingCheckpoint.StateFile, ex.Message);
    }
}
