using System.Globalization;
using System.Text;
using SigLip.Reference.Backends;
using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.Models;
using SigLip.Reference.Training;

namespace SigLip.Reference.Evaluation;

/// <summary>
/// Settings of the batch-size experiment: sigmoid against softmax loss at small batch sizes on
/// the built-in data, several seeds, the same number of image-text pairs seen by every run.
/// </summary>
/// <param name="BatchSizes">Batch sizes to compare (each must divide <paramref name="PairsPerRun"/>).</param>
/// <param name="Seeds">Seeds 0..Seeds-1; a seed fixes the initialisation and the data order, shared by both losses (paired runs).</param>
/// <param name="PairsPerRun">Image-text pairs every run sees: steps = PairsPerRun / batch size.</param>
/// <param name="Config">The model; null: <see cref="BuiltInRecipe.Config"/>.</param>
/// <param name="BaseSettings">Hyper-parameters other than steps, batch, loss, seed, warmup; null: <see cref="BuiltInRecipe.Settings"/>.</param>
/// <param name="WarmupFraction">Warmup steps as a fraction of each run's steps (so every run has the same schedule shape).</param>
/// <param name="EvalImagesPerClass">Test images per class for the zero-shot accuracy of each run.</param>
/// <param name="EvalSeed">Seed of the evaluation images (the same for every run).</param>
/// <param name="Parallel">Runs trained at the same time (each run is deterministic, so results do not depend on it).</param>
public sealed record BatchSizeExperimentSettings(
    IReadOnlyList<int>? BatchSizes = null,
    int Seeds = 3,
    int PairsPerRun = 4096,
    SiglipConfig? Config = null,
    TrainingSettings? BaseSettings = null,
    double WarmupFraction = 0.1,
    int EvalImagesPerClass = 20,
    int EvalSeed = 1000,
    int Parallel = 1)
{
    /// <summary>4, 8, 16 and 32 pairs per step.</summary>
    public static IReadOnlyList<int> DefaultBatchSizes { get; } = [4, 8, 16, 32];

    /// <summary><see cref="BatchSizes"/>, or <see cref="DefaultBatchSizes"/> when it is null.</summary>
    public IReadOnlyList<int> BatchSizeList => BatchSizes ?? DefaultBatchSizes;

    /// <summary>Throws <see cref="ArgumentException"/> naming the setting that cannot be used.</summary>
    public void Validate()
    {
        if (BatchSizeList.Count == 0) throw new ArgumentException("The experiment needs at least one batch size.");
        foreach (int b in BatchSizeList)
        {
            if (b < 2) throw new ArgumentException($"Batch size {b} is too small: a contrastive loss needs at least 2 pairs per batch.");
            if (PairsPerRun < b)
                throw new ArgumentException($"Pairs per run {PairsPerRun} (--pairs {PairsPerRun}) is less than batch size {b}: every run needs at least one step; use --pairs {BatchSizeList.Max()} or more (a multiple of every batch size).");
            if (PairsPerRun % b != 0) throw new ArgumentException($"Pairs per run {PairsPerRun} is not a multiple of batch size {b}; every run must see the same number of pairs.");
        }
        if (Seeds < 1) throw new ArgumentException($"The experiment needs at least 1 seed, got {Seeds}.");
        if (!(WarmupFraction >= 0 && WarmupFraction < 1)) throw new ArgumentException($"Warmup fraction must be in [0, 1), got {WarmupFraction}.");
        if (EvalImagesPerClass < 1) throw new ArgumentException($"Evaluation images per class must be at least 1, got {EvalImagesPerClass}.");
        if (Parallel < 1) throw new ArgumentException($"Parallel runs must be at least 1, got {Parallel}.");

        // Sizes (issue 15), before anything is planned or allocated: the longest run's loss history ...
        int smallest = BatchSizeList.Min();
        long steps = PairsPerRun / smallest;
        if (steps > ModelSize.MaxSteps)
            throw new ModelSizeException($"--pairs {PairsPerRun:N0}: {steps:N0} steps per run at batch size {smallest}, over the {ModelSize.MaxSteps:N0} steps a run can record; " +
                                         $"use --pairs {(long)ModelSize.MaxSteps * smallest:N0} or less.");
        ModelSize.CheckSteps(steps, maxBytes: null, option: $"--pairs {PairsPerRun:N0} / batch size {smallest}, the steps per run");
        // ... and the plan: one entry and one result per run.
        long runs = (long)Seeds * BatchSizeList.Count * 2;
        long perSeed = BatchSizeList.Count * 2L * BytesPerPlannedRun;
        long fitsSeeds = Math.Min(int.MaxValue / (BatchSizeList.Count * 2L), ModelSize.AvailableBytes() / perSeed);
        if (Seeds > fitsSeeds)
            throw new ModelSizeException($"--seeds {Seeds:N0}: {runs:N0} runs ({BatchSizeList.Count} batch size(s) x 2 losses x {Seeds:N0} seeds) cannot be planned in the memory " +
                                         $"available to this process or counted in an int; use --seeds {fitsSeeds:N0} or less.");
    }

    /// <summary>Bytes one run takes in the plan and the results (its plan entry and its <see cref="BatchSizeRun"/>), rounded up.</summary>
    private const int BytesPerPlannedRun = 256;
}

/// <summary>One training run of the experiment and how it scored.</summary>
/// <param name="Loss">Sigmoid or softmax.</param>
/// <param name="BatchSize">Pairs per step.</param>
/// <param name="Seed">The run's seed (initialisation and data order).</param>
/// <param name="Steps">Steps trained (pairs per run / batch size).</param>
/// <param name="FinalLoss">The last step's loss.</param>
/// <param name="ZeroShotAccuracy">Zero-shot accuracy on fresh images of the seen combinations.</param>
/// <param name="UnseenZeroShotAccuracy">Zero-shot accuracy on the held-out combinations.</param>
/// <param name="ImageToTextRecallAt1">Image-to-text recall@1.</param>
/// <param name="TextToImageRecallAt1">Text-to-image recall@1.</param>
/// <param name="Seconds">Wall time of the run.</param>
public sealed record BatchSizeRun(
    LossKind Loss,
    int BatchSize,
    int Seed,
    int Steps,
    double FinalLoss,
    double ZeroShotAccuracy,
    double UnseenZeroShotAccuracy,
    double ImageToTextRecallAt1,
    double TextToImageRecallAt1,
    double Seconds);

/// <summary>Sigmoid minus softmax zero-shot accuracy at one batch size, paired by seed.</summary>
/// <param name="MeanDifference">Mean over seeds of sigmoid accuracy minus softmax accuracy (NaN when no pair ran).</param>
/// <param name="SigmoidBetter">Seeds where the sigmoid run is more accurate.</param>
/// <param name="Pairs">Seeds where both losses ran.</param>
/// <param name="BatchSize">Pairs per step.</param>
public sealed record PairedDifference(int BatchSize, double MeanDifference, int SigmoidBetter, int Pairs);

/// <summary>Mean and standard deviation (n - 1 denominator; 0 for one seed) over seeds of one (loss, batch size).</summary>
/// <param name="Loss">Sigmoid or softmax.</param>
/// <param name="BatchSize">Pairs per training step.</param>
/// <param name="Runs">How many seeds ran.</param>
/// <param name="MeanAccuracy">Mean zero-shot accuracy on the seen combinations.</param>
/// <param name="StdAccuracy">Its standard deviation over seeds.</param>
/// <param name="MeanUnseenAccuracy">Mean zero-shot accuracy on the held-out combinations.</param>
/// <param name="StdUnseenAccuracy">Its standard deviation over seeds.</param>
public sealed record BatchSizeSummary(LossKind Loss, int BatchSize, int Runs, double MeanAccuracy, double StdAccuracy, double MeanUnseenAccuracy, double StdUnseenAccuracy);

/// <summary>Every run and the per-(loss, batch size) summaries.</summary>
/// <param name="Settings">The experiment's settings.</param>
/// <param name="ChanceAccuracy">What guessing gets (1 / classes).</param>
/// <param name="Runs">Every run, ordered by seed, then batch size, then loss (sigmoid first).</param>
public sealed record BatchSizeExperimentResult(BatchSizeExperimentSettings Settings, double ChanceAccuracy, IReadOnlyList<BatchSizeRun> Runs)
{
    /// <summary>Mean and spread over seeds per (loss, batch size), sigmoid first, smallest batch first.</summary>
    public IReadOnlyList<BatchSizeSummary> Summaries =>
        Runs.GroupBy(r => (r.Loss, r.BatchSize))
            .OrderBy(g => g.Key.Loss).ThenBy(g => g.Key.BatchSize)
            .Select(g => new BatchSizeSummary(g.Key.Loss, g.Key.BatchSize, g.Count(),
                g.Average(r => r.ZeroShotAccuracy), Std(g.Select(r => r.ZeroShotAccuracy).ToArray()),
                g.Average(r => r.UnseenZeroShotAccuracy), Std(g.Select(r => r.UnseenZeroShotAccuracy).ToArray())))
            .ToArray();

    /// <summary>Sample standard deviation; 0 for fewer than two values.</summary>
    public static double Std(IReadOnlyList<double> values)
    {
        if (values.Count < 2) return 0;
        double mean = values.Average();
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
    }

    /// <summary>
    /// Per batch size, sigmoid minus softmax accuracy, paired by seed (same initialisation and data
    /// order): (mean difference, seeds where sigmoid is better, seeds compared).
    /// </summary>
    public IReadOnlyList<PairedDifference> PairedDifferences() =>
        Settings.BatchSizeList.Select(b =>
        {
            var pairs = Runs.Where(r => r.BatchSize == b && r.Loss == LossKind.Sigmoid)
                .Join(Runs.Where(r => r.BatchSize == b && r.Loss == LossKind.Softmax), s => s.Seed, s => s.Seed, (s, m) => s.ZeroShotAccuracy - m.ZeroShotAccuracy)
                .ToArray();
            return new PairedDifference(b, pairs.Length == 0 ? double.NaN : pairs.Average(), pairs.Count(d => d > 0), pairs.Length);
        }).ToArray();

    /// <summary>Every run, one line each, invariant culture.</summary>
    public string ToCsv()
    {
        var sb = new StringBuilder("loss,batch_size,seed,steps,pairs,final_loss,zero_shot_accuracy,unseen_zero_shot_accuracy,image_to_text_recall_at_1,text_to_image_recall_at_1,seconds\n");
        foreach (var r in Runs)
            sb.AppendLine(string.Join(',', Name(r.Loss), I(r.BatchSize), I(r.Seed), I(r.Steps), I(r.Steps * r.BatchSize),
                D(r.FinalLoss), D(r.ZeroShotAccuracy), D(r.UnseenZeroShotAccuracy), D(r.ImageToTextRecallAt1), D(r.TextToImageRecallAt1), D(r.Seconds)));
        return sb.ToString();
    }

    /// <summary>The summary as a markdown table: zero-shot accuracy mean +- std per batch size, both losses side by side.</summary>
    public string ToMarkdown()
    {
        var s = Summaries;
        var sb = new StringBuilder();
        sb.AppendLine($"Zero-shot accuracy on fresh test images (12 seen classes, chance {ChanceAccuracy:P1}), mean +- std over {Settings.Seeds} seed(s), {Settings.PairsPerRun} pairs seen per run.");
        sb.AppendLine();
        sb.AppendLine("| batch | steps | sigmoid | softmax | sigmoid - softmax (paired) | sigmoid better | unseen sigmoid | unseen softmax |");
        sb.AppendLine("|------:|------:|--------:|--------:|---------------------------:|---------------:|---------------:|---------------:|");
        foreach (var (b, diff, better, pairs) in PairedDifferences())
        {
            var sig = s.FirstOrDefault(x => x.BatchSize == b && x.Loss == LossKind.Sigmoid);
            var soft = s.FirstOrDefault(x => x.BatchSize == b && x.Loss == LossKind.Softmax);
            sb.AppendLine($"| {b} | {Settings.PairsPerRun / b} | {Cell(sig?.MeanAccuracy, sig?.StdAccuracy)} | {Cell(soft?.MeanAccuracy, soft?.StdAccuracy)} | " +
                $"{(double.IsNaN(diff) ? "-" : diff.ToString("+0.0%;-0.0%;0.0%", CultureInfo.InvariantCulture))} | {better}/{pairs} | " +
                $"{Cell(sig?.MeanUnseenAccuracy, sig?.StdUnseenAccuracy)} | {Cell(soft?.MeanUnseenAccuracy, soft?.StdUnseenAccuracy)} |");
        }
        return sb.ToString();
    }

    /// <summary>"sigmoid" or "softmax".</summary>
    public static string Name(LossKind loss) => loss.Name();

    private static string Cell(double? mean, double? std) => mean is null ? "-" : $"{mean:P1} +- {std:P1}";
    private static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
    private static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>
/// Sigmoid against softmax loss at small batch sizes (the paper's claim: sigmoid is better when
/// batches are small). Every run trains the same model from the same seeds' initialisation on the
/// same number of pairs; only the loss and the batch size change. Both losses start from the
/// paper's t' = ln 10 (softmax ignores b). Warmup is the same fraction of each run.
/// </summary>
public static class BatchSizeExperiment
{
    /// <summary>Trains and evaluates every (loss, batch size, seed) on <paramref name="backend"/>; <paramref name="progress"/> hears of each run as it ends.</summary>
    public static BatchSizeExperimentResult Run(IBackend backend, BatchSizeExperimentSettings settings, IProgress<BatchSizeRun>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        var config = settings.Config ?? BuiltInRecipe.Config();
        var baseSettings = settings.BaseSettings ?? BuiltInRecipe.Settings;
        var tokenizer = WordTokenizer.ForShapes();
        var data = new ShapesDataset(new ShapesDatasetOptions(ImageSize: config.Vision.ImageSize, Split: ShapesSplit.Train));
        var evaluation = new BuiltInEvaluationSettings(ExamplesPerClass: settings.EvalImagesPerClass, Seed: settings.EvalSeed,
            Data: new ShapesDatasetOptions(ImageSize: config.Vision.ImageSize), RecallKs: [1]);
        // Before the first run trains, not after: the largest batch in every parallel run at once, and each run's evaluation images.
        int concurrent = (int)Math.Min(settings.Parallel, (long)settings.Seeds * settings.BatchSizeList.Count * 2);
        string share = $"available to each of {concurrent} parallel run(s) (--parallel)";
        ModelSize.CheckTrainingFits(config, settings.BatchSizeList.Max(), backend.DType == DType.Float64 ? 8 : 4, maxBytes: null, option: "--batch-sizes",
            availableBytes: ModelSize.AvailableBytes() / concurrent, availableName: share);
        BuiltInEvaluation.CheckFits(settings.EvalImagesPerClass, evaluation.Data!, maxBytes: null, "--eval-images-per-class", ModelSize.AvailableBytes() / concurrent, share);
        var plan = (from seed in Enumerable.Range(0, settings.Seeds)
                    from batchSize in settings.BatchSizeList
                    from loss in new[] { LossKind.Sigmoid, LossKind.Softmax }
                    select (Seed: seed, BatchSize: batchSize, Loss: loss)).ToArray();
        var runs = new BatchSizeRun?[plan.Length];
        double chance = double.NaN;
        var options = new ParallelOptions { MaxDegreeOfParallelism = settings.Parallel, CancellationToken = cancellationToken };
        Parallel.For(0, plan.Length, options, i =>
        {
            var (seed, batchSize, loss) = plan[i];
            int steps = settings.PairsPerRun / batchSize;
            var runSettings = baseSettings with
            {
                Steps = steps,
                BatchSize = batchSize,
                WarmupSteps = (int)Math.Round(settings.WarmupFraction * steps),
                Loss = (baseSettings.Loss ?? LossOptions.Default) with { Kind = loss, Chunks = 1 },
                Seed = seed,
                CheckpointEvery = 0,
            };
            using var trainer = Trainer.Start(backend, config, data, tokenizer, runSettings, outputFolder: null);
            var trained = trainer.Run(cancellationToken: cancellationToken);
            var report = BuiltInEvaluation.Run(trainer.Model, evaluation);
            chance = report.ZeroShot!.ChanceAccuracy;
            var run = new BatchSizeRun(loss, batchSize, seed, steps, trained.FinalLoss,
                report.ZeroShot.Accuracy, report.UnseenZeroShot?.Accuracy ?? double.NaN,
                report.Retrieval.ImageToTextRecallAt(1), report.Retrieval.TextToImageRecallAt(1), trained.Seconds);
            runs[i] = run;
            progress?.Report(run);
        });
        return new BatchSizeExperimentResult(settings, chance, runs.Select(r => r!).ToArray());
    }
}
