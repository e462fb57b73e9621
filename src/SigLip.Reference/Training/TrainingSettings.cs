using System.Text.Json.Serialization;
using SigLip.Reference.Backends;
using SigLip.Reference.Loss;

namespace SigLip.Reference.Training;

/// <summary>
/// Hyper-parameters of a training run. Everything that decides the numbers is here (plus the
/// model config, the data source and the backend), so a run is reproduced by its settings.
/// </summary>
/// <param name="Steps">Total optimizer steps of the run (a resumed run continues up to this).</param>
/// <param name="BatchSize">Image-text pairs per step (n; the sigmoid loss sees n^2 pairs).</param>
/// <param name="LearningRate">Peak learning rate, reached at the end of warmup.</param>
/// <param name="WarmupSteps">Linear warmup steps, then cosine decay.</param>
/// <param name="MinLearningRate">The cosine's floor.</param>
/// <param name="Optimizer">AdamW's betas, epsilon, weight decay and clipping norm.</param>
/// <param name="Loss">Sigmoid or softmax, chunks, normalisation epsilon.</param>
/// <param name="Seed">Seeds the initialisation and the data order.</param>
/// <param name="CheckpointEvery">Save every N steps (0: only at the end); the end is always saved when an output folder is set.</param>
/// <param name="Locked">Towers that are frozen (SigLiT locks the image tower).</param>
/// <param name="InitialLogitScale">t' at step 0 (paper: ln 10).</param>
/// <param name="InitialLogitBias">b at step 0 (paper: -10).</param>
/// <param name="KeepCheckpoints">How many of the newest checkpoints to keep in the output folder (at least 1).</param>
public sealed record TrainingSettings(
    int Steps = 100,
    int BatchSize = 32,
    double LearningRate = 1e-3,
    int WarmupSteps = 10,
    double MinLearningRate = 0.0,
    AdamWSettings? Optimizer = null,
    LossOptions? Loss = null,
    int Seed = 0,
    int CheckpointEvery = 0,
    LockedTowers Locked = LockedTowers.None,
    double InitialLogitScale = SigmoidLoss.PaperInitialLogitScale,
    double InitialLogitBias = SigmoidLoss.PaperInitialLogitBias,
    int KeepCheckpoints = 2)
{
    /// <summary><see cref="Optimizer"/>, or the AdamW defaults when it is null.</summary>
    [JsonIgnore] public AdamWSettings OptimizerSettings => Optimizer ?? new AdamWSettings();
    /// <summary><see cref="Loss"/>, or <see cref="LossOptions.Default"/> (dense sigmoid) when it is null.</summary>
    [JsonIgnore] public LossOptions LossSettings => Loss ?? LossOptions.Default;

    /// <summary>The learning-rate schedule these settings describe: linear warmup, then cosine to the minimum.</summary>
    [JsonIgnore] public LearningRateSchedule Schedule => new(LearningRate, WarmupSteps, Steps, MinLearningRate);

    /// <summary>Throws naming the setting when it cannot be used.</summary>
    public void Validate()
    {
        if (Steps <= 0) throw new ArgumentException($"steps must be positive, got {Steps}.");
        // Every step's loss is kept and written to trainer_state.json: refuse a run whose history cannot be.
        Models.ModelSize.CheckSteps(Steps, maxBytes: null, option: "steps");
        if (BatchSize < 2) throw new ArgumentException($"batch size must be at least 2 (a contrastive loss needs negatives), got {BatchSize}.");
        if (CheckpointEvery < 0) throw new ArgumentException($"checkpoint-every must be 0 (only at the end) or positive, got {CheckpointEvery}.");
        if (KeepCheckpoints < 1) throw new ArgumentException($"keep-checkpoints must be at least 1, got {KeepCheckpoints}.");
        if (!double.IsFinite(InitialLogitScale) || !double.IsFinite(InitialLogitBias))
            throw new ArgumentException("initial logit scale and bias must be finite.");
        // Enums read from a file (a checkpoint's settings) may hold any number.
        if ((Locked & ~(LockedTowers.Image | LockedTowers.Text)) != 0)
            throw new ArgumentException($"locked must be None, Image, Text or both (\"Image, Text\"), got {Locked}.");
        var loss = LossSettings;
        if (!Enum.IsDefined(loss.Kind)) throw new ArgumentException($"loss kind must be Sigmoid or Softmax, got {loss.Kind}.");
        if (!(loss.NormEpsilon >= 0) || !double.IsFinite(loss.NormEpsilon)) throw new ArgumentException($"loss norm epsilon must be finite and non-negative, got {loss.NormEpsilon}.");
        if (loss.Chunks < 1) throw new ArgumentException($"chunks must be at least 1, got {loss.Chunks}.");
        if (loss.Chunks > 1 && loss.Kind != LossKind.Sigmoid)
            throw new ArgumentException("chunks > 1 applies to the sigmoid loss only (the softmax loss needs whole rows).");
        if (BatchSize % loss.Chunks != 0)
            throw new ArgumentException($"batch size {BatchSize} must be divisible by chunks {loss.Chunks} (each simulated device holds batch/chunks pairs).");
        Schedule.Validate();
        OptimizerSettings.Validate(LearningRate);
    }
}

/// <summary>Progress of a run, reported after every step.</summary>
/// <param name="Step">Steps done (1-based: 1 after the first step).</param>
/// <param name="Temperature">t = exp(t'), as of the last time the parameters were read.</param>
/// <param name="Bias">b, as of the last time the parameters were read.</param>
/// <param name="PairsPerSecond">Training throughput of this session (checkpoint saves excluded).</param>
/// <param name="Eta">Estimated time to the end of the run.</param>
/// <param name="TotalSteps">Steps the run will do.</param>
/// <param name="Loss">This step's loss.</param>
/// <param name="LearningRate">The learning rate this step used.</param>
/// <param name="GradientNorm">The global gradient norm before clipping.</param>
/// <param name="Elapsed">Wall time of this session so far.</param>
/// <param name="CheckpointSaved">The checkpoint saved after this step, if one was.</param>
public sealed record TrainingProgress(
    int Step,
    int TotalSteps,
    double Loss,
    double LearningRate,
    double GradientNorm,
    double Temperature,
    double Bias,
    double PairsPerSecond,
    TimeSpan Elapsed,
    TimeSpan Eta,
    string? CheckpointSaved = null);

/// <summary>The outcome of <see cref="Trainer.Run"/>.</summary>
/// <param name="Steps">Steps done in all (including those before a resume).</param>
/// <param name="Losses">Every step's loss from step 1 (restored from the checkpoint on resume).</param>
/// <param name="Seconds">Wall time of this session's steps (checkpoint saves excluded).</param>
/// <param name="PairsPerSecond">Image-text pairs per second in this session.</param>
/// <param name="CheckpointPath">The last checkpoint saved, if any.</param>
/// <param name="FinalLoss">The last step's loss.</param>
/// <param name="Temperature">t = exp(t') at the end.</param>
/// <param name="Bias">b at the end.</param>
/// <param name="WorldSize">W, the ranks that trained data-parallel (1: one process).</param>
/// <param name="CommunicationSeconds">This rank's seconds inside communicator calls in this session's steps (0 in one process).</param>
public sealed record TrainingResult(
    int Steps,
    IReadOnlyList<double> Losses,
    double Seconds,
    double PairsPerSecond,
    double FinalLoss,
    double Temperature,
    double Bias,
    string? CheckpointPath,
    int WorldSize = 1,
    double CommunicationSeconds = 0)
{
    /// <summary>Communication seconds per step of this session (0 when no step ran).</summary>
    public double CommunicationSecondsPerStep(int stepsThisSession) => stepsThisSession > 0 ? CommunicationSeconds / stepsThisSession : 0;
}

/// <summary>
/// Thrown when the loss or the gradient is NaN or infinite. The message names the step and the
/// last good checkpoint (which is left as it was).
/// </summary>
public sealed class TrainingDivergedException(string message, int step, string? lastGoodCheckpoint, Exception? inner = null)
    : Exception(message, inner)
{
    /// <summary>The step (1-based) whose loss or gradient was not finite.</summary>
    public int Step { get; } = step;
    /// <summary>The newest checkpoint saved before the divergence (left as it was), or null when none was.</summary>
    public string? LastGoodCheckpoint { get; } = lastGoodCheckpoint;
}
