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
    public double Step(NamedTensors parameters, IReadOnlyDictionary<string, Tensor> gradients, AdamWSettings settings, double learningRate)
    {
        Validate(settings, learningRate);
        double norm = GradientNorm(gradients);
        if (double.IsNaN(norm))
            throw new ArithmeticException($"AdamW: the gradient holds NaN or infinite values (at optimizer step {StepCount + 1}); no parameter was changed.");
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
            }
        }
        return norm;
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
