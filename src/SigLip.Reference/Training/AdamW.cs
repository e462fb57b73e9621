using SigLip.Reference.Backends;
using SigLip.Reference.Models;

namespace SigLip.Reference.Training;

/// <summary>
/// AdamW (Loshchilov and Hutter, "Decoupled Weight Decay Regularization") with global-norm
/// gradient clipping, updating <see cref="NamedTensors"/> in place. Written to match
/// <c>torch.optim.AdamW</c> (non-amsgrad, non-fused) operation for operation:
/// <code>
///   g      = clip(grad)                                   (global norm over all trained parameters)
///   p     *= 1 - lr * weight_decay                        (ONLY where ParameterSpec.Decayed)
///   m      = beta1 * m + (1 - beta1) * g                  (exp_avg)
///   v      = beta2 * v + (1 - beta2) * g^2                (exp_avg_sq)
///   p     -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// </code>
/// Weight decay is applied to weights, embeddings and the MAP probe only. Biases, LayerNorm
/// scales and shifts, t' (logit_scale) and b (logit_bias) are NOT decayed: decaying t' and b
/// would pull the temperature towards 1 and the bias towards 0, and decaying norms and biases
/// only hurts (they do not contribute to over-fitting by growing).
/// Parameters of a locked tower are not in <c>trainable</c>: they have no state and are never touched.
/// </summary>
public sealed class AdamW
{
    /// <summary>The state tensor holding the step count t (shape [1]).</summary>
    public const string StepName = "step";
    /// <summary>Prefix of a parameter's first-moment state (m) in <see cref="GetState"/> (as PyTorch names it).</summary>
    public const string ExpAvgPrefix = "exp_avg.";
    /// <summary>Prefix of a parameter's second-moment state (v) in <see cref="GetState"/>.</summary>
    public const string ExpAvgSqPrefix = "exp_avg_sq.";

    private readonly IReadOnlyList<ParameterSpec> _trainable;
    private readonly Dictionary<string, double[]> _expAvg = new(StringComparer.Ordinal);   // m, same shape as the parameter
    private readonly Dictionary<string, double[]> _expAvgSq = new(StringComparer.Ordinal); // v, same shape as the parameter

    /// <param name="trainable">The parameters this optimizer updates (a locked tower's are left out).</param>
    public AdamW(IEnumerable<ParameterSpec> trainable)
    {
        _trainable = trainable.ToList();
        foreach (var spec in _trainable)
        {
            if (_expAvg.ContainsKey(spec.Name)) throw new ArgumentException($"AdamW: parameter '{spec.Name}' is listed twice.");
            _expAvg[spec.Name] = new double[spec.Size];
            _expAvgSq[spec.Name] = new double[spec.Size];
        }
    }

    /// <summary>The trainable parameters of <paramref name="config"/> with <paramref name="locked"/> towers left out.</summary>
    public static IReadOnlyList<ParameterSpec> TrainableParameters(SiglipConfig config, LockedTowers locked) =>
        ParameterLayout.For(config).Where(p => IsTrainable(p, locked)).ToList();

    /// <summary>Whether a parameter is trained under <paramref name="locked"/>; t' and b always are.</summary>
    public static bool IsTrainable(ParameterSpec spec, LockedTowers locked) => spec.Tower switch
    {
        Tower.Image => !locked.HasFlag(LockedTowers.Image),
        Tower.Text => !locked.HasFlag(LockedTowers.Text),
        _ => true,
    };

    /// <summary>The parameters this optimizer updates, in layout order.</summary>
    public IReadOnlyList<ParameterSpec> Trainable => _trainable;

    /// <summary>t, the number of steps taken so far.</summary>
    public long StepCount { get; private set; }

    /// <summary>
    /// The global L2 norm of <paramref name="gradients"/> over the trainable parameters (NaN when
    /// any element is NaN or infinite).
    /// </summary>
    public double GradientNorm(IReadOnlyDictionary<string, Tensor> gradients)
    {
        double sumSquares = 0;
        foreach (var spec in _trainable)
        {
            var g = Gradient(gradients, spec).Data;
            for (int i = 0; i < g.Length; i++) sumSquares += g[i] * g[i];
        }
        return double.IsFinite(sumSquares) ? Math.Sqrt(sumSquares) : double.NaN;
    }

    /// <summary>
    /// Clips the gradients to <see cref="AdamWSettings.MaxGradNorm"/> (as torch's clip_grad_norm_:
    /// scale by max / (norm + 1e-6) when that is below 1; the gradients themselves are not modified),
    /// then takes one AdamW step on <paramref name="parameters"/> in place. Returns the norm before clipping.
    /// A non-finite gradient norm throws before anything is changed.
    /// </summary>
    /// <exception cref="NonFiniteTensorException">
    /// A gradient is NaN or infinite (or the norm overflows): names the first such gradient, nothing is changed. Or a
    /// parameter became NaN or infinite in this step (e.g. a learning rate or weight decay far too large): names the first
    /// such parameter; every parameter has been updated, so the model should be discarded (a checkpoint saved before is intact).
    /// </exception>
    public double Step(NamedTensors parameters, IReadOnlyDictionary<string, Tensor> gradients, AdamWSettings settings, double learningRate)
    {
        Validate(settings, learningRate);
        double norm = GradientNorm(gradients);
        if (double.IsNaN(norm))
            throw NonFiniteGradient(_trainable.Select(spec => (spec.Name, Gradient(gradients, spec).Data)), StepCount + 1);
        double clip = 1.0;
        if (settings.MaxGradNorm > 0)
        {
            double coefficient = settings.MaxGradNorm / (norm + 1e-6);
            if (coefficient < 1.0) clip = coefficient;
        }

        StepCount++;
        double biasCorrection1 = 1 - Math.Pow(settings.Beta1, StepCount);
        double biasCorrection2 = 1 - Math.Pow(settings.Beta2, StepCount);
        double stepSize = learningRate / biasCorrection1;
        double biasCorrection2Sqrt = Math.Sqrt(biasCorrection2);

        (string Name, int Index, double Value)? firstNonFinite = null;
        foreach (var spec in _trainable)
        {
            var p = Parameter(parameters, spec).Data;
            var g = Gradient(gradients, spec).Data;
            var m = _expAvg[spec.Name];
            var v = _expAvgSq[spec.Name];
            // Decoupled decay: shrinks the weight itself, not the gradient; see the class comment for who is exempt.
            double decay = spec.Decayed ? 1 - learningRate * settings.WeightDecay : 1.0;
            for (int i = 0; i < p.Length; i++)
            {
                double gi = clip == 1.0 ? g[i] : g[i] * clip;
                p[i] *= decay;
                m[i] = settings.Beta1 * m[i] + (1 - settings.Beta1) * gi;
                v[i] = settings.Beta2 * v[i] + (1 - settings.Beta2) * gi * gi;
                double denominator = Math.Sqrt(v[i]) / biasCorrection2Sqrt + settings.Epsilon;
                p[i] -= stepSize * (m[i] / denominator);
                // The check costs one compare on a number already in a register; the step finishes either way,
                // so that every parameter is updated alike, and the first bad one is named afterwards.
                if (!double.IsFinite(p[i]) && firstNonFinite is null) firstNonFinite = (spec.Name, i, p[i]);
            }
        }
        if (firstNonFinite is var (name, index, value))
            throw new NonFiniteTensorException(
                $"AdamW: parameter '{name}' became {value} (flat index {index}) at optimizer step {StepCount} (learning rate {learningRate:G3}, weight decay {settings.WeightDecay:G3}); " +
                "the update overflowed: lower the learning rate or the weight decay.", name, isGradient: false);
        return norm;
    }

    /// <summary>
    /// The exception for a gradient norm that is not finite: names the first gradient tensor, in layout order, holding
    /// NaN or an infinity, or, when every element is finite, says that the norm itself overflowed and names the largest.
    /// Every backend's optimizer reports through it (it scans only after the norm has failed).
    /// </summary>
    public static NonFiniteTensorException NonFiniteGradient(IEnumerable<(string Name, double[] Data)> gradients, long step)
    {
        ArgumentNullException.ThrowIfNull(gradients);
        (string Name, double Value) largest = ("", 0);
        foreach (var (name, data) in gradients)
        {
            for (int i = 0; i < data.Length; i++)
            {
                if (!double.IsFinite(data[i]))
                    return new NonFiniteTensorException(
                        $"AdamW: the gradient of '{name}' is {data[i]} (flat index {i}) at optimizer step {step}, the first gradient that is not finite; no parameter was changed.", name, isGradient: true);
                if (Math.Abs(data[i]) > Math.Abs(largest.Value)) largest = (name, data[i]);
            }
        }
        return new NonFiniteTensorException(
            $"AdamW: the global gradient norm overflows at optimizer step {step} although every gradient is finite (the largest is {largest.Value:G6} in '{largest.Name}'); no parameter was changed.",
            largest.Name, isGradient: true);
    }

    /// <summary>
    /// The state for a checkpoint: <c>exp_avg.&lt;param&gt;</c>, <c>exp_avg_sq.&lt;param&gt;</c> (parameter
    /// shapes, copies) and <c>step</c> ([1]).
    /// </summary>
    public NamedTensors GetState()
    {
        var state = new NamedTensors();
        foreach (var spec in _trainable)
        {
            var shape = spec.Shape.ToArray();
            state.Add(ExpAvgPrefix + spec.Name, new Tensor(shape, (double[])_expAvg[spec.Name].Clone()));
            state.Add(ExpAvgSqPrefix + spec.Name, new Tensor(shape, (double[])_expAvgSq[spec.Name].Clone()));
        }
        state.Add(StepName, Tensor.Scalar(StepCount));
        return state;
    }

    /// <summary>Restores <see cref="GetState"/>'s output; every name must be present with the right shape, and no others.</summary>
    public void SetState(IReadOnlyDictionary<string, Tensor> state)
    {
        long step = CheckState(state, _trainable);
        foreach (var spec in _trainable)
        {
            Array.Copy(state[ExpAvgPrefix + spec.Name].Data, _expAvg[spec.Name], spec.Size);
            Array.Copy(state[ExpAvgSqPrefix + spec.Name].Data, _expAvgSq[spec.Name], spec.Size);
        }
        StepCount = step;
    }

    /// <summary>
    /// Checks an optimizer state (a checkpoint's) against the trainable parameters before anything is
    /// restored: exactly 'step' and exp_avg./exp_avg_sq. of each, with the parameters' shapes, all finite,
    /// and a whole non-negative step count, which it returns. Throws an <see cref="ArgumentException"/>
    /// saying what is wrong. Every backend's optimizer restores through this check.
    /// </summary>
    public static long CheckState(IReadOnlyDictionary<string, Tensor> state, IReadOnlyList<ParameterSpec> trainable)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(trainable);
        var expected = new HashSet<string>(StringComparer.Ordinal) { StepName };
        foreach (var spec in trainable)
        {
            expected.Add(ExpAvgPrefix + spec.Name);
            expected.Add(ExpAvgSqPrefix + spec.Name);
        }
        var unexpected = state.Keys.Where(k => !expected.Contains(k)).ToList();
        if (unexpected.Count > 0)
            throw new ArgumentException($"Optimizer state: unexpected tensor(s) {string.Join(", ", unexpected.Take(5))}{(unexpected.Count > 5 ? ", ..." : "")}; " +
                "expected only 'step' and exp_avg./exp_avg_sq. of the trainable parameters (was the checkpoint saved with other locked towers or another config?).");
        var missing = expected.Where(k => !state.ContainsKey(k)).ToList();
        if (missing.Count > 0)
            throw new ArgumentException($"Optimizer state: missing tensor(s) {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", ..." : "")}.");

        var step = state[StepName];
        if (step.Size != 1 || !(step.Data[0] >= 0) || step.Data[0] != Math.Floor(step.Data[0]))
            throw new ArgumentException($"Optimizer state: 'step' must be one non-negative whole number, got {Tensor.ShapeToString(step.Shape)} {string.Join(", ", step.Data.Take(3))}.");
        foreach (var spec in trainable)
        {
            foreach (var name in new[] { ExpAvgPrefix + spec.Name, ExpAvgSqPrefix + spec.Name })
            {
                var t = state[name];
                if (!t.Shape.SequenceEqual(spec.Shape))
                    throw new ArgumentException($"Optimizer state: '{name}' has shape {Tensor.ShapeToString(t.Shape)}, expected {Tensor.ShapeToString(spec.Shape)}.");
                if (t.Data.Any(x => !double.IsFinite(x)))
                    throw new ArgumentException($"Optimizer state: '{name}' holds NaN or infinite values.");
            }
        }
        return (long)step.Data[0];
    }

    private static void Validate(AdamWSettings s, double learningRate) => s.Validate(learningRate);

    private static Tensor Parameter(NamedTensors parameters, ParameterSpec spec)
    {
        if (!parameters.TryGetValue(spec.Name, out var p))
            throw new ArgumentException($"AdamW: no parameter named '{spec.Name}'.");
        if (p.Size != spec.Size)
            throw new ArgumentException($"AdamW: parameter '{spec.Name}' has shape {Tensor.ShapeToString(p.Shape)}, expected {Tensor.ShapeToString(spec.Shape)}.");
        return p;
    }

    private static Tensor Gradient(IReadOnlyDictionary<string, Tensor> gradients, ParameterSpec spec)
    {
        if (!gradients.TryGetValue(spec.Name, out var g))
            throw new ArgumentException($"AdamW: no gradient for trainable parameter '{spec.Name}'.");
        if (g.Size != spec.Size)
            throw new ArgumentException($"AdamW: gradient of '{spec.Name}' has shape {Tensor.ShapeToString(g.Shape)}, expected {Tensor.ShapeToString(spec.Shape)}.");
        return g;
    }
}

/// <summary>
/// An optimizer step met a NaN or an infinity: in a gradient (before anything changed) or in a parameter it produced.
/// An <see cref="ArithmeticException"/>; the trainer turns it into a <see cref="TrainingDivergedException"/> naming the step.
/// </summary>
public sealed class NonFiniteTensorException(string message, string tensorName, bool isGradient) : ArithmeticException(message)
{
    /// <summary>The HF name of the parameter whose gradient or value is not finite.</summary>
    public string TensorName { get; } = tensorName;
    /// <summary>True: the gradient of <see cref="TensorName"/>; false: the parameter itself, after the update.</summary>
    public bool IsGradient { get; } = isGradient;
}
