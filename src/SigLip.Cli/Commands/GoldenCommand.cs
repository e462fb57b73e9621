using System.CommandLine;
using System.Globalization;
using SigLip.Data;
using SigLip.Reference;
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
        command.Subcommands.Add(Compare());
        return command;
    }

    /// <summary>Where `golden generate` writes by default: the repository's golden/ (found upwards from the working folder), else ./golden.</summary>
    internal static string DefaultGoldenDir() =>
        GoldenLocator.RepositoryGolden(Directory.GetCurrentDirectory()) ?? Path.Combine(Directory.GetCurrentDirectory(), "golden");

    private static Command Generate()
    {
        var output = new Option<string?>("--out") { Description = "Folder to write into (default: the repository's golden/; with --checkpoint: required, the case folder)." };
        var fixture = new Option<string?>("--hf-fixture") { Description = "The HF fixture folder to copy in as hf-siglip-tiny (default: ../shared/fixtures/hf-siglip-tiny beside the repository, if present; otherwise a copy already in the output folder is kept)." };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Make ONE case from this HF SigLIP folder (config.json, model.safetensors; spiece.model for --texts) with every intermediate (see docs/porting.md), instead of the committed cases." };
        var inputs = new Option<string?>("--inputs") { Description = "With --checkpoint: a safetensors file holding pixel_values [B, C, S, S] and input_ids [B, L] (int64 or int32)." };
        var images = new Option<string[]>("--images") { Description = "With --checkpoint: image files, preprocessed as HF's SiglipImageProcessor does (bicubic resize, rescale, normalise).", AllowMultipleArgumentsPerToken = true };
        var texts = new Option<string[]>("--texts") { Description = "With --checkpoint: texts, tokenized as HF's SiglipTokenizer does (padded to max_position_embeddings); as many as images.", AllowMultipleArgumentsPerToken = true };
        var gradients = new Option<bool>("--gradients") { Description = "With --checkpoint: also the gradient of HF's sigmoid loss w.r.t. every parameter (about 3 times the work)." };
        var maxMemory = new Option<string?>("--max-memory") { Description = "With --checkpoint: refuse to start if the estimate exceeds this (e.g. 8G, 512M); the memory available is always checked." };
        var command = new Command("generate", "Compute every golden case with the reference in float64 from fixed seeds (byte-identical on every run) and write manifest.json; or, with --checkpoint, one case from a checkpoint and your inputs with every intermediate.");
        foreach (var o in new Option[] { output, fixture, checkpoint, inputs, images, texts, gradients, maxMemory }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            if (parse.GetValue(checkpoint) is { } checkpointDir)
                return GenerateFromCheckpoint(checkpointDir, parse.GetValue(output), parse.GetValue(inputs), parse.GetValue(images) ?? [], parse.GetValue(texts) ?? [],
                    parse.GetValue(gradients), parse.GetValue(maxMemory));
            foreach (var (name, given) in new (string, bool)[] { ("--inputs", parse.GetValue(inputs) is not null), ("--images", (parse.GetValue(images) ?? []).Length > 0),
                         ("--texts", (parse.GetValue(texts) ?? []).Length > 0), ("--gradients", parse.GetValue(gradients)), ("--max-memory", parse.GetValue(maxMemory) is not null) })
                if (given) throw new ArgumentException($"{name} needs --checkpoint DIR (it makes one case from a checkpoint); without --checkpoint, 'golden generate' rewrites the committed cases.");
            var outDir = parse.GetValue(output) ?? DefaultGoldenDir();
            AtomicFile.CheckFolderWritable(outDir, "--out");
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

    private static int GenerateFromCheckpoint(string checkpointDir, string? outDir, string? inputsFile, string[] images, string[] texts, bool gradients, string? maxMemory)
    {
        if (outDir is null) throw new ArgumentException("--out DIR is required with --checkpoint: the folder the case is written into (e.g. cases/my-model).");
        AtomicFile.CheckFolderWritable(outDir, "--out");
        if (!Directory.Exists(checkpointDir)) throw new DirectoryNotFoundException($"--checkpoint {checkpointDir}: no such folder; give an HF SigLIP folder holding config.json and model.safetensors.");
        var configPath = Path.Combine(checkpointDir, HfCheckpoint.ConfigFileName);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"--checkpoint {checkpointDir}: no {HfCheckpoint.ConfigFileName}; an HF SigLIP folder holds config.json and model.safetensors.");
        var config = HfConfig.Read(configPath);
        long? max = maxMemory is null ? null : CheckpointCase.ParseBytes(maxMemory, "--max-memory");

        SiglipBatch batch;
        string covers;
        if (inputsFile is not null)
        {
            if (images.Length > 0 || texts.Length > 0) throw new ArgumentException("Give either --inputs FILE.safetensors or --images and --texts, not both.");
            if (!File.Exists(inputsFile)) throw new FileNotFoundException($"--inputs {inputsFile}: no such file; give a safetensors file holding pixel_values and input_ids.");
            using var file = SafeTensorsFile.Open(inputsFile);
            foreach (var n in new[] { "pixel_values", "input_ids" })
                if (!file.Contains(n)) throw new InputFormatException($"--inputs {inputsFile}: no tensor '{n}'; the file must hold pixel_values [B, {config.Vision.NumChannels}, {config.Vision.ImageSize}, {config.Vision.ImageSize}] and input_ids [B, L] (L <= {config.Text.MaxPositionEmbeddings}).", inputsFile);
            batch = new SiglipBatch(file.ReadTensor("pixel_values"), file.ReadTokenIds("input_ids"));
            covers = $"checkpoint {Path.GetFullPath(checkpointDir)}, inputs {Path.GetFileName(inputsFile)}";
        }
        else
        {
            if (images.Length == 0 || texts.Length == 0 || images.Length != texts.Length)
                throw new ArgumentException($"Give the inputs: --inputs FILE.safetensors, or --images and --texts with as many texts as images (got {images.Length} images, {texts.Length} texts).");
            var spiece = Path.Combine(checkpointDir, PretrainedFolder.SpieceFileName);
            if (!File.Exists(spiece)) throw new FileNotFoundException($"--checkpoint {checkpointDir}: no {PretrainedFolder.SpieceFileName}, which --texts needs; copy it from the model's repository, or give --inputs with input_ids.");
            var tokenizer = SiglipTokenizer.Load(spiece);
            int maxLength = config.Text.MaxPositionEmbeddings;
            foreach (var w in PretrainedFolder.CheckConsistency(config, tokenizer, maxLength, checkpointDir)) Console.Error.WriteLine($"note: {w}");
            foreach (var image in images)
                if (!File.Exists(image)) throw new FileNotFoundException($"--images {image}: no such file.");
            var pixels = new ImageLoader(config.Vision.ImageSize).LoadBatch(images);
            if (pixels.Shape[1] != config.Vision.NumChannels)
                throw new ArgumentException($"--images gives {pixels.Shape[1]}-channel pixel values but vision_config.num_channels is {config.Vision.NumChannels}; give --inputs with pixel_values instead.");
            batch = new SiglipBatch(pixels, tokenizer.Encode(texts, maxLength));
            covers = $"checkpoint {Path.GetFullPath(checkpointDir)}, images {string.Join(", ", images.Select(Path.GetFileName))}, texts {System.Text.Json.JsonSerializer.Serialize(texts)}";
        }

        var estimate = CheckpointCase.Estimate(config, batch.Size, batch.InputIds.Length, gradients);
        long available = CheckpointCase.AvailableBytes();
        Console.Error.WriteLine($"{batch.Size} image-text pairs, {batch.InputIds.Length} tokens per text{(gradients ? ", with gradients" : "")}: needs {estimate}; {CheckpointCase.FormatBytes(available)} available");
        CheckpointCase.CheckFits(estimate, max, available);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var tensors = CheckpointCase.Write(checkpointDir, batch, outDir, gradients, covers, line => Console.Error.WriteLine("  " + line));
        Console.Out.WriteLine($"wrote a case of {tensors.Count} tensors ({(gradients ? "outputs, intermediates and gradients" : "outputs and intermediates")}) to {outDir} in {CheckpointCase.FormatSeconds(clock.Elapsed.TotalSeconds)}; the names, in forward order, are in {Path.Combine(outDir, Intermediates.ListFile)}");
        return 0;
    }

    private static Command Compare()
    {
        var caseDir = new Option<string>("--case") { Description = "The golden case folder (from 'siglip golden generate --checkpoint', or any case).", Required = true };
        var actual = new Option<string>("--actual") { Description = "A safetensors file with your framework's tensors under the case's names (see intermediates.json in the case).", Required = true };
        var dtype = new Option<string>("--dtype") { Description = $"The dtype your framework computed in: {string.Join(", ", GoldenComparer.DTypeNames)}; picks the tolerance.", Required = true };
        var report = new Option<string?>("--report") { Description = "Also write the results as JSON to this file." };
        var command = new Command("compare", "Compare tensors dumped by any framework with a golden case, in forward order; names the first tensor that diverges. Exit code 0 when every tensor present passes.");
        foreach (var o in new Option[] { caseDir, actual, dtype, report }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            if (parse.GetValue(report) is { } target) AtomicFile.CheckWritable(target); // refused before the comparison, not after
            var result = GoldenComparer.Compare(parse.GetValue(caseDir)!, parse.GetValue(actual)!, parse.GetValue(dtype)!);
            PrintCompare(result);
            if (parse.GetValue(report) is { } reportPath)
            {
                AtomicFile.WriteAllText(reportPath, result.ToJson());
                Console.Out.WriteLine($"report written to {reportPath}");
            }
            return result.Passed ? 0 : 1;
        });
        return command;
    }

    private static void PrintCompare(CompareReport r)
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 220);
        AnsiConsole.MarkupLine($"case {Markup.Escape(r.CaseDir)} against {Markup.Escape(r.ActualFile)}, dtype {Markup.Escape(r.DType)} " +
                               $"(atol {E(r.Tolerance.Atol)}{(r.Tolerance.AtolRelativeToMaxAbs ? " x the tensor's max |e|" : "")}, rtol {E(r.Tolerance.Rtol)}); tensors in forward order");
        var first = r.FirstDivergence;
        if (r.Tensors.Count > 0)
        {
            AnsiConsole.Write(ComparisonTable(r.Tensors.Select(t => t.Comparison), first?.Comparison));
        }
        foreach (var t in r.Tensors.Where(t => t.Note is not null)) AnsiConsole.MarkupLine($"[yellow]note:[/] {Markup.Escape(t.Name)}: {Markup.Escape(t.Note!)}");
        if (r.Missing.Count > 0) AnsiConsole.MarkupLine($"[yellow]not in the dump ({r.Missing.Count}, not compared):[/] {Markup.Escape(string.Join(", ", r.Missing))}");
        if (r.Extra.Count > 0) AnsiConsole.MarkupLine($"[yellow]in the dump but not in the case ({r.Extra.Count}, ignored):[/] {Markup.Escape(string.Join(", ", r.Extra.Take(20)))}{(r.Extra.Count > 20 ? ", ..." : "")}");
        AnsiConsole.MarkupLine(r.Passed ? $"[green]{Markup.Escape(r.Summary())}[/]" : $"[red]{Markup.Escape(r.Summary())}[/]");
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
            if (parse.GetValue(report) is { } target) AtomicFile.CheckWritable(target); // refused before the cases run, not after
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

    /// <summary>One row per tensor comparison, in the order given; <paramref name="firstFailure"/> is marked "FAIL (first)".</summary>
    private static Table ComparisonTable(IEnumerable<Reference.Numerics.Comparison> comparisons, Reference.Numerics.Comparison? firstFailure)
    {
        var table = new Table().AddColumns("tensor", "max abs err", "max rel err", "tolerance", "worst index", "actual / expected", "result");
        foreach (var c in comparisons)
            table.AddRow(
                Markup.Escape(c.Name),
                E(c.MaxAbsError),
                E(c.MaxRelError),
                $"{E(c.Tolerance.Atol)} + {E(c.Tolerance.Rtol)}|e|",
                Markup.Escape(Reference.Tensor.ShapeToString(c.WorstIndex)),
                c.Problem is not null ? Markup.Escape(c.Problem) : $"{c.WorstActual:G6} / {c.WorstExpected:G6}",
                c.Passed ? "[green]pass[/]" : ReferenceEquals(c, firstFailure) ? "[red]FAIL (first)[/]" : "[red]FAIL[/]");
        return table;
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
            if (c.FirstDivergence is { } first) AnsiConsole.MarkupLine($"  [red]first divergence (tensors in forward order): {Markup.Escape(first.Name)}[/]");
            if (c.NotProduced is { Count: > 0 } np) AnsiConsole.MarkupLine($"  [yellow]not returned by the backend (intermediates, not compared):[/] {np.Count}");
            var rows = c.Tensors.Where(t => !failuresOnly || !t.Passed).ToList();
            if (rows.Count == 0) continue;
            AnsiConsole.Write(ComparisonTable(rows, firstFailure: null));
        }
        int passed = report.Cases.Count(c => c.Passed);
        AnsiConsole.MarkupLine(report.Passed
            ? $"\n[green]all {report.Cases.Count} cases pass[/]"
            : $"\n[red]{report.Cases.Count - passed} of {report.Cases.Count} cases do not pass[/]{(report.Cases.Count == 0 ? " (no cases found)" : "")}");
        foreach (var f in report.Failures.Take(30)) AnsiConsole.MarkupLine($"  [red]{Markup.Escape(f)}[/]");
    }
}
