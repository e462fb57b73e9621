using SigLip.Reference.Loss;
using SigLip.Reference.Models;

namespace SigLip.Reference.Backends;

/// <summary>
/// The backend contract with optional arguments: the interface methods take every argument (so a
/// backend implements one method each), these fill in the defaults. From F#:
/// <c>model.Forward(batch)</c>, <c>model.ForwardBackward(batch, collectOutputs = true)</c>,
/// <c>backend.Loss(x, y, tPrime, b)</c>.
/// </summary>
public static class BackendExtensions
{
    /// <summary>Forward only; <paramref name="loss"/> defaults to the dense sigmoid loss.</summary>
    public static StepResult Forward(this ISiglipModel model, SiglipBatch batch, LossOptions? loss = null, bool collectOutputs = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Forward(batch, loss ?? LossOptions.Default, collectOutputs);
    }

    /// <summary>Forward and backward; <paramref name="loss"/> defaults to the dense sigmoid loss.</summary>
    public static StepResult ForwardBackward(this ISiglipModel model, SiglipBatch batch, LossOptions? loss = null, bool collectOutputs = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.ForwardBackward(batch, loss ?? LossOptions.Default, collectOutputs);
    }

    /// <summary>One AdamW step with <paramref name="settings"/> defaulting to <see cref="AdamWSettings"/>'s defaults.</summary>
    public static double OptimizerStep(this ISiglipModel model, double learningRate, AdamWSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.OptimizerStep(settings ?? new AdamWSettings(), learningRate);
    }

    /// <summary>The pairwise loss; <paramref name="options"/> defaults to the dense sigmoid loss.</summary>
    public static LossResult Loss(this IBackend backend, Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        return backend.Loss(imageEmbeds, textEmbeds, logitScale, logitBias, options ?? LossOptions.Default);
    }

    /// <summary>A model with parameters from <see cref="ModelInit.Random"/> (seed, and the paper's t' = ln 10, b = -10 unless given).</summary>
    public static ISiglipModel CreateRandomModel(this IBackend backend, SiglipConfig config, int seed = 0, LockedTowers locked = LockedTowers.None,
        double logitScale = SigmoidLoss.PaperInitialLogitScale, double logitBias = SigmoidLoss.PaperInitialLogitBias)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        return backend.CreateModel(config, ModelInit.Random(config, seed, logitScale, logitBias), locked);
    }
}
