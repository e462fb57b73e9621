using System.CommandLine;
using SigLip.Bench.Harness;
using SigLip.Reference.IO;

namespace SigLip.Cli.Commands;

/// <summary>
/// `siglip bench [--report FILE.json] [--quick] [--only WORDS] [--threads N] [--no-settle]`: the
/// managed backend against libtorch CPU (the torch backend's own modules and loss) on the same work,
/// data, dtype and thread count, in one process; prints managed/libtorch ratios. The measuring lives
/// in bench/SigLip.Bench.Harness (<see cref="BenchHarness"/>); this verb only parses and writes.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var report = new Option<string?>("--report") { Description = "Write the results as JSON to this file (atomically)." };
        var quick = new Option<bool>("--quick") { Description = "Fewer repeats (1 warm-up + 3), same sizes: a rougher but faster run." };
        var only = new Option<string?>("--only") { Description = "Run only the items whose name contains one of these comma-separated words (e.g. matmul,loss)." };
        var noSettle = new Option<bool>("--no-settle") { Description = "Do not wait for the process's threads to go idle before each timed call (the earlier method: libtorch's spinning OpenMP workers then overlap the managed call that follows)." };
        var threads = new Option<int>("--threads") { Description = "Threads for both sides (default: every core).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var command = new Command("bench", "Measure the managed backend against libtorch CPU (the torch backend) on the same work, and print managed/libtorch ratios.");
        command.Options.Add(report);
        command.Options.Add(quick);
        command.Options.Add(only);
        command.Options.Add(threads);
        command.Options.Add(noSettle);
        command.SetAction(parse =>
        {
            if (parse.GetValue(report) is { } target) AtomicFile.CheckWritable(target); // refused before minutes of timing, not after
            int t = parse.GetValue(threads);
            if (t < 1) throw new ArgumentException($"--threads must be at least 1, got {t}.");
            var filter = parse.GetValue(only)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var result = BenchHarness.Run(new BenchOptions(parse.GetValue(quick), filter, t, !parse.GetValue(noSettle)), Console.Out);
            if (parse.GetValue(report) is { } path)
            {
                AtomicFile.WriteAllText(path, result.ToJson());
                Console.Out.WriteLine($"report written to {path}");
            }
            return 0;
        });
        return command;
    }
}
