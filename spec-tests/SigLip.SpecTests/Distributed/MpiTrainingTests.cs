using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SigLip.Reference;
using SigLip.Reference.Training;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Distributed;

/// <summary>
/// `mpirun -np W siglip train` as a user runs it (the CLI, one process per rank, Open MPI between
/// them), against `siglip train --distributed none` with the same seed and global batch; and what
/// happens when a rank dies or throws. Skipped, with the reason, where Open MPI's mpirun is absent.
/// </summary>
/// <remarks>
/// The built-in recipe's model on the reference backend (float64), global batch 12 (divisible by 2
/// and 3), 20 steps: a run takes about two seconds. Golden checks are skipped (they are tested elsewhere).
/// </remarks>
[Collection(MpiJob.Collection)]
public sealed class MpiTrainingTests(ITestOutputHelper output)
{
    private const int Steps = 20;
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);

    private static string[] TrainArgs(string backend, string folder, int steps = Steps, int checkpointEvery = 0, params string[] more) =>
    [
        "train", "--backend", backend, "--steps", steps.ToString(CultureInfo.InvariantCulture), "--batch-size", "12", "--seed", "7",
        "--checkpoint-every", checkpointEvery.ToString(CultureInfo.InvariantCulture), "--out", folder, "--skip-golden-check", "--threads", "1",
        .. more,
    ];

    /// <summary>The CLI in one process (no mpirun), as the baseline.</summary>
    private MpiJob.Result RunAlone(IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(MpiJob.DotnetPath()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "siglip.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["TERM"] = "dumb";
        foreach (var name in new[] { "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK" }) info.Environment.Remove(name);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        bool exited = process.WaitForExit((int)Limit.TotalMilliseconds);
        if (!exited) process.Kill(entireProcessTree: true);
        process.WaitForExit();
        var result = new MpiJob.Result(exited ? process.ExitCode : -1, !exited, clock.Elapsed, stdout.Result + stderr.Result);
        output.WriteLine($"one process: exit {result.ExitCode} in {result.Elapsed.TotalSeconds:F1} s");
        return result;
    }

    private MpiJob.Result RunRanks(IEnumerable<string> mpirunArgs, IEnumerable<string> args, Action<Process>? whileRunning = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var result = MpiJob.RunDll(mpirunArgs, "siglip.dll", args, Limit, whileRunning, environment);
        output.WriteLine($"mpirun {string.Join(' ', mpirunArgs)}: exit {result.ExitCode}{(result.TimedOut ? " (timed out)" : "")} in {result.Elapsed.TotalSeconds:F1} s");
        output.WriteLine(result.Output);
        return result;
    }

    private static LoadedTrainingCheckpoint Final(string folder) => TrainingCheckpoint.Load(folder);

    // The tolerances of issue 14 (float64): losses within 1e-12 relative per step, parameters within 1e-10.
    private static void AssertSameTraining(LoadedTrainingCheckpoint expected, LoadedTrainingCheckpoint actual, Tolerance loss, Tolerance parameters, string where)
    {
        Assert.Equal(expected.State.Step, actual.State.Step);
        Assert.Equal(expected.State.Losses.Count, actual.State.Losses.Count);
        for (int i = 0; i < expected.State.Losses.Count; i++)
            AssertClose.Scalar(actual.State.Losses[i], expected.State.Losses[i], loss, $"loss of step {i + 1} ({where})");
        Assert.Equal(expected.Parameters.Keys, actual.Parameters.Keys);
        foreach (var (name, e) in expected.Parameters)
            AssertClose.Tensor(actual.Parameters[name], e, parameters, $"{name} ({where})");
    }

    public static TheoryData<int, string> Launches => new()
    {
        { 2, "" },
        { 3, "--oversubscribe" },
        { 2, "--mca btl tcp,self" },   // the network path, over loopback
    };

    [SkippableTheory]
    [MemberData(nameof(Launches))]
    public void Reference_float64_under_W_ranks_trains_as_one_process(int w, string extra)
    {
        MpiJob.RequireMpirun();
        using var folder = new TempFolder();
        string alone = Path.Combine(folder.Path, "alone"), ranks = Path.Combine(folder.Path, "ranks"), report = Path.Combine(folder.Path, "report.json");
        var baseline = RunAlone(TrainArgs("reference", alone, more: ["--distributed", "none"]));
        Assert.True(baseline.ExitCode == 0, baseline.Output);

        var mpirunArgs = MpiJob.Ranks(w, extra == "--oversubscribe");
        if (extra.StartsWith("--mca", StringComparison.Ordinal)) mpirunArgs.AddRange(extra.Split(' '));
        var run = RunRanks(mpirunArgs, TrainArgs("reference", ranks, more: ["--report", report]));
        Assert.True(run.ExitCode == 0, run.Output);

        var expected = Final(alone);
        Assert.Equal(Steps, expected.State.Losses.Count);
        AssertSameTraining(expected, Final(ranks), new Tolerance(0, 1e-12), new Tolerance(1e-10, 0), $"{w} ranks {extra}");

        // Rank 0 alone reports: one summary line, and the report says how many ranks and what communication cost.
        Assert.Single(run.Output.Split('\n'), line => line.StartsWith($"Trained {Steps} steps", StringComparison.Ordinal));
        var json = JsonNode.Parse(File.ReadAllText(report))!;
        Assert.Equal(w, (int)json["world_size"]!);
        Assert.True((double)json["communication_seconds_per_step"]! > 0, json.ToJsonString());
        Assert.InRange((double)json["communication_share"]!, 0.0, 1.0);
    }

    [SkippableFact]
    public void Skipped_lines_of_a_data_folder_are_reported_once_by_rank_0_not_once_per_rank()
    {
        MpiJob.RequireMpirun();
        using var data = new SigLip.SpecTests.Data.TestFolder(goodImages: 8, extraLines: ["{not json", "[1]", "{\"image\": \"/etc/passwd\", \"caption\": \"x\"}"]);
        using var folder = new TempFolder();
        string aloneReport = Path.Combine(folder.Path, "alone.json"), ranksReport = Path.Combine(folder.Path, "ranks.json");
        string[] DataArgs(string run, string report) => TrainArgs("reference", Path.Combine(folder.Path, run), steps: 2, more: ["--data", data.Root, "--report", report]);
        var alone = RunAlone([.. DataArgs("alone", aloneReport), "--distributed", "none"]);
        Assert.True(alone.ExitCode == 0, alone.Output);
        var run = RunRanks(MpiJob.Ranks(2), DataArgs("ranks", ranksReport));
        Assert.True(run.ExitCode == 0, run.Output);

        // corrupt.jpg, missing.png and the three bad lines: 5, in one process and under two ranks alike.
        var expected = JsonNode.Parse(File.ReadAllText(aloneReport))!["skipped"]!;
        var actual = JsonNode.Parse(File.ReadAllText(ranksReport))!["skipped"]!;
        Assert.Equal(5, (long)expected["total"]!);
        Assert.Equal(expected.ToJsonString(), actual.ToJsonString());
        Assert.Single(run.Output.Split('\n'), line => line.Contains("5 line(s) or image(s) skipped", StringComparison.Ordinal));
    }

    [SkippableFact]
    public void Torch_cpu_float32_under_two_ranks_trains_as_one_process_within_float32_tolerance()
    {
        MpiJob.RequireMpirun();
        using (SigLip.SpecTests.TorchSharp.TorchCpu.Start(output, "float32")) { } // skips, with the reason, where libtorch cannot start
        using var folder = new TempFolder();
        string alone = Path.Combine(folder.Path, "alone"), ranks = Path.Combine(folder.Path, "ranks");
        const int steps = 10;
        var baseline = RunAlone(TrainArgs("torch", alone, steps, more: ["--distributed", "none"]));
        Assert.True(baseline.ExitCode == 0, baseline.Output);
        var run = RunRanks(MpiJob.Ranks(2), TrainArgs("torch", ranks, steps));
        Assert.True(run.ExitCode == 0, run.Output);

        var expected = Final(alone);
        var actual = Final(ranks);
        Assert.Equal(steps, actual.State.Losses.Count);
        // The torch CPU float32 tolerance (TorchCpu.Float32: 1e-5 absolute + 1e-4 relative) on every step's loss.
        for (int i = 0; i < steps; i++)
            AssertClose.Scalar(actual.State.Losses[i], expected.State.Losses[i], SigLip.SpecTests.TorchSharp.TorchCpu.Float32, $"loss of step {i + 1}");
    }

    [SkippableFact]
    public void A_rank_killed_with_signal_9_ends_the_job_within_a_minute_and_the_last_checkpoint_resumes()
    {
        MpiJob.RequireMpirun();
        using var folder = new TempFolder();
        string run = Path.Combine(folder.Path, "run");
        string marker = Guid.NewGuid().ToString("N");
        int? killedPid = null;
        var killedAt = Stopwatch.StartNew();
        var result = RunRanks(MpiJob.Ranks(2), TrainArgs("reference", run, steps: 5000, checkpointEvery: 5, more: ["--warmup", "2"]),
            whileRunning: mpirun =>
            {
                // Wait for the second checkpoint, then kill rank 1 mid-run.
                var deadline = Stopwatch.StartNew();
                while (!Directory.Exists(Path.Combine(run, "step-000010")))
                {
                    Assert.False(mpirun.HasExited, "the job ended before its second checkpoint");
                    Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(2), "no second checkpoint within 2 minutes");
                    Thread.Sleep(50);
                }
                killedPid = RankProcess(marker, rank: 1);
                Process.GetProcessById(killedPid.Value).Kill(); // SIGKILL on Linux
                killedAt.Restart();
            },
            environment: new Dictionary<string, string> { ["SIGLIP_TEST_JOB"] = marker });
        var ended = killedAt.Elapsed;
        output.WriteLine($"the job ended {ended.TotalSeconds:F1} s after rank 1 (pid {killedPid}) was killed");

        Assert.NotNull(killedPid);
        Assert.False(result.TimedOut, "the job did not end after rank 1 was killed");
        Assert.True(ended < TimeSpan.FromSeconds(60), $"the job took {ended.TotalSeconds:F0} s to end after rank 1 was killed");
        Assert.NotEqual(0, result.ExitCode);

        // The newest checkpoint is whole, and the run continues from it (under 3 ranks now: checkpoints hold global state).
        var last = TrainingCheckpoint.Load(run);
        Assert.True(last.State.Step >= 10 && last.State.Step % 5 == 0, $"last checkpoint at step {last.State.Step}");
        Assert.Equal(last.State.Step, last.State.Losses.Count);
        int target = last.State.Step + 6;
        var resumed = RunRanks(MpiJob.Ranks(3, oversubscribe: true),
            ["train", "--resume", run, "--steps", target.ToString(CultureInfo.InvariantCulture), "--skip-golden-check", "--threads", "1"]);
        Assert.True(resumed.ExitCode == 0, resumed.Output);
        var final = TrainingCheckpoint.Load(run);
        Assert.Equal(target, final.State.Step);
        Assert.Equal(last.State.Losses, final.State.Losses.Take(last.State.Step));
        Assert.All(final.State.Losses.Skip(last.State.Step), l => Assert.True(double.IsFinite(l) && l > 0, $"resumed loss {l}"));
    }

    [SkippableFact]
    public void A_rank_that_throws_prints_one_message_with_its_rank_and_the_job_aborts()
    {
        MpiJob.RequireMpirun();
        using var folder = new TempFolder();
        // The run folder is a file: rank 0, the only rank that writes (and so the only one that checks --out),
        // refuses it before training, while rank 1 goes on to wait for it in the first step's collectives.
        string notAFolder = Path.Combine(folder.Path, "taken");
        File.WriteAllText(notAFolder, "a file, not a folder\n");
        var result = RunRanks(MpiJob.Ranks(2), TrainArgs("reference", notAFolder, steps: 1000, checkpointEvery: 3));
        Assert.False(result.TimedOut, "the job hung after rank 0 threw");
        Assert.True(result.Elapsed < TimeSpan.FromSeconds(60), $"the job took {result.Elapsed.TotalSeconds:F0} s to end");
        Assert.NotEqual(0, result.ExitCode);
        var errors = result.Output.Split('\n').Where(l => l.StartsWith("error: rank", StringComparison.Ordinal)).ToList();
        var error = Assert.Single(errors);
        Assert.StartsWith("error: rank 0 of 2: ", error);
        Assert.Contains(notAFolder, error);
    }

    /// <summary>The pid of rank <paramref name="rank"/> of the job whose ranks carry SIGLIP_TEST_JOB=marker.</summary>
    private static int RankProcess(string marker, int rank)
    {
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            string environ;
            try { environ = File.ReadAllText(Path.Combine(dir, "environ")); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            var variables = environ.Split('\0');
            if (variables.Contains($"SIGLIP_TEST_JOB={marker}") && variables.Contains($"OMPI_COMM_WORLD_RANK={rank}")
                && !File.ReadAllText(Path.Combine(dir, "comm")).StartsWith("mpirun", StringComparison.Ordinal))
                return pid;
        }
        throw new InvalidOperationException($"no process of rank {rank} found (SIGLIP_TEST_JOB={marker})");
    }
}
