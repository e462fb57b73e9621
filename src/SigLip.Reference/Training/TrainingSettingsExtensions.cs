using SigLip.Reference.Backends;

namespace SigLip.Reference.Training;

/// <summary>
/// Copy-and-update for <see cref="TrainingSettings"/> from languages without C#'s <c>with</c>
/// (F#: <c>BuiltInRecipe.Settings.With(steps = 2, batchSize = 4)</c>). Every argument left out keeps the current value.
/// </summary>
public static class TrainingSettingsExtensions
{
    /// <summary>A copy of <paramref name="settings"/> with the given fields replaced.</summary>
    public static TrainingSettings With(this TrainingSettings settings,
        int? steps = null, int? batchSize = null, double? learningRate = null, int? warmupSteps = null, double? minLearningRate = null,
        AdamWSettings? optimizer = null, LossOptions? loss = null, int? seed = null, int? checkpointEvery = null,
        LockedTowers? locked = null, double? initialLogitScale = null, double? initialLogitBias = null, int? keepCheckpoints = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return settings with
        {
            Steps = steps ?? settings.Steps,
            BatchSize = batchSize ?? settings.BatchSize,
            LearningRate = learningRate ?? settings.LearningRate,
            WarmupSteps = warmupSteps ?? settings.WarmupSteps,
            MinLearningRate = minLearningRate ?? settings.MinLearningRate,
            Optimizer = optimizer ?? settings.Optimizer,
            Loss = loss ?? settings.Loss,
            Seed = seed ?? settings.Seed,
            CheckpointEvery = checkpointEvery ?? settings.CheckpointEvery,
            Locked = locked ?? settings.Locked,
            InitialLogitScale = initialLogitScale ?? settings.InitialLogitScale,
            InitialLogitBias = initialLogitBias ?? settings.InitialLogitBias,
            KeepCheckpoints = keepCheckpoints ?? settings.KeepCheckpoints,
        };
    }
}
