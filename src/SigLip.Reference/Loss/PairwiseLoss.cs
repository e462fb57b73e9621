using System.Numerics;
using SigLip.Reference.Backends;

namespace SigLip.Reference.Loss;

/// <summary>
/// The pairwise loss as the model, the reference backend and the golden cases call it:
/// sigmoid (dense or chunked) or softmax, chosen by <see cref="LossOptions"/>.
/// </summary>
public static class PairwiseLoss
{
    /// <summary>
    /// The loss of UNnormalised embeddings [n, d] and its gradients w.r.t. them, t' and b, in float64.
    /// L2-normalises with <see cref="LossOptions.NormEpsilon"/>, then the sigmoid loss (dense, or
    /// chunked over <see cref="LossOptions.Chunks"/> simulated devices) or the softmax loss.
    /// Bad input (shapes, empty batch, NaN/Inf, D not dividing n) throws ArgumentException naming the sizes.
    /// </summary>
    /// <param name="imageEmbeds">[n, d] unnormalised image embeddings.</param>
    /// <param name="textEmbeds">[n, d] unnormalised text embeddings.</param>
    /// <param name="logitScale">t' (HF logit_scale), t = exp(t').</param>
    /// <param name="logitBias">b (HF logit_bias); not used by the softmax loss.</param>
    /// <param name="returnLogits">Also return LogitsPerImage [n, n] (row = image).</param>
    public static LossResult Compute(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions? options = null, bool returnLogits = false)
    {
        options ??= LossOptions.Default;
        var (n, d) = LossInputValidation.CheckShapes(imageEmbeds, textEmbeds);
        var r = Compute(imageEmbeds.Data, textEmbeds.Data, n, d, logitScale, logitBias, options, returnLogits);
        return new LossResult(
            r.Loss,
            new Tensor([n, d], r.GradImageEmbeds),
            new Tensor([n, d], r.GradTextEmbeds),
            r.GradLogitScale,
            r.GradLogitBias,
            r.LogitsPerImage is null ? null : new Tensor([n, n], r.LogitsPerImage));
    }

    /// <summary>
    /// Checks the inputs of <see cref="Compute(Tensor, Tensor, double, double, LossOptions?, bool)"/> and throws the
    /// same <see cref="ArgumentException"/> it would (shapes, empty batch, NaN/Inf, zero rows, D not dividing n),
    /// without computing anything: for backends that compute the loss their own way. Returns (n, d).
    /// </summary>
    public static (int N, int D) Validate(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions? options = null)
    {
        options ??= LossOptions.Default;
        if (!double.IsFinite(options.NormEpsilon) || options.NormEpsilon < 0)
            throw new ArgumentException($"LossOptions.NormEpsilon = {options.NormEpsilon} must be finite and >= 0 (0 matches HF, big_vision uses 1e-8).");
        var (n, d) = LossInputValidation.CheckShapes(imageEmbeds, textEmbeds);
        LossInputValidation.Check(imageEmbeds.Data, textEmbeds.Data, n, d, logitScale, logitBias, options.NormEpsilon, options.Chunks, softmax: options.Kind == LossKind.Softmax);
        return (n, d);
    }

    /// <summary>
    /// The same on row-major arrays in any IEEE working dtype (float or double): the float32 path.
    /// <see cref="LossOptions.NormEpsilon"/> is converted to <typeparamref name="T"/>.
    /// </summary>
    public static PairwiseLossResult<T> Compute<T>(T[] imageEmbeds, T[] textEmbeds, int n, int d, T logitScale, T logitBias, LossOptions? options = null, bool returnLogits = false)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        options ??= LossOptions.Default;
        if (!double.IsFinite(options.NormEpsilon) || options.NormEpsilon < 0)
            throw new ArgumentException($"LossOptions.NormEpsilon = {options.NormEpsilon} must be finite and >= 0 (0 matches HF, big_vision uses 1e-8).");
        T epsilon = T.CreateChecked(options.NormEpsilon);
        return options.Kind switch
        {
            LossKind.Sigmoid => SigmoidLoss.Compute(imageEmbeds, textEmbeds, n, d, logitScale, logitBias, epsilon, options.Chunks, returnLogits),
            LossKind.Softmax => SoftmaxCompute(imageEmbeds, textEmbeds, n, d, logitScale, logitBias, epsilon, options.Chunks, returnLogits),
            _ => throw new ArgumentException($"Unknown loss kind {options.Kind}; expected Sigmoid or Softmax."),
        };
    }

    private static PairwiseLossResult<T> SoftmaxCompute<T>(T[] imageEmbeds, T[] textEmbeds, int n, int d, T logitScale, T logitBias, T epsilon, int chunks, bool returnLogits)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        LossInputValidation.Check(imageEmbeds, textEmbeds, n, d, logitScale, logitBias, epsilon, chunks, softmax: true);
        return SoftmaxLoss.ComputeValidated(imageEmbeds, textEmbeds, n, d, logitScale, epsilon, returnLogits);
    }
}
