using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SigLip.Cli.Plots;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Data;
using SigLip.Distributed.Mpi;
using SigLip.Reference.Distributed;
using SigLip.Reference.Data;
using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.Evaluation;
using SigLip.Reference.IO;
using SigLip.Reference.IO.Golden;
using SigLip.Reference.Models;
using SigLip.Reference.Training;
using Spectre.Console;

namespace SigLip.Cli.Commands;

/// <summary>
/// `siglip train`: with no arguments, the main job (a small SigLIP on the built-in shapes data, on
/// the managed backend in float32). Runs the golden cases on the chosen backend first and refuses to train
/// on a backend that fails them.
/// </summary>
internal static class TrainCommand
{
    /// <summary>The loss curve's file in the run folder.</summary>
    private const string LossCurveFile = "loss.png";

    public static Command Create()
    {
        var backendOptions = new BackendCliOptions();
        var steps = new Option<int?>("--steps") { Description = $"Optimizer steps (default {BuiltInRecipe.Settings.Steps}; with --resume: extends the run)." };
        var batchSize = new Option<int?>("--batch-size") { Description = $"Image-text pairs per step (default {BuiltInRecipe.Settings.BatchSize})." };
        var lr = new Option<double?>("--lr") { Description = $"Peak learning rate (default {BuiltInRecipe.Settings.LearningRate.ToString(CultureInfo.InvariantCulture)})." };
        var warmup = new Option<int?>("--warmup") { Description = $"Linear warmup steps before the cosine decay (default {BuiltInRecipe.Settings.WarmupSteps}; with a shorter --steps, at most a tenth of the steps)." };
        var weightDecay = new Option<double?>("--weight-decay") { Description = "AdamW decoupled weight decay, applied to weights, embeddings and the MAP probe only (not biases, norms, t', b)." };
        var loss = new Option<LossKind>("--loss")
        {
            HelpName = "sigmoid|softmax",
            Description = "Pairwise loss: sigmoid (SigLIP) or softmax (CLIP).",
            DefaultValueFactory = _ => LossKind.Sigmoid,
            CustomParser = result =>
            {
                string value = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
                try { return LossKinds.Parse(value); }
                catch (ArgumentException e) { result.AddError($"--loss: {e.Message}"); return LossKind.Sigmoid; }
            },
        };
        var chunks = new Option<int>("--chunks") { Description = "Chunked sigmoid loss over this many simulated devices (1 = dense).", DefaultValueFactory = _ => 1 };
        var seed = new Option<int?>("--seed") { Description = "Seed of the initialisation and the data order (default 0)." };
        var outDir = new Option<string?>("--out") { Description = "Run folder for checkpoints, the loss curve and the report (default runs/train-<time>)." };
        var checkpointEvery = new Option<int?>("--checkpoint-every") { Description = $"Save a checkpoint every N steps (default {BuiltInRecipe.Settings.CheckpointEvery}; 0: only at the end)." };
        var resume = new Option<string?>("--resume") { Description = "Continue a run from its folder or a step-NNNNNN checkpoint folder (same data; its saved settings)." };
        var lockImage = new Option<string?>("--lock-image") { Description = "SigLiT: take the image tower from this HF checkpoint folder and freeze it." };
        var lockText = new Option<string?>("--lock-text") { Description = "Take the text tower from this HF checkpoint folder and freeze it." };
        var data = new Option<string?>("--data") { Description = "A folder of images with captions (see docs/training.md) instead of the built-in shapes." };
        var tokenizerModel = new Option<string?>("--tokenizer") { Description = "With --data: a SentencePiece spiece.model for the captions (default: a hashing word tokenizer)." };
        var report = new Option<string?>("--report") { Description = "Write the results as JSON to this file." };
        var skipGolden = new Option<bool>("--skip-golden-check") { Description = "Train without first verifying the backend against the golden cases (not recommended)." };
        var distributed = new Option<DistributedMode>("--distributed")
        {
            HelpName = "auto|mpi|none",
            Description = "Data-parallel training across ranks: mpi (Open MPI; start with `mpirun -np W siglip train ...`), none (this process alone), " +
                "or auto (the default: mpi when mpirun or srun started this process). --batch-size is the global batch; W must divide it.",
            DefaultValueFactory = _ => DistributedMode.Auto,
            CustomParser = result =>
            {
                string value = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
                switch (value.ToLowerInvariant())
                {
                    case "auto": return DistributedMode.Auto;
                    case "mpi": return DistributedMode.Mpi;
                    case "none": return DistributedMode.None;
                    default:
                        result.AddError($"--distributed '{value}' is not a mode; expected auto, mpi or none.");
                        return DistributedMode.Auto;
                }
            },
        };
        var golden = new Option<string?>("--golden") { Description = $"Folder of golden cases. Default: {GoldenLocator.EnvironmentVariable}, else golden/ beside the executable, else the repository's golden/." };

        var command = new Command("train", $"Train SigLIP (or SigLiT with --lock-image). With no arguments: a small SigLIP on the built-in shapes data, on the {BackendCliOptions.DefaultBackend} backend.");
        backendOptions.AddTo(command);
        foreach (var o in new Option[] { steps, batchSize, lr, warmup, weightDecay, loss, chunks, seed, outDir, checkpointEvery,
                     resume, lockImage, lockText, data, tokenizerModel, report, skipGolden, golden, distributed })
            command.Options.Add(o);
        var maxMemory = SizeCliOptions.MaxMemory();
        command.Options.Add(maxMemory);

        command.SetAction((parse, cancellationToken) =>
        {
            var options = new TrainOptions(
                backendOptions.BackendName(parse), backendOptions.Options(parse, parse.GetValue(seed) ?? 0), parse.GetValue(steps), parse.GetValue(batchSize),
                parse.GetValue(lr), parse.GetValue(warmup), parse.GetValue(weightDecay), parse.GetValue(loss), parse.GetValue(chunks),
                parse.GetValue(seed), parse.GetValue(outDir), parse.GetValue(checkpointEvery), parse.GetValue(resume), parse.GetValue(lockImage),
                parse.GetValue(lockText), parse.GetValue(data), parse.GetValue(tokenizerModel), parse.GetValue(report), parse.GetValue(skipGolden), parse.GetValue(golden),
                parse.GetValue(distributed));
            return Task.FromResult(RunDistributed(options with { MaxMemory = SizeCliOptions.Parse(parse, maxMemory) }, cancellationToken));
        });
        return command;
    }

    private sealed record TrainOptions(
        string Backend, BackendOptions BackendOptions, int? Steps, int? BatchSize, double? LearningRate, int? Warmup, double? WeightDecay,
        LossKind Loss, int Chunks, int? Seed, string? Out, int? CheckpointEvery, string? Resume, string? LockImage, string? LockText,
        string? Data, string? Tokenizer, string? Report, bool SkipGoldenCheck, string? Golden, DistributedMode Distributed, long? MaxMemory = null);

    private enum DistributedMode { Auto, Mpi, None }

    /// <summary>
    /// Chooses one process or MPI. Under MPI every rank runs <see cref="Run"/> inside
    /// <see cref="MpiCommunicator.RunOrAbort"/>: a rank that throws prints one line naming its rank and
    /// the job aborts instead of leaving the others waiting in a collective. Ranks other than 0 print nothing else.
    /// </summary>
    private static int RunDistributed(TrainOptions o, CancellationToken cancellationToken)
    {
        var launch = o.Distributed == DistributedMode.None ? null : MpiLaunch.Detect();
        bool useMpi = o.Distributed == DistributedMode.Mpi || (o.Distributed == DistributedMode.Auto && launch is not null);
        if (!useMpi) return Run(o, null, cancellationToken);

        using var communicator = MpiCommunicator.Create();
        return communicator.RunOrAbort(c =>
        {
            if (c.Rank != 0)
            {
                // One voice: rank 0 prints progress and results; the others only their errors (standard error).
                Console.SetOut(TextWriter.Null);
                AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) });
            }
            // One thread per core: the cores of this machine shared among the ranks on it.
            int? threads = o.BackendOptions.Threads ?? Math.Max(1, Environment.ProcessorCount / LocalRanks(c.Size));
            // One GPU per rank on each machine: the cuda backend takes GPU <local rank>.
            var options = o with { BackendOptions = o.BackendOptions with { Threads = threads, DeviceIndex = o.BackendOptions.DeviceIndex ?? launch?.LocalRank } };
            AnsiConsole.MarkupLine($"Distributed: {c.Size} {(c.Size == 1 ? "rank" : "ranks")} over {Markup.Escape(c.Description)}" +
                $"{(launch is not null ? $", started by {Markup.Escape(launch.Launcher)}" : "")}; {threads} thread(s) per rank.");
            return Run(options, c, cancellationToken);
        });
    }

    /// <summary>How many ranks run on this machine (Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE, Slurm's SLURM_NTASKS_PER_NODE), else all of them.</summary>
    private static int LocalRanks(int size)
    {
        foreach (var name in new[] { "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE" })
            if (int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
                return n;
        return Math.Max(1, size);
    }

    /// <summary>The default run folder, named by rank 0's clock (broadcast, so that every rank agrees).</summary>
    private static string DefaultRunFolder(ICommunicator? communicator)
    {
        var seconds = new[] { (double)DateTimeOffset.UtcNow.ToUnixTimeSeconds() };
        communicator?.Broadcast(seconds, 0);
        var time = DateTimeOffset.FromUnixTimeSeconds((long)seconds[0]).ToLocalTime();
        return Path.Combine("runs", "train-" + time.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
    }

    private static int Run(TrainOptions o, ICommunicator? communicator, CancellationToken cancellationToken)
    {
        bool root = communicator is null || communicator.Rank == 0;
        if (o.Report is not null) AtomicFile.CheckWritable(o.Report); // refused before training, not after
        // Rank 0 alone writes the run folder, so it alone checks it; under mpirun its refusal aborts the job (one message).
        if (root && o.Out is not null) AtomicFile.CheckFolderWritable(o.Out, "--out");
        if (o.LockImage is not null && o.LockText is not null)
            throw new ArgumentException("--lock-image and --lock-text together would leave only t' and b to train; lock one tower at most.");
        if (o.Resume is not null)
        {
            var fixedByCheckpoint = new (string Name, bool Given)[]
            {
                ("--batch-size", o.BatchSize is not null), ("--lr", o.LearningRate is not null), ("--warmup", o.Warmup is not null),
                ("--weight-decay", o.WeightDecay is not null), ("--seed", o.Seed is not null), ("--lock-image", o.LockImage is not null),
                ("--lock-text", o.LockText is not null), ("--checkpoint-every", o.CheckpointEvery is not null),
                ("--loss", o.Loss != LossKind.Sigmoid), ("--chunks", o.Chunks != 1),
            }.Where(x => x.Given).Select(x => x.Name).ToList();
            if (fixedByCheckpoint.Count > 0)
                throw new ArgumentException($"{string.Join(", ", fixedByCheckpoint)} cannot change when resuming: a resumed run continues with its saved settings (only --steps may extend it).");
        }

        // Sizes first (issue 15): every step's loss is kept in memory and in trainer_state.json.
        if (o.Steps is int steps) ModelSize.CheckSteps(steps, o.MaxMemory);

        using var backend = CliBackends.Registry().Start(o.Backend, o.BackendOptions);
        AnsiConsole.MarkupLine($"Backend [bold]{Markup.Escape(backend.Name)}[/] on {Markup.Escape(backend.Device)}, {Markup.Escape(backend.DType.Name())}.");
        GoldenGate(backend, o);

        // The model's image size and text settings decide how the data is read: from the checkpoint
        // when resuming or locking a tower, else from the recipe.
        var shapeSource = o.Resume is not null ? HfConfig.Read(Path.Combine(TrainingCheckpoint.Resolve(o.Resume), TrainingCheckpoint.ConfigFile))
            : o.LockImage is not null ? Trainer.TakeTower(RecipeConfig(o), HfCheckpoint.Load(o.LockImage), Tower.Image).Config
            : RecipeConfig(o);
        // Each rank holds the activations of its own rows only: the global batch divided by the ranks (rounded up;
        // a W that does not divide the batch is refused with its own message when the trainer starts).
        int ranks = communicator?.Size ?? 1, globalBatch = o.BatchSize ?? BuiltInRecipe.Settings.BatchSize;
        if (o.Resume is null) ModelSize.CheckTrainingFits(shapeSource, (int)(((long)globalBatch + ranks - 1) / ranks), backend.DType == DType.Float64 ? 8 : 4, o.MaxMemory);
        var (trainData, tokenizer) = OpenData(o, shapeSource);
        using var trainer = ReportingSkips(trainData, () => o.Resume is not null
            ? Trainer.Resume(backend, o.Resume, trainData, tokenizer, o.Out, o.Steps, communicator, o.MaxMemory)
            : StartFresh(backend, o, trainData, tokenizer, o.Out ?? DefaultRunFolder(communicator), communicator));
        string runFolder = trainer.OutputFolder!;
        // The loss curve is written after training and `latest` after the first save: a path that cannot take them (a folder,
        // a FIFO, a link out of the run folder) is refused now, before a checkpoint is saved.
        string plotPath = Path.Combine(runFolder, LossCurveFile);
        if (root)
        {
            AtomicFile.CheckWritable(ContainedPath.ForWriting(runFolder, LossCurveFile));
            AtomicFile.CheckWritable(ContainedPath.ForWriting(runFolder, TrainingCheckpoint.LatestFile));
        }
        var settings = trainer.Settings;

        AnsiConsole.MarkupLine($"Data: {Markup.Escape(trainData.Description)}");
        AnsiConsole.MarkupLine($"Model: vision {DescribeVision(trainer.Config.Vision)}; text {DescribeText(trainer.Config.Text)}; {ParameterLayout.Count(trainer.Config):N0} parameters" +
            (settings.Locked != LockedTowers.None ? $" ({settings.Locked} tower locked)" : ""));
        AnsiConsole.MarkupLine($"Training: {settings.Steps} steps{(trainer.Step > 0 ? $" (resuming at step {trainer.Step})" : "")}, batch {settings.BatchSize}, " +
            $"{settings.LossSettings.Kind.ToString().ToLowerInvariant()} loss{(settings.LossSettings.Chunks > 1 ? $" in {settings.LossSettings.Chunks} chunks" : "")}, " +
            $"AdamW lr {settings.LearningRate.ToString("G3", CultureInfo.InvariantCulture)} (warmup {settings.WarmupSteps}, cosine to {settings.MinLearningRate.ToString("G3", CultureInfo.InvariantCulture)}), " +
            $"weight decay {settings.OptimizerSettings.WeightDecay.ToString("G3", CultureInfo.InvariantCulture)}, seed {settings.Seed}; run folder {Markup.Escape(runFolder)}");
        if (trainer.WorldSize > 1)
            AnsiConsole.MarkupLine($"Data-parallel: {trainer.WorldSize} ranks, {trainer.Rows.Count} pairs each per step (rank 0: rows {trainer.Rows.Start}..{trainer.Rows.Start + trainer.Rows.Count - 1} of each global batch).");
        int firstStep = trainer.Step;

        var wall = Stopwatch.StartNew();
        TrainingResult result;
        try
        {
            result = ReportingSkips(trainData, () => RunWithProgress(trainer, cancellationToken));
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine($"[yellow]Stopped at step {trainer.Step}.[/] {(trainer.LastCheckpoint is { } c ? $"Resume with: siglip train --resume {Markup.Escape(c)}" : "")}");
            throw;
        }
        wall.Stop();
        int stepsThisSession = result.Steps - firstStep;
        double communicationPerStep = stepsThisSession > 0 ? result.CommunicationSeconds / stepsThisSession : 0;
        double stepSeconds = stepsThisSession > 0 ? result.Seconds / stepsThisSession : 0;
        // Evaluation, plot and report are rank 0's; the other ranks are done.
        if (!root) return 0;
        if (result.WorldSize > 1)
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"Communication (rank 0): {communicationPerStep * 1000:F1} ms of {stepSeconds * 1000:F1} ms per step ({(stepSeconds > 0 ? 100 * communicationPerStep / stepSeconds : 0):F0}%)."));

        AnsiConsole.MarkupLine($"Trained {result.Steps} steps in {wall.Elapsed.TotalSeconds:F1} s ({result.PairsPerSecond:F0} pairs/s); final loss {result.FinalLoss:F4}, t = {result.Temperature:F2}, b = {result.Bias:F2}.");

        var evaluation = o.Data is null
            ? BuiltInEvaluation.Run(trainer.Model, new BuiltInEvaluationSettings(ExamplesPerClass: BuiltInRecipe.TestImagesPerClass, Data: BuiltInRecipe.TestData().Options with { ImageSize = trainer.Config.Vision.ImageSize }))
            : SourceEvaluation.Run(trainer.Model, tokenizer, trainData, new SourceEvaluationSettings(Limit: 1000));
        PrintEvaluation(evaluation, o.Data is null);
        FolderSkips.Print(trainData);

        // The plot is drawn by ScottPlot over SkiaSharp. When SkiaSharp's native library cannot be loaded the
        // training is not lost: the checkpoint is already saved and the report is still written. The user is
        // told on one line that the loss curve was not written and why, and the command exits 0, since what
        // was asked for (the trained checkpoint and its evaluation) exists; the report's loss_curve is null.
        string? lossCurve = plotPath;
        try
        {
            LossCurvePlot.Save(ContainedPath.ForWriting(runFolder, LossCurveFile), result.Losses, $"SigLIP training loss ({backend.Name}, batch {settings.BatchSize}, {settings.LossSettings.Kind.ToString().ToLowerInvariant()})");
        }
        catch (Exception ex) when (ImageLibraryException.Translate(ex, $"the loss curve {plotPath} was not written") is { } library)
        {
            Console.Error.WriteLine($"warning: {library.Message}");
            lossCurve = null;
        }
        AnsiConsole.MarkupLine($"Checkpoint: {Markup.Escape(result.CheckpointPath ?? "(none)")}");
        if (lossCurve is not null) AnsiConsole.MarkupLine($"Loss curve: {Markup.Escape(lossCurve)}");

        if (o.Report is not null)
        {
            var json = new JsonObject
            {
                ["backend"] = backend.Name,
                ["device"] = backend.Device,
                ["dtype"] = backend.DType.Name(),
                ["steps"] = result.Steps,
                ["batch_size"] = settings.BatchSize,
                ["world_size"] = result.WorldSize,
                ["seconds_per_step"] = Math.Round(stepSeconds, 6),
                ["communication_seconds_per_step"] = Math.Round(communicationPerStep, 6),
                ["communication_share"] = stepSeconds > 0 ? Math.Round(communicationPerStep / stepSeconds, 4) : 0,
                ["loss"] = settings.LossSettings.Kind.ToString().ToLowerInvariant(),
                ["seconds"] = Math.Round(wall.Elapsed.TotalSeconds, 3),
                ["training_seconds"] = Math.Round(result.Seconds, 3),
                ["pairs_per_second"] = Math.Round(result.PairsPerSecond, 3),
                ["final_loss"] = result.FinalLoss,
                ["temperature"] = result.Temperature,
                ["bias"] = result.Bias,
                ["checkpoint"] = result.CheckpointPath,
                ["loss_curve"] = lossCurve,
            };
            if (FolderSkips.ToJson(trainData) is { } skipped) json["skipped"] = skipped;
            var fields = JsonNode.Parse(evaluation.ToJson())!.AsObject();
            foreach (var (key, value) in fields.ToList())
            {
                fields.Remove(key);
                json[key] = value;
            }
            AtomicFile.WriteAllText(o.Report, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            AnsiConsole.MarkupLine($"Report: {Markup.Escape(o.Report)}");
        }
        return 0;
    }

    private static Trainer StartFresh(IBackend backend, TrainOptions o, IImageTextSource data, ITextTokenizer tokenizer, string runFolder, ICommunicator? communicator)
    {
        var recipe = BuiltInRecipe.Settings;
        var kind = o.Loss;
        var locked = o.LockImage is not null ? LockedTowers.Image : o.LockText is not null ? LockedTowers.Text : LockedTowers.None;
        var settings = recipe with
        {
            Steps = o.Steps ?? recipe.Steps,
            BatchSize = o.BatchSize ?? recipe.BatchSize,
            LearningRate = o.LearningRate ?? recipe.LearningRate,
            WarmupSteps = o.Warmup ?? BuiltInRecipe.WarmupSteps(o.Steps),
            MinLearningRate = Math.Min(recipe.MinLearningRate, o.LearningRate ?? recipe.LearningRate),
            Optimizer = recipe.OptimizerSettings with { WeightDecay = o.WeightDecay ?? recipe.OptimizerSettings.WeightDecay },
            Loss = new LossOptions(kind, o.Chunks),
            Seed = o.Seed ?? recipe.Seed,
            CheckpointEvery = o.CheckpointEvery ?? recipe.CheckpointEvery,
            Locked = locked,
        };
        settings.Validate();

        var config = RecipeConfig(o) with { };
        config = config with { Text = config.Text with { VocabSize = tokenizer.VocabSize } };
        NamedTensors? initial = null;
        string? towerSource = o.LockImage ?? o.LockText;
        if (towerSource is not null)
        {
            var checkpoint = HfCheckpoint.Load(towerSource);
            (config, initial) = Trainer.TakeTower(config, checkpoint, locked == LockedTowers.Image ? Tower.Image : Tower.Text);
            AnsiConsole.MarkupLine($"Locked {(locked == LockedTowers.Image ? "image" : "text")} tower from {Markup.Escape(towerSource)}.");
        }
        return Trainer.Start(backend, config, data, tokenizer, settings, runFolder, initial, communicator);
    }

    /// <summary>The model of a fresh run: the recipe's, with the text settings of the captions it reads.</summary>
    private static SiglipConfig RecipeConfig(TrainOptions o) => BuiltInRecipe.ConfigFor(
        o.Data is null ? CaptionText.BuiltInWords : o.Tokenizer is not null ? CaptionText.SentencePiece : CaptionText.HashedWords);

    private static (IImageTextSource Data, ITextTokenizer Tokenizer) OpenData(TrainOptions o, SiglipConfig config)
    {
        if (o.Data is null)
        {
            if (o.Tokenizer is not null) throw new ArgumentException("--tokenizer applies to --data folders; the built-in data has its own word tokenizer.");
            var options = BuiltInRecipe.TrainData().Options with { ImageSize = config.Vision.ImageSize };
            return (new ShapesDataset(options), BuiltInRecipe.Tokenizer());
        }
        var tokenizer = TokenizerChoice.Resolve(o.Tokenizer, null, config.Text.VocabSize);
        if (tokenizer.VocabSize > config.Text.VocabSize)
            throw new ArgumentException($"The tokenizer has {tokenizer.VocabSize} ids but the model's text vocabulary is {config.Text.VocabSize}; resume with the tokenizer the run started with.");
        // Captions are checked with the run's tokenizer as they are read: one it cannot take is a skipped line, not a failed step.
        var folder = new ImageCaptionFolder(o.Data, config.Vision.ImageSize, captionTokenizer: tokenizer);
        return (folder, tokenizer);
    }

    /// <summary>Runs <paramref name="run"/>; when it fails, first prints what the folder skipped (a run whose data has no usable line says why).</summary>
    private static T ReportingSkips<T>(IImageTextSource data, Func<T> run)
    {
        try
        {
            return run();
        }
        catch
        {
            FolderSkips.Print(data);
            throw;
        }
    }

    private static void PrintEvaluation(EvaluationReport report, bool builtIn)
    {
        var table = new Table().Title("Evaluation").AddColumn("measure").AddColumn(new TableColumn("value").RightAligned()).AddColumn("against");
        static string Percent(double x) => double.IsNaN(x) ? "n/a" : (100 * x).ToString("F1", CultureInfo.InvariantCulture) + "%";
        if (report.ZeroShot is { } z)
            table.AddRow(Markup.Escape($"zero-shot accuracy, {(builtIn ? "fresh test images" : "this data")} ({z.Examples} images, {z.ClassNames.Count} classes)"),
                Percent(z.Accuracy), $"chance {Percent(z.ChanceAccuracy)}");
        if (report.UnseenZeroShot is { } u)
            table.AddRow(Markup.Escape($"zero-shot accuracy, unseen combinations ({u.Examples} images, among all {u.ClassNames.Count} classes)"),
                Percent(u.Accuracy), $"chance {Percent(u.ChanceAccuracy)}");
        foreach (var r in report.Retrieval.ImageToText.Where(r => r.K is 1 or 5))
            table.AddRow($"image -> text recall@{r.K} ({report.Retrieval.Images} images, {report.Retrieval.Texts} texts)", Percent(r.Recall), $"chance {Percent(Math.Min(1.0, r.K / (double)report.Retrieval.Texts))}");
        foreach (var r in report.Retrieval.TextToImage.Where(r => r.K is 1 or 5))
            table.AddRow($"text -> image recall@{r.K}", Percent(r.Recall), "");
        AnsiConsole.Write(table);
        if (builtIn && report.ZeroShot is { } classes)
            AnsiConsole.MarkupLine($"Classes: {Markup.Escape(string.Join(", ", classes.ClassNames))}.");
        if (!builtIn)
            AnsiConsole.MarkupLine("[grey](evaluated on the first examples of the training folder itself: there is no held-out split)[/]");
    }

    private static string DescribeVision(VisionConfig v) =>
        $"{v.ImageSize}px/{v.PatchSize} ({v.NumPatches} tokens), width {v.HiddenSize}, {v.NumHiddenLayers} layers, {v.NumAttentionHeads} heads";

    private static string DescribeText(TextConfig t) =>
        $"{t.MaxPositionEmbeddings} tokens, vocab {t.VocabSize}, width {t.HiddenSize}, {t.NumHiddenLayers} layers, {t.NumAttentionHeads} heads";

    // ----- golden gate -----

    private static void GoldenGate(IBackend backend, TrainOptions o)
    {
        if (o.SkipGoldenCheck)
        {
            AnsiConsole.MarkupLine($"[yellow]warning:[/] --skip-golden-check: training on backend '{Markup.Escape(backend.Name)}' without verifying it against the golden cases.");
            return;
        }
        string dir;
        try
        {
            dir = GoldenLocator.Find(o.Golden);
        }
        catch (DirectoryNotFoundException e) when (o.Golden is null)
        {
            throw new DirectoryNotFoundException(e.Message + " Or pass --skip-golden-check to train without the check (not recommended).", e);
        }
        var watch = Stopwatch.StartNew();
        var goldenReport = GoldenVerifier.Verify(backend, dir);
        if (!goldenReport.Passed)
        {
            AnsiConsole.MarkupLine($"[red]Golden check failed[/] on backend '{Markup.Escape(backend.Name)}' ({Markup.Escape(dir)}):");
            foreach (var failure in goldenReport.Failures)
                AnsiConsole.WriteLine("  " + failure);
            throw new InvalidOperationException($"Backend '{backend.Name}' does not reproduce the golden cases in {dir} (failing tensors above); refusing to train. " +
                "Fix the backend, or pass --skip-golden-check to train anyway.");
        }
        AnsiConsole.MarkupLine($"Golden check passed on '{Markup.Escape(backend.Name)}' in {watch.Elapsed.TotalSeconds:F1} s ({Markup.Escape(dir)}).");
    }

    // ----- progress -----

    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    private static string Describe(TrainingProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"loss {p.Loss:F4}  t {p.Temperature:F2}  b {p.Bias:F2}  {p.PairsPerSecond:F0} pairs/s  ETA {FormatSpan(p.Eta)}");

    private static string FormatSpan(TimeSpan span) => span.TotalHours >= 1 ? span.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : span.ToString(@"m\:ss", CultureInfo.InvariantCulture);

    private static TrainingResult RunWithProgress(Trainer trainer, CancellationToken cancellationToken)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            // Not a terminal (CI, a pipe): a line every 5% instead of a live bar.
            int every = Math.Max(1, trainer.Settings.Steps / 20);
            return trainer.Run(new SyncProgress(p =>
            {
                if (p.Step % every == 0 || p.Step == p.TotalSteps)
                    Console.WriteLine($"step {p.Step}/{p.TotalSteps}  {Describe(p)}");
            }), cancellationToken);
        }
        TrainingResult? result = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask("starting", maxValue: trainer.Settings.Steps);
                task.Value = trainer.Step;
                result = trainer.Run(new SyncProgress(p =>
                {
                    task.Value = p.Step;
                    task.Description = Markup.Escape($"step {p.Step}/{p.TotalSteps}  {Describe(p)}");
                }), cancellationToken);
            });
        return result!;
    }
}
