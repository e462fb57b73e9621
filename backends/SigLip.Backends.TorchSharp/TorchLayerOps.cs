using SigLip.Reference.Backends;
using SigLip.Reference.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SigLip.Backends.TorchSharp;

/// <summary>
/// The reference's primitive operations (<see cref="ILayerOps"/>) computed by libtorch on the CPU in
/// float64, one op at a time: forwards by torch's functional ops (linear, layer_norm, gelu(tanh),
/// softmax attention), backwards by autograd through that single op. It exists so that the layer
/// tests, written once against <see cref="ILayerOps"/>, run on libtorch as well as on the reference
/// loops and the managed kernels; it is not how the torch backend trains (that is
/// <see cref="TorchSiglipModel"/>, with its own modules).
/// </summary>
/// <remarks>
/// Follows the contract exactly: forward outputs overwritten, gradients accumulated (+=), null meaning
/// "not wanted", LayerNorm's forward saves mean and rstd per row, attention's forward saves the
/// probabilities, and the backwards use what was saved (values replaced, derivatives from autograd,
/// see <see cref="Saved"/>). Slow (a libtorch round trip per call): for tests. Call
/// <see cref="LibTorchRuntime.CpuProblem"/> first; this class assumes libtorch starts.
/// </remarks>
public sealed class TorchLayerOps : ILayerOps
{
    private TorchLayerOps() { }

    /// <summary>The one instance (it holds no state). libtorch must be able to start (see <see cref="LibTorchRuntime.CpuProblem"/>).</summary>
    public static TorchLayerOps Instance { get; } = new();

    private static readonly TorchBackend LossBackend = new(TorchBackends.CpuName, CPU, Precision.Float64);

    /// <inheritdoc/>
    public string Name => "libtorch functional ops and autograd, cpu, float64";

    /// <summary>A float64 CPU tensor of the first count of <paramref name="data"/>'s values, in this shape.</summary>
    private static Tensor In(double[] data, params long[] shape)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (data.Length < count) throw new ArgumentException($"buffer of {data.Length} elements, shape [{string.Join(", ", shape)}] needs {count}");
        return tensor(data.AsSpan(0, checked((int)count)).ToArray(), shape, ScalarType.Float64);
    }

    /// <summary>A leaf that autograd differentiates when <paramref name="wanted"/>.</summary>
    private static Tensor Leaf(double[] data, bool wanted, params long[] shape) => In(data, shape).requires_grad_(wanted);

    /// <summary>Overwrites the first elements of <paramref name="target"/> with <paramref name="t"/>'s values.</summary>
    private static void Store(double[] target, Tensor t)
    {
        using var c = t.detach().contiguous();
        c.data<double>().ToArray().CopyTo(target, 0);
    }

    /// <summary>Adds the leaf's gradient into <paramref name="target"/> (nothing when the gradient is not wanted).</summary>
    private static void Accumulate(double[]? target, Tensor leaf)
    {
        if (target is null) return;
        if (leaf.grad is not { } g) throw new InvalidOperationException("autograd gave no gradient for a wanted input");
        var values = g.contiguous().data<double>().ToArray();
        for (int i = 0; i < values.Length; i++) target[i] += values[i];
    }

    /// <summary>Runs backward of L = sum(output * doutput), so each leaf's grad is doutput's pullback.</summary>
    private static void Backward(Tensor output, double[] doutput)
    {
        var upstream = In(doutput, output.shape);
        output.mul(upstream).sum().backward();
    }

    /// <summary>
    /// A tensor whose value is exactly <paramref name="saved"/> (what forward stored) and whose
    /// derivative is that of <paramref name="recomputed"/>: saved + (r - r.detach()), where r - r.detach()
    /// is exactly 0 in value. So a backward uses the saved statistics as the contract says while
    /// autograd differentiates the recomputed expression.
    /// </summary>
    private static Tensor Saved(Tensor saved, Tensor recomputed) => saved + (recomputed - recomputed.detach());

    /// <inheritdoc/>
    public void LinearForward(double[] output, double[] input, double[] weight, double[]? bias, int rows, int inFeatures, int outFeatures)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var y = nn.functional.linear(In(input, rows, inFeatures), In(weight, outFeatures, inFeatures), bias is null ? null : In(bias, outFeatures));
        Store(output, y);
    }

    /// <inheritdoc/>
    public void LinearBackward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, int rows, int inFeatures, int outFeatures)
    {
        if (dinput is null && dweight is null && dbias is null) return;
        using var scope = NewDisposeScope();
        var x = Leaf(input, dinput is not null, rows, inFeatures);
        var w = Leaf(weight, dweight is not null, outFeatures, inFeatures);
        // The bias does not change the input and weight gradients: a zero bias stands in when only they are wanted.
        var b = dbias is null ? null : Leaf(new double[outFeatures], true, outFeatures);
        Backward(nn.functional.linear(x, w, b), doutput);
        Accumulate(dinput, x);
        Accumulate(dweight, w);
        if (b is not null) Accumulate(dbias, b);
    }

    /// <inheritdoc/>
    public void LayerNormForward(double[] output, double[] mean, double[] rstd, double[] input, double[] weight, double[] bias, int rows, int width, double epsilon)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = In(input, rows, width);
        Store(output, nn.functional.layer_norm(x, [width], In(weight, width), In(bias, width), epsilon));
        Store(mean, x.mean([1L]));
        Store(rstd, x.var(1L, unbiased: false).add(epsilon).rsqrt());
    }

    /// <inheritdoc/>
    public void LayerNormBackward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, double[] mean, double[] rstd, int rows, int width)
    {
        if (dinput is null && dweight is null && dbias is null) return;
        using var scope = NewDisposeScope();
        var x = Leaf(input, dinput is not null, rows, width);
        var w = Leaf(weight, dweight is not null, width);
        var b = Leaf(new double[width], dbias is not null, width);
        var savedMean = In(mean, rows, 1);
        var savedRstd = In(rstd, rows, 1);
        // epsilon is not an argument of backward: rstd = (var + eps)^-1/2 is rebuilt from the saved value,
        // with its derivative d rstd / d var = -rstd^3 / 2 (which needs no epsilon) for autograd.
        var m = Saved(savedMean, x.mean([1L], keepdim: true));
        var variance = x.var(1L, unbiased: false, keepdim: true);
        var s = Saved(savedRstd, variance.mul(savedRstd.pow(3)).mul(-0.5));
        var y = (x - m).mul(s).mul(w).add(b);
        Backward(y, doutput);
        Accumulate(dinput, x);
        Accumulate(dweight, w);
        Accumulate(dbias, b);
    }

    /// <inheritdoc/>
    public void GeluForward(double[] output, double[] input, int count)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Store(output, nn.functional.gelu(In(input, count), GELU.Approximate.tanh));
    }

    /// <inheritdoc/>
    public void GeluBackward(double[] dinput, double[] doutput, double[] input, int count)
    {
        using var scope = NewDisposeScope();
        var x = Leaf(input, true, count);
        Backward(nn.functional.gelu(x, GELU.Approximate.tanh), doutput);
        Accumulate(dinput, x);
    }

    /// <summary>[B, N, NH * D] -> [B, NH, N, D]: head h owns columns [h D, (h + 1) D), as in HF's view(B, N, NH, D).</summary>
    private static Tensor Heads(Tensor t, int batch, int tokens, int heads, int headDim) =>
        t.view(batch, tokens, heads, headDim).transpose(1, 2);

    /// <summary>softmax(q k^T / sqrt D) per batch and head: [B, NH, Nq, Nk].</summary>
    private static Tensor Probabilities(Tensor q, Tensor k, int headDim) =>
        q.matmul(k.transpose(2, 3)).mul(1.0 / Math.Sqrt(headDim)).softmax(-1);

    /// <summary>probs v with the heads concatenated again: [B, Nq, NH * D].</summary>
    private static Tensor Context(Tensor probs, Tensor v, int batch, int queryTokens, int heads, int headDim) =>
        probs.matmul(v).transpose(1, 2).reshape(batch, queryTokens, heads * headDim);

    /// <inheritdoc/>
    public void AttentionForward(double[] output, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim)
    {
        CheckHeads(heads, headDim);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int width = heads * headDim;
        var q = Heads(In(query, batch, queryTokens, width), batch, queryTokens, heads, headDim);
        var k = Heads(In(key, batch, keyTokens, width), batch, keyTokens, heads, headDim);
        var v = Heads(In(value, batch, keyTokens, width), batch, keyTokens, heads, headDim);
        var p = Probabilities(q, k, headDim);
        Store(probs, p);
        Store(output, Context(p, v, batch, queryTokens, heads, headDim));
    }

    /// <inheritdoc/>
    public void AttentionBackward(double[]? dquery, double[]? dkey, double[]? dvalue, double[] doutput, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim)
    {
        CheckHeads(heads, headDim);
        if (dquery is null && dkey is null && dvalue is null) return;
        using var scope = NewDisposeScope();
        int width = heads * headDim;
        var ql = Leaf(query, dquery is not null, batch, queryTokens, width);
        var kl = Leaf(key, dkey is not null, batch, keyTokens, width);
        var vl = Leaf(value, dvalue is not null, batch, keyTokens, width);
        var q = Heads(ql, batch, queryTokens, heads, headDim);
        var k = Heads(kl, batch, keyTokens, heads, headDim);
        var v = Heads(vl, batch, keyTokens, heads, headDim);
        var p = Saved(In(probs, batch, heads, queryTokens, keyTokens), Probabilities(q, k, headDim));
        Backward(Context(p, v, batch, queryTokens, heads, headDim), doutput);
        Accumulate(dquery, ql);
        Accumulate(dkey, kl);
        Accumulate(dvalue, vl);
    }

    private static void CheckHeads(int heads, int headDim)
    {
        if (heads < 1 || headDim < 1) throw new ArgumentException($"attention needs at least one head of width at least 1 (heads {heads}, head width {headDim}).");
    }

    /// <inheritdoc/>
    public LossResult PairwiseLoss(HostTensor imageEmbeds, HostTensor textEmbeds, double logitScale, double logitBias, LossOptions options) =>
        // The torch backend's loss (autograd through the normalisation and the pairwise loss), in float64;
        // no logits, as the reference's operation returns none.
        LossBackend.Loss(imageEmbeds, textEmbeds, logitScale, logitBias, options) with { LogitsPerImage = null };
}
