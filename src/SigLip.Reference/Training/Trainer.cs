using System.Diagnostics;
using SigLip.Reference.Backends;
using SigLip.Reference.Data;
using SigLip.Reference.Distributed;
using SigLip.Reference.IO;
using SigLip.Reference.Loss;
using SigLip.Reference.Models;

namespace SigLip.Reference.Training;

/// <summary>What <see cref="Trainer.TakeTower"/> gives: the merged config and the taken tower's parameters.</summary>
/// <param name="Config">The merged config: the taken tower's sizes from the checkpoint, the other tower's from the given config.</param>
/// <param name="Parameters">The taken tower's parameters, by HF name.</param>
public sealed record TakenTower(SiglipConfig Config, NamedTensors Parameters);

/// <summary>
/// The training loop, written against the backend contract so it runs on any backend: batches from
/// an <see cref="IImageTextSource"/>, forward and backward on the backend's model, AdamW with
/// warmup + cosine, checkpoints, NaN guard. Deterministic for a seed: the seed fixes the
/// initialisation and the data order, and a resume restores parameters, optimizer moments and the
/// data position exactly (on a float64 backend the resumed losses equal an uninterrupted run's, bit for bit).
/// </summary>
/// <remarks>
/// Data-parallel over the W ranks of an <see cref="ICommunicator"/>: the batch size is the global
/// batch n (W must divide it); every rank draws the same global batch from the same seeded stream and
/// keeps rows [k n/W, (k+1) n/W). A step encodes the local rows, computes the sigmoid loss of the whole
/// global batch by the ring (<see cref="RingSigmoidLoss"/>), backpropagates, all-reduces the tower
/// gradients (<see cref="ISiglipModel.AllReduceGradients"/>) and takes the same AdamW step on every
/// rank, so every rank holds the same parameters and reports the same (global) loss. Rank 0 alone
/// saves checkpoints (then all ranks meet at a barrier) and reports progress. A checkpoint holds the
/// global state only (parameters, optimizer, data position of the global stream), so it resumes
/// under any W, or in one process.
/// </remarks>
public sealed class Trainer : IDisposable
{
    private readonly IBackend _backend;
    private readonly IImageTextSource _data;
    private readonly BatchStream _batches;
    private readonly List<double> _losses;
    private readonly string? _outputFolder;
    private readonly TimedCommunicator? _communicator;
    private readonly (int Start, int Count) _rows;

    private Trainer(IBackend backend, ISiglipModel model, IImageTextSource data, ITextTokenizer tokenizer,
        TrainingSettings settings, string? outputFolder, int step, IReadOnlyList<double> losses, DataPosition position, string? lastCheckpoint,
        ICommunicator? communicator)
    {
        _communicator = communicator is null ? null : new TimedCommunicator(communicator);
        _rows = (0, settings.BatchSize);
        if (communicator is not null) _rows = RowsFor(settings, communicator);
        _backend = backend;
        Model = model;
        _data = data;
        Settings = settings;
        _outputFolder = outputFolder;
        Step = step;
        _losses = [.. losses];
        LastCheckpoint = lastCheckpoint;
        var config = model.Config;
        _batches = new BatchStream(data, tokenizer, settings.Seed, settings.BatchSize, config.Text.MaxPositionEmbeddings,
            config.Vision.NumChannels, config.Vision.ImageSize, position);
    }

    /// <summary>The model being trained (use it for evaluation after <see cref="Run"/>).</summary>
    public ISiglipModel Model { get; }
    /// <summary>The model's sizes.</summary>
    public SiglipConfig Config => Model.Config;
    /// <summary>The run's settings (a resumed run keeps the saved ones).</summary>
    public TrainingSettings Settings { get; }
    /// <summary>Steps done so far.</summary>
    public int Step { get; private set; }
    /// <summary>The loss of every step so far (a resumed run includes the steps before the checkpoint).</summary>
    public IReadOnlyList<double> Losses => _losses;
    /// <summary>The run folder checkpoints are saved in (null: none are saved).</summary>
    public string? OutputFolder => _outputFolder;
    /// <summary>The newest checkpoint saved (or resumed from).</summary>
    public string? LastCheckpoint { get; private set; }
    /// <summary>W: the ranks training together (1 in one process).</summary>
    public int WorldSize => _communicator?.Size ?? 1;
    /// <summary>This process's rank (0 in one process).</summary>
    public int Rank => _communicator?.Rank ?? 0;
    /// <summary>Whether this rank saves checkpoints and reports progress (rank 0).</summary>
    public bool IsRoot => Rank == 0;
    /// <summary>The rows [Start, Start + Count) of each global batch this rank trains on.</summary>
    public (int Start, int Count) Rows => _rows;
    /// <summary>Seconds this rank has spent inside communicator calls (0 in one process).</summary>
    public double CommunicationSeconds => _communicator?.Seconds ?? 0;
    /// <summary>Bytes this rank has handed to the communicator (see <see cref="TimedCommunicator.BytesSent"/>).</summary>
    public long CommunicationBytes => _communicator?.BytesSent ?? 0;
    /// <summary>Called with each checkpoint file's path once written (tests interrupt a save with it).</summary>
    public Action<string>? AfterCheckpointFileWritten { get; set; }

    /// <summary>
    /// A fresh run: parameters from <see cref="ModelInit.Random"/> with the settings' seed and t', b;
    /// then <paramref name="initialParameters"/> (e.g. a locked tower's weights from a checkpoint) replace
    /// the ones they name.
    /// </summary>
    /// <param name="outputFolder">Where checkpoints go; null: none are saved.</param>
    /// <param name="communicator">The ranks to train data-parallel with (null: this process alone); every rank calls Start with the same arguments.</param>
    public static Trainer Start(IBackend backend, SiglipConfig config, IImageTextSource data, ITextTokenizer tokenizer,
        TrainingSettings settings, string? outputFolder = null, IReadOnlyDictionary<string, Tensor>? initialParameters = null,
        ICommunicator? communicator = null)
    {
        config.Validate();
        settings.Validate();
        if (communicator is not null) RowsFor(settings, communicator);
        var parameters = ModelInit.Random(config, settings.Seed, settings.InitialLogitScale, settings.InitialLogitBias);
        if (initialParameters is not null)
        {
            foreach (var (name, tensor) in initialParameters)
            {
                if (!parameters.TryGetValue(name, out var existing))
                    throw new ArgumentException($"Initial parameter '{name}' is not a parameter of this model config.");
                if (!existing.Shape.SequenceEqual(tensor.Shape))
                    throw new ArgumentException($"Initial parameter '{name}' has shape {Tensor.ShapeToString(tensor.Shape)}, the model needs {Tensor.ShapeToString(existing.Shape)}.");
                parameters.Set(name, tensor);
            }
        }
        var model = backend.CreateModel(config, parameters, settings.Locked);
        return new Trainer(backend, model, data, tokenizer, settings, outputFolder, 0, [], DataPosition.Start, null, communicator);
    }

    /// <summary>
    /// Continues a run from a checkpoint (a step folder or a run folder). The settings are the
    /// checkpoint's; <paramref name="steps"/> may extend the run (this changes the cosine schedule
    /// from the resumed step on). Checkpoints go to <paramref name="outputFolder"/>, by default the
    /// run folder the checkpoint is in.
    /// </summary>
    /// <param name="maxMemory">The most memory the run may plan to use (<c>--max-memory</c>); the memory available is always checked.</param>
    public static Trainer Resume(IBackend backend, string checkpoint, IImageTextSource data, ITextTokenizer tokenizer,
        string? outputFolder = null, int? steps = null, ICommunicator? communicator = null, long? maxMemory = null)
    {
        var loaded = TrainingCheckpoint.Load(checkpoint);
        var settings = steps is int s ? loaded.State.Settings with { Steps = s } : loaded.State.Settings;
        settings.Validate();
        var rows = communicator is not null ? RowsFor(settings, communicator) : (Start: 0, Count: settings.BatchSize);
        // The batch size comes from the checkpoint's file: check that its step fits before any batch is allocated.
        ModelSize.CheckTrainingFits(loaded.Config, rows.Count, backend.DType == DType.Float64 ? 8 : 4, maxMemory,
            option: $"settings.batch_size of checkpoint '{loaded.Folder}'");
        if (loaded.State.Step > settings.Steps)
            throw new ArgumentException($"Checkpoint '{loaded.Folder}' is at step {loaded.State.Step}, beyond the run's {settings.Steps} steps.");
        if (!string.Equals(loaded.State.DataDescription, data.Description, StringComparison.Ordinal))
            throw new ArgumentException($"Checkpoint '{loaded.Folder}' was trained on '{loaded.State.DataDescription}' but the data now is '{data.Description}'; resume with the same data.");
        var model = backend.CreateModel(loaded.Config, loaded.Parameters, settings.Locked);
        try
        {
            model.SetOptimizerState(loaded.OptimizerState);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        string runFolder = outputFolder ?? Path.GetDirectoryName(Path.GetFullPath(loaded.Folder))!;
        return new Trainer(backend, model, data, tokenizer, settings, runFolder, loaded.State.Step, loaded.State.Losses, loaded.State.Data, loaded.Folder, communicator);
    }

    /// <summary>
    /// This rank's rows of each global batch; throws an <see cref="ArgumentException"/> when the run
    /// cannot be split over the communicator's ranks (W does not divide the batch, or a loss with no ring form).
    /// </summary>
    private static (int Start, int Count) RowsFor(TrainingSettings settings, ICommunicator communicator)
    {
        int w = communicator.Size, n = settings.BatchSize;
        if (settings.LossSettings.Kind != LossKind.Sigmoid)
            throw new ArgumentException($"Data-parallel training over {w} ranks needs the sigmoid loss: the {settings.LossSettings.Kind.ToString().ToLowerInvariant()} loss normalises over the whole batch and has no ring form here.");
        if (settings.LossSettings.Chunks > 1)
            throw new ArgumentException($"--chunks {settings.LossSettings.Chunks} simulates devices inside one process; across {w} ranks the ring runs over the ranks themselves. Leave --chunks at 1.");
        if (n % w != 0)
            throw new ArgumentException(
                $"The global batch size {n} (--batch-size) is not divisible by the {w} ranks: each rank must hold n / W whole pairs. " +
                $"Rank counts that divide {n}: {string.Join(", ", Enumerable.Range(1, n).Where(k => n % k == 0))}; " +
                $"batch sizes near {n} that {w} ranks divide: {Math.Max(w, n / w * w)}, {(n / w + 1) * w}.");
        return RingSigmoidLoss.RowsOf(n, w, communicator.Rank);
    }

    /// <summary>
    /// A config whose <paramref name="tower"/> is <paramref name="source"/>'s, and that tower's parameters
    /// (for SigLiT: train a text tower against a locked, pre-trained image tower).
    /// </summary>
    public static TakenTower TakeTower(SiglipConfig config, LoadedCheckpoint source, Tower tower)
    {
        SiglipConfig merged = tower switch
        {
            Tower.Image => new SiglipConfig(config.Text with { ProjectionSize = source.Config.Vision.HiddenSize }, source.Config.Vision),
            Tower.Text => new SiglipConfig(source.Config.Text, config.Vision),
            _ => throw new ArgumentException("Only the image or the text tower can be taken from a checkpoint."),
        };
        merged.Validate();
        var names = ParameterLayout.For(merged).Where(p => p.Tower == tower).ToList();
        var parameters = new NamedTensors();
        foreach (var spec in names)
        {
            if (!source.Parameters.TryGetValue(spec.Name, out var t))
                throw new ArgumentException($"The checkpoint has no '{spec.Name}' ({tower} tower parameter).");
            parameters.Add(spec.Name, t);
        }
        return new TakenTower(merged, parameters);
    }

    /// <summary>
    /// Trains from the current step to <c>Settings.Steps</c>, saving a checkpoint every
    /// <c>CheckpointEvery</c> steps and at the end (when an output folder is set). A NaN or infinite
    /// loss or gradient throws <see cref="TrainingDivergedException"/> naming the step; nothing more
    /// is saved, so the last good checkpoint stays the newest. Cancelling saves a checkpoint first.
    /// </summary>
    public TrainingResult Run(IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var schedule = Settings.Schedule;
        var optimizer = Settings.OptimizerSettings;
        var loss = Settings.LossSettings;
        int totalSteps = Settings.Steps;
        int firstStep = Step;
        // Reading t' and b copies every parameter from the backend: every step for small models, less often for big ones.
        long parameterCount = ParameterLayout.Count(Config);
        int readEvery = parameterCount <= 20_000_000 ? 1 : Math.Max(1, totalSteps / 50);
        var (temperature, bias) = ReadLogitScaleAndBias();
        var stopwatch = new Stopwatch();

        while (Step < totalSteps)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                // No barrier here: the other ranks may not have been cancelled at the same step.
                if (_outputFolder is not null && Step > firstStep && IsRoot) SaveCheckpointFile();
                cancellationToken.ThrowIfCancellationRequested();
            }
            stopwatch.Start();
            int step = Step + 1; // 1-based, as reported
            var batch = _communicator is null ? _batches.Next() : _batches.NextRows(_rows.Start, _rows.Count);
            double learningRate = schedule.At(Step);
            StepResult result;
            try
            {
                result = _communicator is null ? Model.ForwardBackward(batch, loss, collectOutputs: false) : DistributedForwardBackward(batch, loss);
            }
            catch (Exception ex) when (ex is ArgumentException or ArithmeticException && NonFiniteCause(batch) is { } cause)
            {
                // A backend that validates its inputs (the reference does) refuses before a NaN loss exists.
                throw Diverged($"The loss at step {step} of {totalSteps} is not finite: {cause} ({ex.Message})", step, ex);
            }
            catch (NonFiniteValueException ex)
            {
                // Finite parameters and pixels, but the forward pass overflowed (e.g. a learning rate far too large).
                throw Diverged($"The forward pass at step {step} of {totalSteps} is not finite: {ex.Message.TrimEnd('.')}", step, ex);
            }
            if (!double.IsFinite(result.Loss))
                throw Diverged($"The loss is {result.Loss} at step {step} of {totalSteps}", step, null);
            double gradientNorm;
            try
            {
                gradientNorm = Model.OptimizerStep(optimizer, learningRate);
            }
            catch (ArithmeticException ex)
            {
                // The optimizer names the first gradient (nothing changed) or parameter (updated) that is not finite.
                string what = ex is NonFiniteTensorException { IsGradient: false } ? "A parameter is not finite after" : "The gradient is not finite at";
                throw Diverged($"{what} step {step} of {totalSteps} (loss {result.Loss}): {ex.Message.TrimEnd('.')}", step, ex);
            }
            if (!double.IsFinite(gradientNorm))
                throw Diverged($"The gradient norm is {gradientNorm} at step {step} of {totalSteps} (loss {result.Loss})", step, null);
            _losses.Add(result.Loss);
            Step = step;
            stopwatch.Stop();

            if (step % readEvery == 0 || step == totalSteps) (temperature, bias) = ReadLogitScaleAndBias();
            string? saved = null;
            if (_outputFolder is not null && (step == totalSteps || (Settings.CheckpointEvery > 0 && step % Settings.CheckpointEvery == 0)))
                saved = SaveCheckpoint();

            if (progress is not null && IsRoot)
            {
                double seconds = stopwatch.Elapsed.TotalSeconds;
                int done = Step - firstStep;
                double pairsPerSecond = seconds > 0 ? done * (double)Settings.BatchSize / seconds : 0;
                var eta = done > 0 ? TimeSpan.FromSeconds(seconds / done * (totalSteps - Step)) : TimeSpan.Zero;
                progress.Report(new TrainingProgress(Step, totalSteps, result.Loss, learningRate, gradientNorm, temperature, bias,
                    pairsPerSecond, stopwatch.Elapsed, eta, saved));
            }
        }

        int stepsThisSession = Step - firstStep;
        double elapsed = stopwatch.Elapsed.TotalSeconds;
        return new TrainingResult(
            Step,
            _losses.ToList(),
            elapsed,
            elapsed > 0 ? stepsThisSession * (double)Settings.BatchSize / elapsed : 0,
            _losses.Count > 0 ? _losses[^1] : double.NaN,
            temperature,
            bias,
            LastCheckpoint,
            WorldSize,
            CommunicationSeconds);
    }

    /// <summary>
    /// One data-parallel step on this rank's rows: encode, the ring loss of the whole global batch,
    /// backward, then the tower gradients summed over the ranks. The loss returned is the global one.
    /// </summary>
    private StepResult DistributedForwardBackward(SiglipBatch batch, LossOptions loss)
    {
        var communicator = _communicator!;
        var encoded = Model.EncodeForTraining(batch);
        var r = RingSigmoidLoss.Compute(communicator, encoded.ImageEmbeds, encoded.TextEmbeds, encoded.LogitScale, encoded.LogitBias, loss);
        Model.BackwardFromEmbeddings(r.GradImageEmbeds, r.GradTextEmbeds, r.GradLogitScale, r.GradLogitBias);
        Model.AllReduceGradients(communicator);
        return new StepResult(r.Loss, System.Collections.ObjectModel.ReadOnlyDictionary<string, Tensor>.Empty);
    }

    /// <summary>
    /// Saves a checkpoint of the current step now (into the output folder). Data-parallel: a collective;
    /// rank 0 writes it (atomically), then every rank waits at a barrier, so that no rank runs ahead of
    /// a checkpoint that is not yet on disk. Every rank returns its path.
    /// </summary>
    public string SaveCheckpoint()
    {
        if (_outputFolder is null) throw new InvalidOperationException("This trainer has no output folder to save checkpoints in.");
        if (_communicator is null) return SaveCheckpointFile();
        string path = IsRoot ? SaveCheckpointFile() : TrainingCheckpoint.StepFolder(_outputFolder, Step);
        _communicator.Barrier();
        LastCheckpoint = path;
        return path;
    }

    private string SaveCheckpointFile()
    {
        if (_outputFolder is null) throw new InvalidOperationException("This trainer has no output folder to save checkpoints in.");
        var state = new TrainingState(Step, Settings, _batches.Position, _losses.ToList(), _backend.Name, _backend.DType.Name(), _data.Description);
        var dtype = _backend.DType == DType.Float64 ? SafeTensorDType.F64 : SafeTensorDType.F32;
        LastCheckpoint = TrainingCheckpoint.Save(_outputFolder, Config, Model.GetParameters(), Model.GetOptimizerState(), state,
            dtype, Settings.KeepCheckpoints, AfterCheckpointFileWritten);
        return LastCheckpoint;
    }

    /// <summary>Why a step could not give a finite loss, if the cause is a non-finite number; null otherwise.</summary>
    private string? NonFiniteCause(SiglipBatch batch)
    {
        var pixels = batch.PixelValues.Data;
        for (int i = 0; i < pixels.Length; i++)
            if (!double.IsFinite(pixels[i]))
                return $"the batch holds a {pixels[i]} pixel value (image {i / (pixels.Length / batch.Size)} of the batch)";
        var parameters = Model.GetParameters();
        foreach (var (name, tensor) in parameters)
            if (tensor.Data.Any(x => !double.IsFinite(x))) return $"parameter '{name}' holds NaN or infinite values";
        double logitScale = parameters[ParameterLayout.LogitScale].Data[0];
        if (double.IsInfinity(Math.Exp(logitScale))) return $"t = exp(t') overflows (t' = {logitScale:G6})";
        return null;
    }

    private (double Temperature, double Bias) ReadLogitScaleAndBias()
    {
        var p = Model.GetParameters();
        return (Math.Exp(p[ParameterLayout.LogitScale].Data[0]), p[ParameterLayout.LogitBias].Data[0]);
    }

    private TrainingDivergedException Diverged(string what, int step, Exception? inner)
    {
        string kept = LastCheckpoint is not null
            ? $"The last good checkpoint is '{LastCheckpoint}' (left as it was; resume from it with a lower --lr)."
            : "No checkpoint had been saved yet.";
        return new TrainingDivergedException($"{what}; training stopped. {kept}", step, LastCheckpoint, inner);
    }

    /// <summary>Disposes the batch stream and the model (not the backend, which the caller owns).</summary>
    public void Dispose()
    {
        _batches.Dispose();
        Model.Dispose();
    }
}
