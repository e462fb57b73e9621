using System.CommandLine;
using SigLip.Fuzzing;

namespace SigLip.Cli.Commands;

/// <summary>
/// `siglip fuzz --format all --cases N --seed S [--case I]`: mutated inputs of every format the project
/// reads, each through the parser the other verbs use. Exit 0 when every outcome was a success or one of
/// the project's typed errors, 1 when any was not (those are printed with their seed, case and replay command).
/// See docs/fuzzing.md.
/// </summary>
internal static class FuzzCommand
{
    public static Command Create()
    {
        var format = new Option<string>("--format") { Description = $"all, or one or more (comma-separated) of: {string.Join(", ", FuzzTargets.Names)}.", DefaultValueFactory = _ => "all" };
        var cases = new Option<long>("--cases") { Description = "Cases per format (the seed inputs first, then mutations).", DefaultValueFactory = _ => 2000 };
        var seed = new Option<long>("--seed") { Description = "The run's seed; every case's seed is derived from it, the format and the case index.", DefaultValueFactory = _ => 1 };
        var oneCase = new Option<long?>("--case") { Description = "Replay only this case index (with the same --seed and --format)." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds one case may run before it counts as a hang (a failure).", DefaultValueFactory = _ => 20 };
        var failures = new Option<string?>("--failures") { Description = "Folder for the files of failing cases (default: siglip-fuzz-failures in the temporary folder)." };
        var progress = new Option<double>("--progress") { Description = "Seconds between progress lines on stderr (0: none).", DefaultValueFactory = _ => 10 };
        var verbose = new Option<bool>("--verbose") { Description = "Print every case's outcome with its message on stderr (use it with --case or a few --cases)." };
        var command = new Command("fuzz", "Fuzz the file parsers (safetensors, config.json, spiece.model, captions, golden manifest, trainer state, PNG, JPEG): every outcome must be a success or the project's own typed error.");
        foreach (var o in new Option[] { format, cases, seed, oneCase, timeout, failures, progress, verbose }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var formats = FuzzTargets.Parse(parse.GetValue(format)!);
            long n = parse.GetValue(cases);
            if (n < 0) throw new ArgumentException($"--cases must be non-negative, got {n}.");
            long? only = parse.GetValue(oneCase);
            if (only is < 0) throw new ArgumentException($"--case must be non-negative, got {only}.");
            double seconds = parse.GetValue(timeout);
            if (!(seconds > 0)) throw new ArgumentException($"--timeout must be positive, got {seconds}.");
            var settings = new FuzzSettings(
                Seed: parse.GetValue(seed), Cases: n, OnlyCase: only, CaseTimeoutSeconds: seconds,
                FailureFolder: parse.GetValue(failures), ProgressSeconds: parse.GetValue(progress), EveryOutcome: parse.GetValue(verbose));
            string? shared = FuzzTargets.FindShared(Directory.GetCurrentDirectory()) ?? FuzzTargets.FindShared(AppContext.BaseDirectory);
            Console.Out.WriteLine($"siglip fuzz: seed {settings.Seed}, {(only is null ? $"{n} cases per format" : $"case {only}")}, formats {string.Join(", ", formats)}" +
                                  $"; spiece seeds: built-in{(shared is null ? " only (no ../shared found)" : " + " + Path.Combine(shared, "fixtures", "sentencepiece-tiny", "spiece.model"))}");
            var results = FuzzTargets.RunAll(formats, settings, shared, line => Console.Error.WriteLine(line));
            Console.Out.Write(FuzzRunner.Table(results));
            return results.All(r => r.Passed) ? 0 : 1;
        });
        return command;
    }
}
