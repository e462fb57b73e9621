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

    /// <summary>The repository's golden/ (found upwards from the current folder), else ./golden.</summary>
    internal static string DefaultGoldenDir()
    {
        var dir = new DirectoryInfo(Directory.GetCurrentDirectory());
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "SigLip.Reference.sln"))) dir = dir.Parent;
        return Path.Combine(dir?.FullName ?? Directory.GetCurrentDirectory(), "golden");
    }

    /// <summary>
    /// The cases `verify` checks by default: the repository's golden/ above the working folder, else
    /// the copy shipped beside the executable (the installed dotnet tool carries one).
    /// </summary>
    internal static (string Dir, string Tried) DefaultCasesDir()
    {
        var repository = DefaultGoldenDir();
        if (Directory.Exists(repository)) return (repository, repository);
        var beside = Path.Combine(AppContext.BaseDirectory, "golden");
        return (Directory.Exists(beside) ? beside : repository, $"{repository}, {beside}");
    }

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
        var backend = new Option<string>("--backend") { Description = "The backend to check (see `siglip backends`).", Required = true };
        var cases = new Option<string?>("--cases") { Description = "A folder of golden cases, or one case folder (default: the repository's golden/, else the copy beside the executable)." };
        var report = new Option<string?>("--report") { Description = "Also write the results as JSON to this file." };
        var dtype = new Option<string?>("--dtype") { Description = "The backend's working dtype: float64, float32 or bfloat16 (default: the backend's own)." };
        var libtorch = new Option<string?>("--libtorch") { Description = "Folder holding libtorch for the torch/cuda backends (default: SIGLIP_LIBTORCH or the packaged one)." };
        var only = new Option<string?>("--case") { Description = "Run only the cases whose name contains this text." };
        var failuresOnly = new Option<bool>("--failures-only") { Description = "Print only the tensors that fail (the summary lists every case)." };
        var command = new Command("verify", "Run every golden case on a backend and compare each output and gradient; exits 0 only if all pass.");
        foreach (var o in new Option[] { backend, cases, report, dtype, libtorch, only, failuresOnly }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var dir = parse.GetValue(cases);
            if (dir is null)
            {
                (dir, var tried) = DefaultCasesDir();
                if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"No golden cases found (tried {tried}); pass --cases DIR.");
            }
            else if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"--cases {dir}: no such folder.");
            var registry = CliBackends.Registry();
            using var started = registry.Start(parse.GetValue(backend)!, new BackendOptions(DType: CliBackends.ParseDType(parse.GetValue(dtype)), LibTorchPath: parse.GetValue(libtorch)));
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
