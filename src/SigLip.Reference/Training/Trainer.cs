using System.Diagnostics;
using SigLip.Reference.Backends;
using SigLip.Reference.Data;
using SigLip.Reference.IO;
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
public sealed class Trainer : IDisposable
{
    private readonly IBackend _backend;
    private readonly IImageTextSource _data;
    private readonly BatchStream _batches;
    private readonly List<double> _losses;
    private readonly string? _outputFolder;

    private Trainer(IBackend backend, ISiglipModel model, IImageTextSource data, ITextTokenizer tokenizer,
        TrainingSettings settings, string? outputFolder, int step, IReadOnlyList<double> losses, DataPosition position, string? lastCheckpoint)
    {
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
    /// <summary>Called with each checkpoint file's path once written (tests interrupt a save with it).</summary>
    public Action<string>? AfterCheckpointFileWritten { get; set; }

    /// <summary>
    /// A fresh run: parameters from <see cref="ModelInit.Random"/> with the settings' seed and t', b;
    /// then <paramref name="initialParameters"/> (e.g. a locked tower's weights from a checkpoint) replace
    /// the ones they name.
    /// </summary>
    /// <param name="outputFolder">Where checkpoints go; null: none are saved.</param>
    public static Trainer Start(IBackend backend, SiglipConfig config, IImageTextSource data, ITextTokenizer tokenizer,
        TrainingSettings settings, string? outputFolder = null, IReadOnlyDictionary<string, Tensor>? initialParameters = null)
    {
        config.Validate();
        settings.Validate();
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
        return new Trainer(backend, model, data, tokenizer, settings, outputFolder, 0, [], DataPosition.Start, null);
    }

    /// <summary>
    /// Continues a run from a checkpoint (a step folder or a run folder). The settings are the
    /// checkpoint's; <paramref name="steps"/> may extend the run (this changes the cosine schedule
    /// from the resumed step on). Checkpoints go to <paramref name="outputFolder"/>, by default the
    /// run folder the checkpoint is in.
    /// </summary>
    public static Trainer Resume(IBackend backend, string checkpoint, IImageTextSource data, ITextTokenizer tokenizer,
        string? outputFolder = null, int? steps = null)
    {
        var loaded = TrainingCheckpoint.Load(checkpoint);
        var settings = steps is int s ? loaded.State.Settings with { Steps = s } : loaded.State.Settings;
        settings.Validate();
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
        return new Trainer(backend, model, data, tokenizer, settings, runFolder, loaded.State.Step, loaded.State.Losses, loaded.State.Data, loaded.Folder);
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
                if (_outputFolder is not null && Step > firstStep) SaveCheckpoint();
                cancellationToken.ThrowIfCancellationRequested();
            }
            stopwatch.Start();
            int step = Step + 1; // 1-based, as reported
            var batch = _batches.Next();
            double learningRate = schedule.At(Step);
            StepResult result;
            try
            {
                result = Model.ForwardBackward(batch, loss, collectOutputs: false);
            }
            catch (Exception ex) when (ex is ArgumentException or ArithmeticException && NonFiniteCause(batch) is { } cause)
            {
                // A backend that validates its inputs (the reference does) refuses before a NaN loss exists.
                throw Diverged($"The loss at step {step} of {totalSteps} is not finite: {cause} ({ex.Message})", step, ex);
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
                throw Diverged($"The gradient is not finite at step {step} of {totalSteps} (loss {result.Loss})", step, ex);
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

            if (progress is not null)
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
            LastCheckpoint);
    }

    /// <summary>Saves a checkpoint of the current step now (into the output folder).</summary>
    public string SaveCheckpoint()
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
