using SigLip.Reference.Layers;
using SigLip.Backends.Managed.Kernels;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Kernels;

/// <summary>
/// The all-fast encoder layer (used by `siglip bench`) equals the model's readable EncoderLayer in
/// float64, forward and backward, within the fast-path tolerance (atol grown with the sum lengths).
/// Sizes are odd on purpose: width 15 with 3 heads of 5, 7 tokens, MLP 22.
/// </summary>
public sealed class FastEncoderLayerTests
{
    [Theory]
    [InlineData(2, 7, 15, 3, 22, 1)]
    [InlineData(1, 1, 8, 1, 8, 2)]
    [InlineData(3, 17, 12, 4, 33, 3)]
    public void Equals_the_readable_layer_in_float64(int batch, int tokens, int width, int heads, int intermediate, int seed)
    {
        var rng = new Random(seed);
        int rows = batch * tokens;
        double[] U(int n, double s = 0.5) => TestData.Uniform(rng, n, s);
        var a = new EncoderLayerArrays<double>(
            U(width, 1).Select(v => 1 + v).ToArray(), U(width), U(width * width), U(width), U(width * width), U(width),
            U(width * width), U(width), U(width * width), U(width), U(width, 1).Select(v => 1 + v).ToArray(), U(width),
            U(intermediate * width), U(intermediate), U(width * intermediate), U(width));
        var reference = new EncoderLayerWeights(
            new NormWeights(a.Norm1Weight, a.Norm1Bias),
            new AttentionWeights(a.QueryWeight, a.QueryBias, a.KeyWeight, a.KeyBias, a.ValueWeight, a.ValueBias, a.OutWeight, a.OutBias),
            new NormWeights(a.Norm2Weight, a.Norm2Bias),
            new MlpWeights(a.Fc1Weight, a.Fc1Bias, a.Fc2Weight, a.Fc2Bias));
        var x = U(rows * width, 2);
        var dy = U(rows * width, 1);

        var saved = new EncoderLayerSaved(batch, tokens, width, heads, intermediate);
        EncoderLayer.Forward(saved, x, reference, batch, tokens, width, heads, intermediate, 1e-6);
        var grads = new EncoderLayerWeights(new NormWeights(new double[width], new double[width]), AttentionWeights.Zeros(width),
            new NormWeights(new double[width], new double[width]), MlpWeights.Zeros(width, intermediate));
        var dxRef = new double[rows * width];
        EncoderLayer.Backward(dxRef, grads, dy, saved, x, reference, batch, tokens, width, heads, intermediate);

        var fast = new FastEncoderLayer<double>(a, batch, tokens, width, heads, intermediate, 1e-6);
        var y = fast.Forward(x);
        var dx = new double[rows * width];
        fast.Backward(dy, x, dx);

        var tol = new SigLip.Reference.Numerics.Tolerance(KernelTolerances.Float64.Atol * Math.Max(1, Math.Max(rows, intermediate) / 16.0), KernelTolerances.Float64.Rtol);
        AssertClose.Array(y, saved.Output, tol, "layer output");
        AssertClose.Array(dx, dxRef, tol, "layer dx");
        AssertClose.Array(fast.Gradients.QueryWeight, grads.Attention.QueryWeight, tol, "dWq");
        AssertClose.Array(fast.Gradients.KeyBias, grads.Attention.KeyBias, tol, "dbk");
        AssertClose.Array(fast.Gradients.OutWeight, grads.Attention.OutWeight, tol, "dWo");
        AssertClose.Array(fast.Gradients.Norm1Weight, grads.Norm1.Weight, tol, "dLN1 weight");
        AssertClose.Array(fast.Gradients.Norm2Bias, grads.Norm2.Bias, tol, "dLN2 bias");
        AssertClose.Array(fast.Gradients.Fc1Weight, grads.Mlp.Fc1Weight, tol, "dfc1");
        AssertClose.Array(fast.Gradients.Fc2Bias, grads.Mlp.Fc2Bias, tol, "dfc2 bias");
    }
}
