using SigLip.Reference.Backends;
using SigLip.Reference.Loss;

namespace SigLip.Reference.Layers;

/// <summary>
/// The primitive operations that the composite layers (self-attention, MLP, encoder layer, MAP head,
/// patch embedding), the two towers and the model are built from. The towers and the model are
/// written once, in this assembly; a backend that reuses them (the <c>managed</c> backend) plugs in
/// its own operations by passing an implementation when it creates the model. Nothing global
/// chooses them: <see cref="ReferenceOps"/> is what runs unless an object says otherwise.
/// </summary>
/// <remarks>
/// Every method has the contract of the reference layer of the same name (<see cref="Linear"/>,
/// <see cref="LayerNorm"/>, <see cref="Gelu"/>, <see cref="Attention"/>, <see cref="Loss.PairwiseLoss"/>):
/// the same argument order, forward outputs overwritten, gradients accumulated (+=), null meaning
/// "not wanted". Storage is float64 arrays; an implementation may compute in another dtype and
/// says so in <see cref="Name"/>.
/// </remarks>
public interface ILayerOps
{
    /// <summary>What computes, in words (e.g. "reference loops, float64").</summary>
    string Name { get; }

    /// <summary>As <see cref="Linear.Forward"/>: output[r, o] = bias[o] + sum_i input[r, i] * weight[o, i].</summary>
    void LinearForward(double[] output, double[] input, double[] weight, double[]? bias, int rows, int inFeatures, int outFeatures);

    /// <summary>As <see cref="Linear.Backward"/> (accumulates).</summary>
    void LinearBackward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, int rows, int inFeatures, int outFeatures);

    /// <summary>As <see cref="LayerNorm.Forward"/>.</summary>
    void LayerNormForward(double[] output, double[] mean, double[] rstd, double[] input, double[] weight, double[] bias, int rows, int width, double epsilon);

    /// <summary>As <see cref="LayerNorm.Backward"/> (accumulates).</summary>
    void LayerNormBackward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, double[] mean, double[] rstd, int rows, int width);

    /// <summary>As <see cref="Gelu.Forward"/> (tanh form).</summary>
    void GeluForward(double[] output, double[] input, int count);

    /// <summary>As <see cref="Gelu.Backward"/> (accumulates).</summary>
    void GeluBackward(double[] dinput, double[] doutput, double[] input, int count);

    /// <summary>As <see cref="Attention.Forward"/>.</summary>
    void AttentionForward(double[] output, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim);

    /// <summary>As <see cref="Attention.Backward"/> (accumulates).</summary>
    void AttentionBackward(double[]? dquery, double[]? dkey, double[]? dvalue, double[] doutput, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim);

    /// <summary>As <see cref="Loss.PairwiseLoss.Compute(Tensor, Tensor, double, double, LossOptions?, bool)"/>: the loss of unnormalised embeddings and its gradients.</summary>
    LossResult PairwiseLoss(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions options);
}

/// <summary>The specification's operations: each method calls the readable float64 loop of the layer it is named after.</summary>
public sealed class ReferenceOps : ILayerOps
{
    private ReferenceOps() { }

    /// <summary>The one instance (it holds no state).</summary>
    public static ReferenceOps Instance { get; } = new();

    /// <inheritdoc/>
    public string Name => "reference loops, float64";

    /// <inheritdoc/>
    public void LinearForward(double[] output, double[] input, double[] weight, double[]? bias, int rows, int inFeatures, int outFeatures) =>
        Linear.Forward(output, input, weight, bias, rows, inFeatures, outFeatures);

    /// <inheritdoc/>
    public void LinearBackward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, int rows, int inFeatures, int outFeatures) =>
        Linear.Backward(dinput, dweight, dbias, doutput, input, weight, rows, inFeatures, outFeatures);

    /// <inheritdoc/>
    public void LayerNormForward(double[] output, double[] mean, double[] rstd, double[] input, double[] weight, double[] bias, int rows, int width, double epsilon) =>
        LayerNorm.Forward(output, mean, rstd, input, weight, bias, rows, width, epsilon);

    /// <inheritdoc/>
    public void LayerNormBackward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, double[] mean, double[] rstd, int rows, int width) =>
        LayerNorm.Backward(dinput, dweight, dbias, doutput, input, weight, mean, rstd, rows, width);

    /// <inheritdoc/>
    public void GeluForward(double[] output, double[] input, int count) => Gelu.Forward(output, input, count);

    /// <inheritdoc/>
    public void GeluBackward(double[] dinput, double[] doutput, double[] input, int count) => Gelu.Backward(dinput, doutput, input, count);

    /// <inheritdoc/>
    public void AttentionForward(double[] output, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim) =>
        Attention.Forward(output, probs, query, key, value, batch, queryTokens, keyTokens, heads, headDim);

    /// <inheritdoc/>
    public void AttentionBackward(double[]? dquery, double[]? dkey, double[]? dvalue, double[] doutput, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim) =>
        Attention.Backward(dquery, dkey, dvalue, doutput, probs, query, key, value, batch, queryTokens, keyTokens, heads, headDim);

    /// <inheritdoc/>
    public LossResult PairwiseLoss(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions options) =>
        Loss.PairwiseLoss.Compute(imageEmbeds, textEmbeds, logitScale, logitBias, options);
}
