namespace SigLip.Reference.Training;

/// <summary>
/// Linear warmup from 0 to <see cref="PeakLearningRate"/>, then cosine decay to <see cref="MinLearningRate"/>
/// (big_vision's "warmup_cosine"). Steps are counted from 0:
/// <code>
///   step &lt; W:  lr = peak * (step + 1) / W
///   else:      lr = min + (peak - min) * (1 + cos(pi * (step - W) / (T - W))) / 2
/// </code>
/// so the first step already moves (lr &gt; 0), warmup ends exactly at the peak, and the last step
/// (T - 1) is just above the floor.
/// </summary>
/// <param name="PeakLearningRate">The rate reached at the end of warmup.</param>
/// <param name="WarmupSteps">W, steps of linear warmup (0: start at the peak).</param>
/// <param name="TotalSteps">T, the length of the whole run including warmup.</param>
/// <param name="MinLearningRate">The floor the cosine decays to.</param>
public sealed record LearningRateSchedule(double PeakLearningRate, int WarmupSteps, int TotalSteps, double MinLearningRate = 0.0)
{
    /// <summary>Throws naming the field when the schedule cannot be followed.</summary>
    public void Validate()
    {
        if (!(PeakLearningRate >= 0) || !double.IsFinite(PeakLearningRate)) throw new ArgumentException($"Learning rate must be finite and non-negative, got {PeakLearningRate}.");
        if (!(MinLearningRate >= 0) || MinLearningRate > PeakLearningRate) throw new ArgumentException($"Minimum learning rate must be in [0, peak {PeakLearningRate}], got {MinLearningRate}.");
        if (TotalSteps <= 0) throw new ArgumentException($"Total steps must be positive, got {TotalSteps}.");
        if (WarmupSteps < 0 || WarmupSteps > TotalSteps) throw new ArgumentException($"Warmup steps must be in [0, total steps {TotalSteps}], got {WarmupSteps}.");
    }

    /// <summary>The learning rate of step <paramref name="step"/> (0-based); beyond the end it stays at the floor.</summary>
    public double At(int step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "Step must be non-negative.");
        if (step < WarmupSteps) return PeakLearningRate * (step + 1) / WarmupSteps;
        int decaySteps = TotalSteps - WarmupSteps;
        if (decaySteps <= 0 || step >= TotalSteps) return MinLearningRate;
        double progress = (double)(step - WarmupSteps) / decaySteps;
        return MinLearningRate + (PeakLearningRate - MinLearningRate) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}
