using System.Numerics;
using SigLip.Backends.Managed.Kernels;
using SigLip.Reference.Layers;

namespace SigLip.Backends.Managed;

/// <summary>The dense sigmoid loss of the managed backend, in the dtype of its arrays: what <see cref="ManagedOps.PairwiseLoss"/> runs.</summary>
/// <param name="Loss">L (divided by n).</param>
/// <param name="GradImageEmbeds">[n, d] dL / d unnormalised image embeddings.</param>
/// <param name="GradTextEmbeds">[n, d] dL / d unnormalised text embeddings.</param>
/// <param name="GradLogitScale">dL / dt'.</param>
/// <param name="GradLogitBias">dL / db.</param>
public sealed record ManagedLossResult<T>(double Loss, T[] GradImageEmbeds, T[] GradTextEmbeds, double GradLogitScale, double GradLogitBias);

/// <summary>The managed backend's dense sigmoid loss on plain arrays (float32 or float64).</summary>
public static class ManagedLoss
{
    /// <summary>
    /// The dense sigmoid loss of UNnormalised embeddings [n, d] and all its gradients: the L2
    /// normalisation (the reference's <see cref="L2Normalize"/>), then <see cref="SigmoidLossKernels.ForwardBackward"/>
    /// (slabs of logits, never the whole [n, n]), then the normalisation's backward. Allocates its outputs and
    /// the normalised copies ([n, d] each).
    /// </summary>
    public static ManagedLossResult<T> SigmoidDense<T>(T[] image, T[] text, int n, int d, double logitScale, double logitBias, double normEpsilon, int threads)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(text);
        if (image.Length < n * d || text.Length < n * d)
            throw new ArgumentException($"ManagedLoss: the embeddings hold {image.Length} and {text.Length} values; [{n}, {d}] needs {n * d} each.");
        T epsilon = T.CreateChecked(normEpsilon);
        var imageNormed = new T[n * d];   // [n, d]
        var textNormed = new T[n * d];    // [n, d]
        var imageNorms = new T[n];        // [n]
        var textNorms = new T[n];         // [n]
        L2Normalize.Forward(imageNormed, imageNorms, image, n, d, epsilon);
        L2Normalize.Forward(textNormed, textNorms, text, n, d, epsilon);
        var dImageNormed = new T[n * d];
        var dTextNormed = new T[n * d];
        var value = SigmoidLossKernels.ForwardBackward(dImageNormed, dTextNormed, imageNormed, textNormed, n, d, logitScale, logitBias, threads);
        var dImage = new T[n * d];
        var dText = new T[n * d];
        L2Normalize.Backward(dImage, dImageNormed, imageNormed, imageNorms, n, d);
        L2Normalize.Backward(dText, dTextNormed, textNormed, textNorms, n, d);
        return new ManagedLossResult<T>(value.Loss, dImage, dText, value.DLogitScale, value.DLogitBias);
    }
}
