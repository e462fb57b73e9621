using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using ReferenceAdamW = SigLip.Reference.Training.AdamW;

namespace SigLip.Backends.TorchSharp;

/// <summary>
/// AdamW with global-norm clipping on libtorch tensors, operation for operation the reference's
/// <see cref="ReferenceAdamW"/> (torch.optim.AdamW, non-fused):
/// g = clip(grad); p *= 1 - lr wd (decayed parameters only); m = b1 m + (1-b1) g;
/// v = b2 v + (1-b2) g^2; p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps).
/// The moments live beside the parameters, in the master dtype.
/// </summary>
internal sealed class TorchAdamW : IDisposable
{
    private sealed record Slot(ParameterSpec Spec, Parameter Parameter, Tensor ExpAvg, Tensor ExpAvgSq);

    private readonly List<Slot> _slots = [];

    public TorchAdamW(IEnumerable<(ParameterSpec Spec, Parameter Parameter)> trainable)
    {
        foreach (var (spec, p) in trainable)
            _slots.Add(new Slot(spec, p, zeros_like(p).DetachFromDisposeScope(), zeros_like(p).DetachFromDisposeScope()));
    }

    public long StepCount { get; private set; }

    /// <summary>The global gradient norm (a device scalar, no host sync). Missing gradients count as zero.</summary>
    public Tensor GradientNorm()
    {
        using var scope = NewDisposeScope();
        var norms = _slots.Select(s => s.Parameter.grad is { } g ? g.detach().to(ScalarType.Float64).norm() : zeros(1, ScalarType.Float64, s.Parameter.device).squeeze()).ToArray();
        return stack(norms).norm().MoveToOuterDisposeScope();
    }

    /// <summary>Clip, then one step; returns the norm before clipping. Throws, changing nothing, on a NaN/Inf norm.</summary>
    public double Step(AdamWSettings settings, double learningRate)
    {
        Validate(settings, learningRate);
        using var scope = NewDisposeScope();
        var normTensor = GradientNorm();
        double norm = normTensor.item<double>();                                 // the one host sync of a good step
        if (!double.IsFinite(norm))
            throw ReferenceAdamW.NonFiniteGradient(FirstNonFiniteGradient(), StepCount + 1);
        double clip = 1.0;
        if (settings.MaxGradNorm > 0)
        {
            double coefficient = settings.MaxGradNorm / (norm + 1e-6);
            if (coefficient < 1.0) clip = coefficient;
        }
        Apply(settings, learningRate, clip, null);
        CheckParametersFinite(settings, learningRate);
        return norm;
    }

    /// <summary>
    /// The gradients in layout order, on the host, up to and including the first that is not finite (only after the norm
    /// failed, so the copies cost nothing in a good step). Missing gradients count as zero and are skipped.
    /// </summary>
    private IEnumerable<(string Name, double[] Data)> FirstNonFiniteGradient()
    {
        foreach (var slot in _slots)
        {
            if (slot.Parameter.grad is not { } g) continue;
            using var scope = NewDisposeScope();
            bool finite = g.isfinite().all().item<bool>();
            yield return (slot.Spec.Name, HostTensors.ToHost(g).Data); // a finite one too: an overflowing norm names the largest
            if (!finite) yield break;
        }
    }

    /// <summary>
    /// After an update: one reduction per parameter on the device and one host sync for all of them; on a NaN or an
    /// infinity, names the first parameter (layout order) holding one, as the reference's AdamW does.
    /// </summary>
    private void CheckParametersFinite(AdamWSettings settings, double learningRate)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var finite = stack(_slots.Select(s => s.Parameter.isfinite().all()).ToArray());
        if (finite.all().item<bool>()) return;
        var flags = finite.data<bool>().ToArray();
        int first = Array.IndexOf(flags, false);
        var slot = _slots[first];
        var values = HostTensors.ToHost(slot.Parameter.detach()).Data;
        int index = Array.FindIndex(values, x => !double.IsFinite(x));
        throw new SigLip.Reference.Training.NonFiniteTensorException(
            $"AdamW: parameter '{slot.Spec.Name}' became {values[index]} (flat index {index}) at optimizer step {StepCount} (learning rate {learningRate:G3}, weight decay {settings.WeightDecay:G3}); " +
            "the update overflowed: lower the learning rate or the weight decay.", slot.Spec.Name, isGradient: false);
    }

    /// <summary>
    /// Clip and step without any host sync (for timing): the clip coefficient stays on the device and
    /// the NaN check is skipped. Returns the device norm.
    /// </summary>
    public Tensor StepWithoutSync(AdamWSettings settings, double learningRate)
    {
        Validate(settings, learningRate);
        using var scope = NewDisposeScope();
        var norm = GradientNorm();
        Tensor? clip = settings.MaxGradNorm > 0 ? (settings.MaxGradNorm / (norm + 1e-6)).clamp_max(1.0) : null;
        Apply(settings, learningRate, 1.0, clip);
        return norm.MoveToOuterDisposeScope();
    }

    private void Apply(AdamWSettings s, double lr, double clip, Tensor? clipOnDevice)
    {
        StepCount++;
        double biasCorrection1 = 1 - Math.Pow(s.Beta1, StepCount);
        double biasCorrection2Sqrt = Math.Sqrt(1 - Math.Pow(s.Beta2, StepCount));
        double stepSize = lr / biasCorrection1;
        using var noGrad = no_grad();
        foreach (var slot in _slots)
        {
            using var scope = NewDisposeScope();
            var g = slot.Parameter.grad ?? zeros_like(slot.Parameter);
            if (clipOnDevice is not null) g = g * clipOnDevice.to(g.dtype);
            else if (clip != 1.0) g = g * clip;
            // Decoupled decay: shrinks the weight itself, only where ParameterSpec.Decayed.
            if (slot.Spec.Decayed) MultiplyBy(slot.Parameter, 1 - lr * s.WeightDecay);
            slot.ExpAvg.mul_(s.Beta1).add_(g, alpha: 1 - s.Beta1);
            slot.ExpAvgSq.mul_(s.Beta2).addcmul_(g, g, value: 1 - s.Beta2);
            var denominator = slot.ExpAvgSq.sqrt() / biasCorrection2Sqrt + s.Epsilon;
            if (FitsScalar(slot.Parameter, stepSize)) slot.Parameter.addcdiv_(slot.ExpAvg, denominator, value: -stepSize);
            else
            {
                var update = slot.ExpAvg / denominator;
                MultiplyBy(update, -stepSize);
                slot.Parameter.add_(update);
            }
        }
    }

    /// <summary>
    /// Whether libtorch takes <paramref name="value"/> as a Scalar for <paramref name="t"/>: it refuses a finite number beyond
    /// the tensor's dtype ("value cannot be converted to type float without overflow", e.g. a step size of 1e301 for float32
    /// parameters), where the reference's float64 arithmetic would simply overflow to an infinity.
    /// </summary>
    private static bool FitsScalar(Tensor t, double value) =>
        t.dtype == ScalarType.Float64 || !double.IsFinite(value) || Math.Abs(value) <= float.MaxValue;

    /// <summary>t *= factor; a factor beyond t's dtype is applied as a float64 tensor, which libtorch rounds to an infinity as the reference would.</summary>
    private static void MultiplyBy(Tensor t, double factor)
    {
        if (FitsScalar(t, factor)) { t.mul_(factor); return; }
        using var f = tensor(factor, ScalarType.Float64, t.device);
        t.mul_(f);
    }

    public NamedTensors GetState()
    {
        var state = new NamedTensors();
        foreach (var slot in _slots)
        {
            state.Add(ReferenceAdamW.ExpAvgPrefix + slot.Spec.Name, HostTensors.ToHost(slot.ExpAvg));
            state.Add(ReferenceAdamW.ExpAvgSqPrefix + slot.Spec.Name, HostTensors.ToHost(slot.ExpAvgSq));
        }
        state.Add(ReferenceAdamW.StepName, HostTensor.Scalar(StepCount));
        return state;
    }

    /// <summary>Every name must be present with the right shape, and no others; checked before anything changes.</summary>
    public void SetState(IReadOnlyDictionary<string, HostTensor> state)
    {
        long step = ReferenceAdamW.CheckState(state, _slots.Select(slot => slot.Spec).ToList());
        using var noGrad = no_grad();
        foreach (var slot in _slots)
        {
            using var m = HostTensors.ToTorch(state[ReferenceAdamW.ExpAvgPrefix + slot.Spec.Name], slot.ExpAvg.dtype, slot.ExpAvg.device);
            using var v = HostTensors.ToTorch(state[ReferenceAdamW.ExpAvgSqPrefix + slot.Spec.Name], slot.ExpAvgSq.dtype, slot.ExpAvgSq.device);
            slot.ExpAvg.copy_(m);
            slot.ExpAvgSq.copy_(v);
        }
        StepCount = step;
    }

    private static void Validate(AdamWSettings s, double learningRate) => s.Validate(learningRate);

    public void Dispose()
    {
        foreach (var slot in _slots) { slot.ExpAvg.Dispose(); slot.ExpAvgSq.Dispose(); }
        _slots.Clear();
    }
}
