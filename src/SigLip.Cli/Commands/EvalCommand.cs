using System.CommandLine;
using System.Diagnostics;
using SigLip.Data;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Data;
using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.Evaluation;
using SigLip.Reference.IO;
using SigLip.Reference.Training;
using Spectre.Console;

namespace SigLip.Cli.Commands;

/// <summary>
/// `siglip eval --checkpoint DIR [--backend managed] [--data DIR] [--report FILE.json]`:
/// zero-shot classification and retrieval recall@1/5/10 of a checkpoint, on the built-in data
/// (default) or an image-caption folder.
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "A checkpoint folder (config.json + model.safetensors) or a training run folder (its latest checkpoint is used).", Required = true };
        var backendOptions = new BackendCliOptions();
        var data = new Option<string?>("--data") { Description = "An image-caption folder (captions.jsonl or captions.tsv; classes.txt for zero-shot). Default: the built-in shapes data." };
        var limit = new Option<int>("--limit") { Description = "With --data: at most this many examples.", DefaultValueFactory = _ => 1000 };
        var perClass = new Option<int>("--images-per-class") { Description = "Built-in data: test images per class.", DefaultValueFactory = _ => 50 };
        var seed = new Option<int>("--seed") { Description = "Seed of the evaluation images (built-in) or of the folder's order.", DefaultValueFactory = _ => 1000 };
        var spiece = new Option<string?>("--spiece") { Description = "SentencePiece model for the texts. Default: spiece.model beside the checkpoint; else the built-in word tokenizer for a model trained on the built-in data; else the hashing word tokenizer (as `siglip train --data` uses)." };
        var report = new Option<string?>("--report") { Description = "Write the results as JSON to this file." };
        var maxMemory = SizeCliOptions.MaxMemory();
        var command = new Command("eval", "Zero-shot classification and image-text retrieval (recall@1/5/10 both ways) of a checkpoint.");
        command.Options.Add(checkpoint);
        backendOptions.AddTo(command);
        foreach (var o in new Option[] { data, limit, perClass, seed, spiece, report, maxMemory }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var watch = Stopwatch.StartNew();
            if (parse.GetValue(report) is { } reportPath) AtomicFile.CheckWritable(reportPath); // refused before the evaluation, not after
            string folder = ResolveCheckpoint(parse.GetValue(checkpoint)!);
            // The built-in test images are all held at once: refuse a count that cannot fit before loading anything.
            if (parse.GetValue(data) is null)
                BuiltInEvaluation.CheckFits(parse.GetValue(perClass), new ShapesDatasetOptions(ImageSize: HfConfig.Read(Path.Combine(folder, HfCheckpoint.ConfigFileName)).Vision.ImageSize),
                    SizeCliOptions.Parse(parse, maxMemory), "--images-per-class");
            var loaded = HfCheckpoint.Load(folder);
            var tokenizer = ChooseTokenizer(folder, parse.GetValue(spiece), loaded.Config.Text.VocabSize);
            using var started = backendOptions.Start(parse);
            using var model = started.CreateModel(loaded.Config, loaded.Parameters);
            AnsiConsole.MarkupLine($"Checkpoint [bold]{Markup.Escape(folder)}[/] on [bold]{Markup.Escape(started.Name)}[/] ({Markup.Escape(started.Device)}, {Markup.Escape(started.DType.Name())})");

            EvaluationReport result;
            IImageTextSource? skipped = null;
            if (parse.GetValue(data) is { } dataFolder)
            {
                var source = new ImageCaptionFolder(dataFolder, loaded.Config.Vision.ImageSize, captionTokenizer: tokenizer);
                skipped = source;
                try
                {
                    result = SourceEvaluation.Run(model, tokenizer, source, new SourceEvaluationSettings(Limit: parse.GetValue(limit), Seed: parse.GetValue(seed)));
                }
                finally
                {
                    // Also when it fails: a folder with no usable line says why.
                    FolderSkips.Print(source);
                }
            }
            else
            {
                if (tokenizer is not WordTokenizer)
                    throw new ArgumentException($"Checkpoint '{folder}' was not trained on the built-in data (it uses a {tokenizer.GetType().Name}); evaluate it on its own kind of data with --data FOLDER.");
                result = BuiltInEvaluation.Run(model, new BuiltInEvaluationSettings(ExamplesPerClass: parse.GetValue(perClass), Seed: parse.GetValue(seed)));
            }
            Print(result);
            if (parse.GetValue(report) is { } path)
            {
                var extra = new List<KeyValuePair<string, object?>>
                {
                    new("checkpoint", folder),
                    new("backend", started.Name),
                    new("dtype", started.DType.Name()),
                    new("seconds", watch.Elapsed.TotalSeconds),
                };
                if (skipped is not null) extra.Add(new("skipped", FolderSkips.ToJson(skipped)));
                result.WriteJson(path, extra);
                AnsiConsole.MarkupLine($"Report written to [bold]{Markup.Escape(path)}[/]");
            }
            return 0;
        });
        return command;
    }

    /// <summary>A folder with config.json is a checkpoint; otherwise it is a training run folder and its latest checkpoint is meant.</summary>
    private static string ResolveCheckpoint(string path)
    {
        if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"Checkpoint folder '{path}' does not exist.");
        if (File.Exists(Path.Combine(path, HfCheckpoint.ConfigFileName))) return path;
        return TrainingCheckpoint.Resolve(path);
    }

    /// <summary>
    /// The tokenizer the checkpoint was trained with, the way `siglip train` chose it: an explicit
    /// --spiece, else spiece.model beside the checkpoint; else the built-in word tokenizer for a
    /// model trained on the built-in data (its trainer_state.json says so, or, for a bare HF
    /// folder, its text vocabulary has the built-in size); else the hashing word tokenizer over the
    /// model's vocabulary (a model trained from scratch on a folder).
    /// </summary>
    private static ITextTokenizer ChooseTokenizer(string folder, string? spiece, int vocabSize)
    {
        if (spiece is not null || File.Exists(Path.Combine(folder, PretrainedFolder.SpieceFileName)))
            return TokenizerChoice.Resolve(spiece, folder, vocabSize);
        var builtIn = WordTokenizer.ForShapes();
        bool trainedOnBuiltIn = TrainedOnBuiltIn(folder) ?? vocabSize == builtIn.VocabSize;
        return trainedOnBuiltIn ? builtIn : TokenizerChoice.Resolve(null, null, vocabSize);
    }

    /// <summary>Whether trainer_state.json names the built-in data; null when there is no readable state.</summary>
    private static bool? TrainedOnBuiltIn(string folder)
    {
        string state = Path.Combine(folder, TrainingCheckpoint.StateFile);
        if (!File.Exists(state) || SigLip.Reference.IO.InputFile.Problem(state) is not null) return null; // Load refuses it, naming it
        try
        {
            using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(state));
            return json.RootElement.TryGetProperty("data_description", out var d) && d.ValueKind == System.Text.Json.JsonValueKind.String
                ? d.GetString()!.StartsWith("built-in shapes", StringComparison.Ordinal)
                : null;
        }
        // Unreadable is "no state" (the tokenizer is then chosen by vocabulary size), whether the JSON is broken
        // (JsonException) or well formed but not an object / holding an unpaired surrogate escape, which
        // System.Text.Json answers with InvalidOperationException.
        catch (Exception ex) when (ex is System.Text.Json.JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    internal static void Print(EvaluationReport report)
    {
        AnsiConsole.MarkupLine($"Data: {Markup.Escape(report.Data)}");
        if (report.ZeroShot is { } z) PrintZeroShot("Zero-shot classification", z);
        if (report.UnseenZeroShot is { } u) PrintZeroShot("Zero-shot classification of held-out combinations (among all classes)", u);
        var table = new Table().Title("Retrieval").AddColumn("direction");
        foreach (var r in report.Retrieval.ImageToText) table.AddColumn(new TableColumn($"R@{r.K}").RightAligned());
        table.AddRow(["image -> text", .. report.Retrieval.ImageToText.Select(r => Percent(r.Recall))]);
        table.AddRow(["text -> image", .. report.Retrieval.TextToImage.Select(r => Percent(r.Recall))]);
        table.Caption($"{report.Retrieval.Images} images, {report.Retrieval.Texts} distinct captions (identical captions count as one text)");
        AnsiConsole.Write(table);
    }

    private static void PrintZeroShot(string title, ZeroShotResult z)
    {
        var table = new Table().Title(title).AddColumn("class").AddColumn(new TableColumn("images").RightAligned()).AddColumn(new TableColumn("accuracy").RightAligned());
        foreach (var c in z.PerClass.Where(c => c.Examples > 0))
            table.AddRow(Markup.Escape(c.ClassName), c.Examples.ToString(), Percent(c.Accuracy));
        table.AddRow("[bold]all[/]", $"[bold]{z.Examples}[/]", $"[bold]{Percent(z.Accuracy)}[/]");
        table.Caption($"{z.ClassNames.Count} classes, chance {Percent(z.ChanceAccuracy)}; mean per-class accuracy {Percent(z.MeanPerClassAccuracy)}");
        AnsiConsole.Write(table);
    }

    private static string Percent(double v) => double.IsNaN(v) ? "-" : v.ToString("P1", System.Globalization.CultureInfo.InvariantCulture);
}
