using System.CommandLine;
using System.Globalization;
using SigLip.Reference.Backends;
using SigLip.Reference.Evaluation;
using SigLip.Reference.IO;
using SigLip.Reference.Training;
using Spectre.Console;

namespace SigLip.Cli.Commands;

/// <summary>
/// `siglip experiment batch-size`: sigmoid against softmax loss at small batch sizes on the
/// built-in data, several seeds, the same number of pairs per run; a markdown table, a CSV and a
/// PNG plot of zero-shot accuracy (mean +- std over seeds) against batch size.
/// </summary>
internal static class ExperimentCommand
{
    public static Command Create()
    {
        var command = new Command("experiment", "Experiments that test the paper's claims on the built-in data.");
        command.Subcommands.Add(BatchSize());
        return command;
    }

    /// <summary>What `experiment batch-size` writes into --out.</summary>
    private static readonly string[] OutputFiles = ["batch-size.md", "batch-size.csv", "batch-size.png"];

    private static Command BatchSize()
    {
        var batchSizes = new Option<int[]>("--batch-sizes") { Description = "Batch sizes to compare.", AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => [.. BatchSizeExperimentSettings.DefaultBatchSizes] };
        var seeds = new Option<int>("--seeds") { Description = "Seeds per (loss, batch size); each seed fixes initialisation and data order for both losses.", DefaultValueFactory = _ => 3 };
        var pairs = new Option<int>("--pairs") { Description = "Image-text pairs every run sees (steps = pairs / batch size); must be a multiple of every batch size.", DefaultValueFactory = _ => new BatchSizeExperimentSettings().PairsPerRun };
        var learningRate = new Option<double?>("--lr") { Description = "Peak learning rate (default: the built-in recipe's)." };
        var biasInit = new Option<double?>("--bias-init") { Description = "Starting logit bias b of every run (default: the paper's -10, chosen for batches of thousands)." };
        var evalPerClass = new Option<int>("--eval-images-per-class") { Description = "Test images per class for each run's zero-shot accuracy.", DefaultValueFactory = _ => 20 };
        var parallel = new Option<int>("--parallel") { Description = "Runs trained at the same time (results do not depend on it); default: the number of CPU cores.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var backendOptions = new BackendCliOptions();
        var output = new Option<string>("--out") { Description = "Folder for batch-size.md, batch-size.csv and batch-size.png.", DefaultValueFactory = _ => Path.Combine("runs", "experiment-batch-size") };
        var command = new Command("batch-size", "Sigmoid vs softmax loss at small batch sizes (same pairs seen, several seeds): table, CSV and PNG.");
        foreach (var o in new Option[] { batchSizes, seeds, pairs, learningRate, biasInit, evalPerClass, parallel }) command.Options.Add(o);
        backendOptions.AddTo(command);
        command.Options.Add(output);
        command.SetAction((parse, cancellationToken) =>
        {
            var baseSettings = BuiltInRecipe.Settings;
            if (parse.GetValue(learningRate) is double lr) baseSettings = baseSettings with { LearningRate = lr, MinLearningRate = Math.Min(baseSettings.MinLearningRate, lr) };
            if (parse.GetValue(biasInit) is double b) baseSettings = baseSettings with { InitialLogitBias = b };
            var settings = new BatchSizeExperimentSettings(
                BatchSizes: parse.GetValue(batchSizes),
                Seeds: parse.GetValue(seeds),
                PairsPerRun: parse.GetValue(pairs),
                BaseSettings: baseSettings,
                EvalImagesPerClass: parse.GetValue(evalPerClass),
                Parallel: parse.GetValue(parallel));
            settings.Validate();
            string folder = parse.GetValue(output)!;
            // Every output path is checked before the runs (minutes of work), so a bad one fails now and leaves nothing half-written.
            if (File.Exists(folder)) throw new ArgumentException($"--out {folder} is a file, not a folder: give a folder for batch-size.md, batch-size.csv and batch-size.png.");
            foreach (var file in OutputFiles) AtomicFile.CheckWritable(ContainedPath.ForWriting(folder, file));
            int total = settings.Seeds * settings.BatchSizeList.Count * 2;
            AnsiConsole.MarkupLine($"Batch-size experiment: {total} runs (batch sizes {string.Join(", ", settings.BatchSizeList)}; sigmoid and softmax; {settings.Seeds} seed(s)), {settings.PairsPerRun} pairs each, on [bold]{Markup.Escape(backendOptions.BackendName(parse))}[/].");

            using var started = backendOptions.Start(parse);
            BatchSizeExperimentResult result = null!;
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(context =>
                {
                    var task = context.AddTask("runs", maxValue: total);
                    var progress = new SynchronousProgress<BatchSizeRun>(run =>
                    {
                        task.Increment(1);
                        task.Description = $"{BatchSizeExperimentResult.Name(run.Loss)} b={run.BatchSize} seed {run.Seed}: {run.ZeroShotAccuracy:P0}";
                    });
                    result = BatchSizeExperiment.Run(started, settings, progress, cancellationToken);
                });

            Directory.CreateDirectory(folder);
            string markdown = result.ToMarkdown();
            AtomicFile.WriteAllText(ContainedPath.ForWriting(folder, "batch-size.md"), markdown);
            AtomicFile.WriteAllText(ContainedPath.ForWriting(folder, "batch-size.csv"), result.ToCsv());
            SavePlot(ContainedPath.ForWriting(folder, "batch-size.png"), result);
            Console.Out.WriteLine();
            Console.Out.WriteLine(markdown); // plain: a markdown table must not be wrapped to the terminal width
            AnsiConsole.MarkupLine($"Wrote [bold]{Markup.Escape(Path.Combine(folder, "batch-size.md"))}[/], batch-size.csv and batch-size.png.");
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>Zero-shot accuracy against batch size (log2 axis), mean with +-std error bars, one line per loss, chance dashed.</summary>
    private static void SavePlot(string path, BatchSizeExperimentResult result)
    {
        var plot = new ScottPlot.Plot();
        var colours = new Dictionary<LossKind, ScottPlot.Color> { [LossKind.Sigmoid] = ScottPlot.Colors.DarkOrange, [LossKind.Softmax] = ScottPlot.Colors.SteelBlue };
        foreach (var loss in new[] { LossKind.Sigmoid, LossKind.Softmax })
        {
            var rows = result.Summaries.Where(s => s.Loss == loss).OrderBy(s => s.BatchSize).ToArray();
            if (rows.Length == 0) continue;
            var xs = rows.Select(r => Math.Log2(r.BatchSize)).ToArray();
            var ys = rows.Select(r => r.MeanAccuracy * 100).ToArray();
            var errors = rows.Select(r => r.StdAccuracy * 100).ToArray();
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = loss == LossKind.Sigmoid ? "sigmoid (SigLIP)" : "softmax (CLIP)";
            line.Color = colours[loss];
            line.LineWidth = 2;
            line.MarkerSize = 8;
            var bars = plot.Add.ErrorBar(xs, ys, errors);
            bars.Color = colours[loss];
        }
        var chance = plot.Add.HorizontalLine(result.ChanceAccuracy * 100);
        chance.LinePattern = ScottPlot.LinePattern.Dashed;
        chance.Color = ScottPlot.Colors.Gray;
        chance.LegendText = "chance";
        var sizes = result.Settings.BatchSizeList.OrderBy(b => b).ToArray();
        plot.Axes.Bottom.SetTicks(sizes.Select(b => Math.Log2(b)).ToArray(), sizes.Select(b => b.ToString(CultureInfo.InvariantCulture)).ToArray());
        plot.Axes.SetLimitsY(0, 100);
        plot.Title($"Zero-shot accuracy vs batch size ({result.Settings.PairsPerRun} pairs per run, {result.Settings.Seeds} seed(s), mean ± std)");
        plot.XLabel("batch size");
        plot.YLabel("zero-shot accuracy on fresh test images (%)");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        var bytes = plot.GetImageBytes(900, 550, ScottPlot.ImageFormat.Png);
        AtomicFile.Write(path, stream => stream.Write(bytes));
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        private readonly object _lock = new();
        public void Report(T value) { lock (_lock) report(value); }
    }
}
