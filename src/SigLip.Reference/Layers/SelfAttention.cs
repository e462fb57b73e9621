namespace SigLip.Reference.Layers;

// Multi-head self-attention as HF's SiglipAttention: separate q, k, v projections, the attention
// core, then out_proj. No mask.
//   q = x Wq^T + bq;  k = x Wk^T + bk;  v = x Wv^T + bv
//   ctx = Attention(q, k, v);  y = ctx Wo^T + bo
// Dimensions: B = batch, N = tokens, H = width, NH = heads, D = H / NH.

/// <summary>The four projections of an attention block, each weight [H, H] and bias [H] (HF q_proj, k_proj, v_proj, out_proj).</summary>
/// <param name="QueryWeight">[H, H] q_proj.weight.</param>
/// <param name="QueryBias">[H] q_proj.bias.</param>
/// <param name="KeyWeight">[H, H] k_proj.weight.</param>
/// <param name="KeyBias">[H] k_proj.bias.</param>
/// <param name="ValueWeight">[H, H] v_proj.weight.</param>
/// <param name="ValueBias">[H] v_proj.bias.</param>
/// <param name="OutWeight">[H, H] out_proj.weight.</param>
/// <param name="OutBias">[H] out_proj.bias.</param>
public sealed record AttentionWeights(
    double[] QueryWeight, double[] QueryBias,
    double[] KeyWeight, double[] KeyBias,
    double[] ValueWeight, double[] ValueBias,
    double[] OutWeight, double[] OutBias)
{
    /// <summary>Zero-filled weights for a width (used as gradient accumulators).</summary>
    public static AttentionWeights Zeros(int width) => new(
        new double[width * width], new double[width], new double[width * width], new double[width],
        new double[width * width], new double[width], new double[width * width], new double[width]);
}

/// <summary>What self-attention's forward keeps for its backward.</summary>
public sealed class SelfAttentionSaved(int batch, int tokens, int width, int heads)
{
    /// <summary>[B, N, H] queries (all heads side by side).</summary>
    public double[] Query { get; } = new double[batch * tokens * width];            // [B, N, H]
    /// <summary>[B, N, H] keys.</summary>
    public double[] Key { get; } = new double[batch * tokens * width];              // [B, N, H]
    /// <summary>[B, N, H] values.</summary>
    public double[] Value { get; } = new double[batch * tokens * width];            // [B, N, H]
    /// <summary>[B, NH, N, N] softmax attention weights, row = query token.</summary>
    public double[] Probs { get; } = new double[batch * heads * tokens * tokens];   // [B, NH, N, N]
    /// <summary>[B, N, H] before out_proj</summary>
    public double[] Context { get; } = new double[batch * tokens * width];          // [B, N, H] before out_proj
}

/// <summary>HF SiglipAttention: q/k/v projections, unmasked multi-head attention, output projection.</summary>
public static class SelfAttention
{
    /// <param name="output">[B, N, H], overwritten.</param>
    /// <param name="saved">buffers for backward, sized (B, N, H, NH).</param>
    /// <param name="input">[B, N, H].</param>
    public static void Forward(double[] output, SelfAttentionSaved saved, double[] input, AttentionWeights weights, int batch, int tokens, int width, int heads, ILayerOps? ops = null)
    {
        ops ??= ReferenceOps.Instance;
        int headDim = Attention.HeadDim("SelfAttention.Forward", width, heads);
        int rows = batch * tokens;
        ops.LinearForward(saved.Query, input, weights.QueryWeight, weights.QueryBias, rows, width, width);
        ops.LinearForward(saved.Key, input, weights.KeyWeight, weights.KeyBias, rows, width, width);
        ops.LinearForward(saved.Value, input, weights.ValueWeight, weights.ValueBias, rows, width, width);
        ops.AttentionForward(saved.Context, saved.Probs, saved.Query, saved.Key, saved.Value, batch, tokens, tokens, heads, headDim);
        ops.LinearForward(output, saved.Context, weights.OutWeight, weights.OutBias, rows, width, width);
    }

    // forward: y = Attention(x Wq^T + bq, x Wk^T + bk, x Wv^T + bv) Wo^T + bo
    // backward: out_proj's Linear backward gives dctx; the core gives dq, dk, dv; each projection's
    // Linear backward adds its share to dx (x feeds all three).
    /// <param name="dinput">[B, N, H] accumulated, or null.</param>
    /// <param name="grads">gradient accumulators (+=).</param>
    /// <param name="doutput">[B, N, H].</param>
    public static void Backward(double[]? dinput, AttentionWeights grads, double[] doutput, SelfAttentionSaved saved, double[] input, AttentionWeights weights, int batch, int tokens, int width, int heads, ILayerOps? ops = null)
    {
        ops ??= ReferenceOps.Instance;
        int rows = batch * tokens;
        Backward(dinput, grads, doutput, saved, input, weights, batch, tokens, width, heads,
            new double[rows * width], new double[rows * width], new double[rows * width], new double[rows * width], ops);
    }

    /// <summary>As above, with caller-owned scratch (each [B, N, H]; cleared here, so it may be reused between steps).</summary>
    internal static void Backward(double[]? dinput, AttentionWeights grads, double[] doutput, SelfAttentionSaved saved, double[] input, AttentionWeights weights, int batch, int tokens, int width, int heads,
        double[] dcontext, double[] dquery, double[] dkey, double[] dvalue, ILayerOps? ops = null)
    {
        ops ??= ReferenceOps.Instance;
        int headDim = Attention.HeadDim("SelfAttention.Backward", width, heads);
        int rows = batch * tokens;
        Array.Clear(dcontext, 0, rows * width);
        Array.Clear(dquery, 0, rows * width);
        Array.Clear(dkey, 0, rows * width);
        Array.Clear(dvalue, 0, rows * width);
        ops.LinearBackward(dcontext, grads.OutWeight, grads.OutBias, doutput, saved.Context, weights.OutWeight, rows, width, width);
        ops.AttentionBackward(dquery, dkey, dvalue, dcontext, saved.Probs, saved.Query, saved.Key, saved.Value, batch, tokens, tokens, heads, headDim);
        ops.LinearBackward(dinput, grads.QueryWeight, grads.QueryBias, dquery, input, weights.QueryWeight, rows, width, width);
        ops.LinearBackward(dinput, grads.KeyWeight, grads.KeyBias, dkey, input, weights.KeyWeight, rows, width, width);
        ops.LinearBackward(dinput, grads.ValueWeight, grads.ValueBias, dvalue, input, weights.ValueWeight, rows, width, width);
    }
}
