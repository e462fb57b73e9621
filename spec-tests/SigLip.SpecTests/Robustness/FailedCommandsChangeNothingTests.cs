using System.Diagnostics;
using SigLip.Reference.IO;
using SigLip.SpecTests.Data;
using SigLip.SpecTests.Distributed;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Robustness;

/// <summary>
/// Issue 15: no write lands outside the folder the user named, and nothing changes when a command fails.
/// Each test lays out a scratch tree, runs `siglip` in its own process (its current folder is work/, its
/// TMPDIR is tmp/, so a stray file in either is seen; changing the current folder in-process would move
/// every other test's), and compares snapshots of the whole tree (paths, kinds, sizes, times, SHA-256):
/// <code>
/// work/          the current folder: a stand-in working tree
/// outer/         the output folder's parent: must never change
/// outer/out/     the output folder the command is given (holds keep.txt, which must stay intact)
/// inputs/        data, checkpoints, golden cases the command reads
/// tmp/           the command's TMPDIR: nothing may outlive the command there
/// </code>
/// </summary>
public sealed class FailedCommandsChangeNothingTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _root = new();
    private string Work => Path.Combine(_root.Path, "work");
    private string Out => Path.Combine(_root.Path, "outer", "out");
    private string Inputs => Path.Combine(_root.Path, "inputs");
    private string Tmp => Path.Combine(_root.Path, "tmp");
    private const string OutRelative = "outer/out";

    public void Dispose() => _root.Dispose();

    private void Layout()
    {
        foreach (var d in new[] { Work, Path.Combine(Work, "src"), Out, Inputs, Tmp }) Directory.CreateDirectory(d);
        File.WriteAllText(Path.Combine(Work, "README.md"), "a working tree\n");
        File.WriteAllBytes(Path.Combine(Work, "src", "data.bin"), [1, 2, 3, 4]);
        File.WriteAllText(Path.Combine(_root.Path, "outer", "sibling.txt"), "beside the output folder\n");
        File.WriteAllText(Path.Combine(Out, "keep.txt"), "written before the command\n");
    }

    /// <summary>Runs the CLI in its own process, in work/, with TMPDIR = tmp/.</summary>
    private (int ExitCode, string Output) Siglip(params string[] args)
    {
        var start = new ProcessStartInfo(MpiJob.DotnetPath()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Work };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "siglip.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["TMPDIR"] = Tmp;
        start.Environment.Remove("SIGLIP_DEBUG");
        // The runtime's own diagnostics socket (dotnet-diagnostic-PID-socket in TMPDIR, removed at exit) is not a write of siglip's.
        start.Environment["DOTNET_EnableDiagnostics"] = "0";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"siglip {string.Join(' ', args)} did not finish in 3 minutes");
        }
        string text = stdout.Result + stderr.Result;
        output.WriteLine($"$ siglip {string.Join(' ', args)}\n{text}(exit {process.ExitCode})");
        return (process.ExitCode, text);
    }

    /// <summary>Runs a command that must fail; nothing anywhere in the tree may change (it failed before producing anything).</summary>
    private string AssertFailsChangingNothing(params string[] args)
    {
        var before = FolderSnapshot.Take(_root.Path);
        var (code, text) = Siglip(args);
        var changes = FolderSnapshot.Take(_root.Path).ChangesSince(before);
        Assert.True(code != 0, $"expected the command to fail, it exited 0:\n{text}");
        Assert.True(changes.Count == 0, "a failed command changed the tree:\n" + string.Join("\n", changes));
        return text;
    }

    /// <summary>A checkpoint trained for one step on the built-in data (a successful command, before any snapshot).</summary>
    private string TrainedCheckpoint()
    {
        string run = Path.Combine(Inputs, "run");
        var (code, text) = Siglip("train", "--steps", "1", "--batch-size", "8", "--skip-golden-check", "--out", run);
        Assert.True(code == 0, text);
        return Path.Combine(run, "step-000001");
    }


    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) CopyFolder(d, Path.Combine(to, Path.GetFileName(d)));
    }

    [Fact]
    public void Train_on_a_folder_without_a_usable_line()
    {
        Layout();
        using var data = new TestFolder(goodImages: 0, extraLines: ["{not json", "{\"image\": \"img/nope.png\", \"caption\": \"missing\"}"]);
        string text = AssertFailsChangingNothing("train", "--data", data.Root, "--steps", "2", "--batch-size", "2", "--skip-golden-check",
            "--out", Path.Combine(Out, "run"), "--report", Path.Combine(Out, "report.json"));
        Assert.Contains("no usable examples", text);
    }

    [Fact]
    public void Train_that_diverges_mid_run()
    {
        Layout();
        string text = AssertFailsChangingNothing("train", "--lr", "1e12", "--steps", "3", "--batch-size", "8", "--skip-golden-check",
            "--out", Path.Combine(Out, "run"), "--report", Path.Combine(Out, "report.json"));
        Assert.Contains("not finite", text);
    }

    [Fact]
    public void Embed_and_eval_with_a_damaged_checkpoint()
    {
        Layout();
        string checkpoint = TrainedCheckpoint();
        string weights = Path.Combine(checkpoint, "model.safetensors");
        File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..1000]); // truncated
        AssertFailsChangingNothing("embed", "--checkpoint", checkpoint, "--texts", "a red circle", "--out", Path.Combine(Out, "texts.safetensors"));
        AssertFailsChangingNothing("eval", "--checkpoint", checkpoint, "--report", Path.Combine(Out, "eval.json"));
    }

    [Fact]
    public void Golden_verify_on_a_damaged_case_writes_only_its_report()
    {
        Layout();
        string golden = Path.Combine(Inputs, "golden");
        CopyFolder(RepoPaths.Golden, golden);
        string expected = Path.Combine(golden, "loss-n2-d3", "expected.safetensors");
        var bytes = File.ReadAllBytes(expected);
        bytes[^1] ^= 0xFF; // one byte of a tensor: the checksum no longer matches
        File.WriteAllBytes(expected, bytes);
        var before = FolderSnapshot.Take(_root.Path);
        var (code, text) = Siglip("golden", "verify", "--cases", golden, "--case", "loss-n2-d3", "--report", Path.Combine(Out, "verify.json"));
        var after = FolderSnapshot.Take(_root.Path);
        Assert.NotEqual(0, code);
        Assert.Contains("CORRUPTED", text);
        var outside = after.ChangesOutside(before, OutRelative);
        Assert.True(outside.Count == 0, "changed outside the output folder:\n" + string.Join("\n", outside));
        Assert.Equal(["added outer/out/verify.json"], after.ChangesSince(before).Where(c => !c.StartsWith("changed outer/out:", StringComparison.Ordinal)).Select(c => c.Split(" (")[0]));
    }

    [Fact]
    public void Eval_refuses_a_report_path_that_is_a_fifo_and_leaves_it()
    {
        Layout();
        string checkpoint = TrainedCheckpoint();
        string fifo = Path.Combine(Out, "report.json");
        Fifos.Make(fifo);
        string text = AssertFailsChangingNothing("eval", "--checkpoint", checkpoint, "--report", fifo);
        Assert.Contains("FIFO", text);
    }

    [Fact]
    public void Explain_with_a_json_path_that_is_a_fifo_writes_no_plot()
    {
        Layout();
        string fifo = Path.Combine(Out, "explain.json");
        Fifos.Make(fifo);
        string text = AssertFailsChangingNothing("explain", "--out", Path.Combine(Out, "plots"), "--json", fifo);
        Assert.Contains("FIFO", text);
    }

    [Fact]
    public void Experiment_whose_output_file_is_a_folder_fails_before_it_runs()
    {
        Layout();
        string folder = Path.Combine(Out, "experiment");
        Directory.CreateDirectory(Path.Combine(folder, "batch-size.csv")); // where the CSV would go
        string text = AssertFailsChangingNothing("experiment", "batch-size", "--batch-sizes", "2", "--seeds", "1", "--pairs", "4",
            "--eval-images-per-class", "1", "--parallel", "1", "--out", folder);
        Assert.Contains("batch-size.csv", text);
    }
    [Fact]
    public void Golden_generate_with_an_incomplete_fixture_leaves_the_old_cases()
    {
        Layout();
        string golden = Path.Combine(Out, "golden");
        CopyFolder(RepoPaths.Golden, golden);
        string fixture = Path.Combine(Inputs, "fixture");
        Directory.CreateDirectory(fixture);
        File.WriteAllText(Path.Combine(fixture, "config.json"), "{}"); // no model.safetensors, no expected.safetensors
        string text = AssertFailsChangingNothing("golden", "generate", "--out", golden, "--hf-fixture", fixture);
        Assert.Contains("model.safetensors", text);
    }

    [Fact]
    public void Golden_generate_that_fails_on_its_last_case_leaves_the_old_cases()
    {
        Layout();
        string golden = Path.Combine(Out, "golden");
        CopyFolder(RepoPaths.Golden, golden);
        string last = Path.Combine(golden, "b16-width-one-layer");
        Directory.Delete(last, recursive: true);
        File.WriteAllText(last, "a file where the last case's folder goes\n");
        string text = AssertFailsChangingNothing("golden", "generate", "--out", golden);
        Assert.Contains("b16-width-one-layer", text);
    }

    [SkippableFact]
    public void Golden_generate_never_writes_through_a_case_folder_that_links_outside()
    {
        Skip.If(OperatingSystem.IsWindows(), "symbolic links need privileges on Windows");
        Layout();
        string golden = Path.Combine(Out, "golden");
        CopyFolder(RepoPaths.Golden, golden);
        string elsewhere = Path.Combine(Inputs, "elsewhere");
        CopyFolder(Path.Combine(golden, "model-tiny"), elsewhere);
        File.WriteAllText(Path.Combine(elsewhere, "mine.txt"), "not the generator's\n");
        Directory.Delete(Path.Combine(golden, "model-tiny"), recursive: true);
        Directory.CreateSymbolicLink(Path.Combine(golden, "model-tiny"), elsewhere);
        var before = FolderSnapshot.Take(_root.Path);
        var (code, text) = Siglip("golden", "generate", "--out", golden);
        Assert.True(code == 0, text);
        var outside = FolderSnapshot.Take(_root.Path).ChangesOutside(before, OutRelative);
        Assert.True(outside.Count == 0, "golden generate changed files outside its --out folder:\n" + string.Join("\n", outside));
        Assert.Equal(FileKind.Directory, FileKinds.Of(Path.Combine(golden, "model-tiny"))); // the case is a real folder now
        var (verify, verifyText) = Siglip("golden", "verify", "--cases", golden, "--case", "model-tiny", "--backend", "reference");
        Assert.True(verify == 0, verifyText);
    }

    [Fact]
    public void Train_whose_loss_curve_path_is_a_folder_fails_before_it_trains()
    {
        Layout();
        string run = Path.Combine(Out, "run");
        Directory.CreateDirectory(Path.Combine(run, "loss.png"));
        string text = AssertFailsChangingNothing("train", "--steps", "1", "--batch-size", "8", "--skip-golden-check", "--out", run);
        Assert.Contains("loss.png", text);
    }

    [SkippableFact]
    public void Golden_generate_from_a_checkpoint_with_a_blocked_output_copies_nothing()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "mkfifo and statx are Linux here");
        string fixture = RepoPaths.Fixture("hf-siglip-tiny");
        Skip.IfNot(Directory.Exists(fixture), $"the HF fixture is not at {fixture}");
        Layout();
        string caseDir = Path.Combine(Out, "case");
        Directory.CreateDirectory(caseDir);
        Fifos.Make(Path.Combine(caseDir, "expected.safetensors"));
        string text = AssertFailsChangingNothing("golden", "generate", "--checkpoint", fixture, "--inputs", Path.Combine(fixture, "expected.safetensors"), "--out", caseDir);
        Assert.Contains("FIFO", text);
    }

    [SkippableFact]
    public void Pruning_old_checkpoints_never_deletes_through_a_link_in_the_run_folder()
    {
        Skip.If(OperatingSystem.IsWindows(), "symbolic links need privileges on Windows");
        Layout();
        // A complete checkpoint elsewhere, linked into the run folder as its oldest step and as a stale temporary.
        string elsewhere = Path.Combine(Inputs, "run");
        string step = TrainedCheckpoint();
        string run = Path.Combine(Out, "run");
        Directory.CreateDirectory(run);
        Directory.CreateSymbolicLink(Path.Combine(run, "step-000000"), step);
        Directory.CreateSymbolicLink(Path.Combine(run, ".step-000000.tmp-0"), step);
        var before = FolderSnapshot.Take(_root.Path);
        var (code, text) = Siglip("train", "--steps", "3", "--batch-size", "8", "--checkpoint-every", "1", "--skip-golden-check", "--out", run);
        Assert.True(code == 0, text);
        var outside = FolderSnapshot.Take(_root.Path).ChangesOutside(before, OutRelative);
        Assert.True(outside.Count == 0, "train changed files outside its run folder:\n" + string.Join("\n", outside));
        Assert.True(Directory.Exists(elsewhere));
        // Both links were deleted (pruned, and removed as a stale temporary): the deletions ran, and took only the links.
        Assert.Equal(FileKind.Missing, FileKinds.Of(Path.Combine(run, "step-000000")));
        Assert.Equal(FileKind.Missing, FileKinds.Of(Path.Combine(run, ".step-000000.tmp-0")));
    }

    [SkippableFact]
    public void Train_never_writes_latest_through_a_link_that_leads_out_of_the_run_folder()
    {
        Skip.If(OperatingSystem.IsWindows(), "symbolic links need privileges on Windows");
        Layout();
        string victim = Path.Combine(Inputs, "victim.txt");
        File.WriteAllText(victim, "not the trainer's\n");
        string run = Path.Combine(Out, "run");
        Directory.CreateDirectory(run);
        File.CreateSymbolicLink(Path.Combine(run, "latest"), victim);
        string text = AssertFailsChangingNothing("train", "--steps", "1", "--batch-size", "8", "--skip-golden-check", "--out", run);
        Assert.Contains("latest", text);
        Assert.Contains("leaves the folder", text);
    }

    [SkippableFact]
    public void Explain_never_writes_a_plot_through_a_link_that_leads_out_of_its_folder()
    {
        Skip.If(OperatingSystem.IsWindows(), "symbolic links need privileges on Windows");
        Layout();
        string victim = Path.Combine(Inputs, "victim.png");
        File.WriteAllText(victim, "not a plot\n");
        string plots = Path.Combine(Out, "plots");
        Directory.CreateDirectory(plots);
        File.CreateSymbolicLink(Path.Combine(plots, "sigmoid-logits.png"), victim);
        string text = AssertFailsChangingNothing("explain", "--out", plots);
        Assert.Contains("leaves the folder", text);
    }

    [Fact]
    public void The_snapshot_sees_every_kind_of_change()
    {
        Layout();
        string file = Path.Combine(Work, "README.md");
        var before = FolderSnapshot.Take(_root.Path);
        Assert.Empty(FolderSnapshot.Take(_root.Path).ChangesSince(before));

        File.SetLastWriteTimeUtc(file, File.GetLastWriteTimeUtc(file).AddSeconds(1)); // same bytes, touched
        Assert.Contains(FolderSnapshot.Take(_root.Path).ChangesSince(before), c => c.StartsWith("changed work/README.md", StringComparison.Ordinal));

        var touched = FolderSnapshot.Take(_root.Path);
        var info = new FileInfo(file);
        var time = info.LastWriteTimeUtc;
        File.WriteAllText(file, "A working tree\n");   // same size, other bytes, same time
        File.SetLastWriteTimeUtc(file, time);
        Assert.Contains(FolderSnapshot.Take(_root.Path).ChangesSince(touched), c => c.StartsWith("changed work/README.md", StringComparison.Ordinal) && c.Contains("sha256"));

        var edited = FolderSnapshot.Take(_root.Path);
        Fifos.Make(Path.Combine(Tmp, "pipe"));
        File.Delete(Path.Combine(Work, "src", "data.bin"));
        var changes = FolderSnapshot.Take(_root.Path).ChangesSince(edited);
        Assert.Contains(changes, c => c.StartsWith("added tmp/pipe (a FIFO", StringComparison.Ordinal));
        Assert.Contains("removed work/src/data.bin", changes);
        var outsideTmp = FolderSnapshot.Take(_root.Path).ChangesOutside(edited, "tmp");
        Assert.Contains("removed work/src/data.bin", outsideTmp);
        Assert.DoesNotContain(outsideTmp, c => c.Contains(" tmp", StringComparison.Ordinal));
    }
}
