using System.CommandLine;
using System.Globalization;
using SigLip.Reference.Backends;
using SigLip.Reference.IO;
using SigLip.Reference.IO.Golden;
using Spectre.Console;

namespace SigLip.Cli.Commands;

/// <summary>`siglip golden generate|verify`: write the golden cases, or check a backend against them.</summary>
internal static class GoldenCommand
{
    public static Command Create()
    {
        var command = new Command("golden", "Golden cases: the contract every backend must meet before training at scale.");
        command.Subcommands.Add(Generate());
        command.Subcommands.Add(Verify());
        return command;
    }

    /// <summary>Where `golden generate` writes by default: the repository's golden/ (found upwards from the working folder), else ./golden.</summary>
    internal static string DefaultGoldenDir() =>
        GoldenLocator.RepositoryGolden(Directory.GetCurrentDirectory()) ?? Path.Combine(Directory.GetCurrentDirectory(), "golden");

    private static Command Generate()
    {
        var output = new Option<string?>("--out") { Description = "Folder to write the cases into (default: the repository's golden/)." };
        var fixture = new Option<string?>("--hf-fixture") { Description = "The HF fixture folder to copy in as hf-siglip-tiny (default: ../shared/fixtures/hf-siglip-tiny beside the repository, if present; otherwise a copy already in the output folder is kept)." };
        var command = new Command("generate", "Compute every golden case with the reference in float64 from fixed seeds (byte-identical on every run) and write manifest.json.");
        command.Options.Add(output);
        command.Options.Add(fixture);
        command.SetAction(parse =>
        {
            var outDir = parse.GetValue(output) ?? DefaultGoldenDir();
            var fixtureDir = parse.GetValue(fixture);
            if (fixtureDir is null)
            {
                var guess = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(DefaultGoldenDir()))!, "..", "shared", "fixtures", "hf-siglip-tiny"));
                if (Directory.Exists(guess)) fixtureDir = guess;
            }
            else if (!Directory.Exists(fixtureDir)) throw new DirectoryNotFoundException($"--hf-fixture {fixtureDir}: no such folder.");
            var manifest = GoldenGenerator.Generate(outDir, fixtureDir, name => Console.Out.WriteLine($"  {name}"));
            Console.Out.WriteLine($"wrote {manifest.Cases.Count} cases and {GoldenFormat.ManifestFile} to {outDir}");
            return 0;
        });
        return command;
    }

    private static Command Verify()
    {
        var backendOptions = new BackendCliOptions();
        var cases = new Option<string?>("--cases") { Description = $"A folder of golden cases, or one case folder. Default: {GoldenLocator.EnvironmentVariable}, else golden/ beside the executable (its build's copy), else the repository's golden/." };
        var report = new Option<string?>("--report") { Description = "Also write the results as JSON to this file." };
        var only = new Option<string?>("--case") { Description = "Run only the cases whose name contains this text." };
        var failuresOnly = new Option<bool>("--failures-only") { Description = "Print only the tensors that fail (the summary lists every case)." };
        var command = new Command("verify", $"Run every golden case on a backend (--backend; {BackendCliOptions.DefaultBackend} when not given) and compare each output and gradient; exits 0 only if all pass.");
        backendOptions.AddTo(command);
        foreach (var o in new Option[] { cases, report, only, failuresOnly }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var dir = GoldenLocator.Find(parse.GetValue(cases), "--cases");
            using var started = backendOptions.Start(parse);
            var filter = parse.GetValue(only);
            var result = GoldenVerifier.Verify(started, dir, filter is null ? null : n => n.Contains(filter, StringComparison.OrdinalIgnoreCase),
                name => Console.Error.WriteLine($"running {name} ..."));
            Print(result, parse.GetValue(failuresOnly));
            if (parse.GetValue(report) is { } reportPath)
            {
                AtomicFile.WriteAllText(reportPath, result.ToJson());
                Console.Out.WriteLine($"report written to {reportPath}");
            }
            return result.Passed ? 0 : 1;
        });
        return command;
    }

    private static string E(double v) => double.IsNaN(v) ? "-" : v.ToString("0.00E+00", CultureInfo.InvariantCulture);

    private static void Print(GoldenReport report, bool failuresOnly)
    {
        // Logs and pipes get Spectre's 80 columns, which would cut parameter names: widen them.
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 220);
        AnsiConsole.MarkupLine($"backend [bold]{Markup.Escape(report.Backend)}[/] on {Markup.Escape(report.Device)}, dtype {Markup.Escape(report.DType.Name())}; cases from {Markup.Escape(report.CasesDir)}");
        foreach (var note in report.Notes) AnsiConsole.MarkupLine($"[yellow]note:[/] {Markup.Escape(note)}");
        foreach (var c in report.Cases)
        {
            string status = c.Status switch
            {
                GoldenCaseStatus.Passed => "[green]PASS[/]",
                GoldenCaseStatus.Failed => "[red]FAIL[/]",
                GoldenCaseStatus.Corrupted => "[red]CORRUPTED[/]",
                _ => "[red]ERROR[/]",
            };
            AnsiConsole.MarkupLine($"\n{status} [bold]{Markup.Escape(c.Name)}[/] ({c.Kind}, {c.Seconds:0.00} s){(c.Covers is null ? "" : ": " + Markup.Escape(c.Covers))}");
            if (c.Problem is not null) AnsiConsole.MarkupLine($"  [red]{Markup.Escape(c.Problem)}[/]");
            var rows = c.Tensors.Where(t => !failuresOnly || !t.Passed).ToList();
            if (rows.Count == 0) continue;
            var table = new Table().AddColumns("tensor", "max abs err", "max rel err", "tolerance", "worst index", "actual / expected", "result");
            foreach (var t in rows)
                table.AddRow(
                    Markup.Escape(t.Name),
                    E(t.MaxAbsError),
                    E(t.MaxRelError),
                    $"{E(t.Tolerance.Atol)} + {E(t.Tolerance.Rtol)}|e|",
                    Markup.Escape(Reference.Tensor.ShapeToString(t.WorstIndex)),
                    t.Problem is not null ? Markup.Escape(t.Problem) : $"{t.WorstActual:G6} / {t.WorstExpected:G6}",
                    t.Passed ? "[green]pass[/]" : "[red]FAIL[/]");
            AnsiConsole.Write(table);
        }
        int passed = report.Cases.Count(c => c.Passed);
        AnsiConsole.MarkupLine(report.Passed
            ? $"\n[green]all {report.Cases.Count} cases pass[/]"
            : $"\n[red]{report.Cases.Count - passed} of {report.Cases.Count} cases do not pass[/]{(report.Cases.Count == 0 ? " (no cases found)" : "")}");
        foreach (var f in report.Failures.Take(30)) AnsiConsole.MarkupLine($"  [red]{Markup.Escape(f)}[/]");
    }
}
