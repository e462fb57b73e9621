namespace SigLip.Reference.Layers;

// The MAP head (multihead attention pooling), HF SiglipMultiheadAttentionPoolingHead:
//   q  = probe Wq^T + bq            (one learned query, shared by every image)
//   k  = x Wk^T + bk;  v = x Wv^T + bv     [Wq; Wk; Wv] = in_proj_weight [3H, H], same for bias
//   a  = Attention(q, k, v) Wo^T + bo      (nn.MultiheadAttention, batch_first)
//   y  = a + Mlp(LayerNorm(a))             output: y[:, 0]
// Dimensions: B = batch, N = tokens, H = width, NH = heads, I = MLP width.

/// <summary>The MAP head's weights (HF names under <c>vision_model.head.</c>).</summary>
/// <param name="Probe">[1, 1, H] the learned query (head.probe).</param>
/// <param name="InProjWeight">[3H, H] query, key and value projections stacked (head.attention.in_proj_weight).</param>
/// <param name="InProjBias">[3H] their biases.</param>
/// <param name="OutWeight">[H, H] head.attention.out_proj.weight.</param>
/// <param name="OutBias">[H] head.attention.out_proj.bias.</param>
/// <param name="Norm">head.layernorm.</param>
/// <param name="Mlp">head.mlp.</param>
public sealed record MapHeadWeights(
    double[] Probe,        // [1, 1, H]
    double[] InProjWeight, // [3H, H] rows: q, then k, then v
    double[] InProjBias,   // [3H]
    double[] OutWeight,    // [H, H]
    double[] OutBias,      // [H]
    NormWeights Norm,      // [H], [H]
    MlpWeights Mlp)
{
    /// <summary>The head's arrays from named tensors (not copied), e.g. prefix "vision_model.head"; a missing name throws.</summary>
    public static MapHeadWeights From(IReadOnlyDictionary<string, Tensor> tensors, string prefix)
    {
        double[] Get(string name) => tensors.TryGetValue($"{prefix}.{name}", out var t)
            ? t.Data
            : throw new ArgumentException($"Missing parameter '{prefix}.{name}'.");
        return new MapHeadWeights(
            Get("probe"), Get("attention.in_proj_weight"), Get("attention.in_proj_bias"),
            Get("attention.out_proj.weight"), Get("attention.out_proj.bias"),
            new NormWeights(Get("layernorm.weight"), Get("layernorm.bias")),
            new MlpWeights(Get("mlp.fc1.weight"), Get("mlp.fc1.bias"), Get("mlp.fc2.weight"), Get("mlp.fc2.bias")));
    }
}

/// <summary>What the MAP head's forward keeps for its backward.</summary>
public sealed class MapHeadSaved(int batch, int tokens, int width, int heads, int intermediate)
{
    /// <summary>[B, 1, H] the projected probe, repeated per image</summary>
    public double[] Query { get; } = new double[batch * width];               // [B, 1, H] the projected probe, repeated per image
    /// <summary>[B, N, H] the tokens' keys.</summary>
    public double[] Key { get; } = new double[batch * tokens * width];        // [B, N, H]
    /// <summary>[B, N, H] the tokens' values.</summary>
    public double[] Value { get; } = new double[batch * tokens * width];      // [B, N, H]
    /// <summary>[B, NH, 1, N] the probe's attention weights over the tokens, per head.</summary>
    public double[] Probs { get; } = new double[batch * heads * tokens];      // [B, NH, 1, N]
    /// <summary>[B, 1, H] before out_proj</summary>
    public double[] Context { get; } = new double[batch * width];             // [B, 1, H] before out_proj
    /// <summary>[B, 1, H] a, the residual</summary>
    public double[] Attended { get; } = new double[batch * width];            // [B, 1, H] a, the residual
    /// <summary>[B, 1, H] LayerNorm(a)</summary>
    public double[] NormOut { get; } = new double[batch * width];             // [B, 1, H] LayerNorm(a)
    /// <summary>[B] the LayerNorm's mean of each image.</summary>
    public double[] NormMean { get; } = new double[batch];                    // [B]
    /// <summary>[B] the LayerNorm's 1 / sqrt(variance + eps) of each image.</summary>
    public double[] NormRstd { get; } = new double[batch];                    // [B]
    /// <summary>What the head's MLP saved.</summary>
    public MlpSaved Mlp { get; } = new(batch, intermediate);
    /// <summary>[B, 1, H] Mlp(LayerNorm(a)).</summary>
    public double[] MlpOut { get; } = new double[batch * width];              // [B, 1, H]
}

/// <summary>Attention pooling with a learned probe, then a LayerNorm + MLP residual.</summary>
public static class MapHead
{
    /// <param name="output">[B, H], overwritten: y[:, 0].</param>
    /// <param name="input">[B, N, H], the post-LayerNorm tokens.</param>
    public static void Forward(double[] output, MapHeadSaved saved, double[] input, MapHeadWeights weights, int batch, int tokens, int width, int heads, int intermediate, double epsilon, ILayerOps? ops = null)
    {
        ops ??= ReferenceOps.Instance;
        int headDim = Attention.HeadDim("MapHead.Forward", width, heads);
        var (wq, wk, wv) = SplitRows(weights.InProjWeight, width * width);
        var (bq, bk, bv) = SplitRows(weights.InProjBias, width);
        var probeQuery = new double[width]; // [1, H]
        ops.LinearForward(probeQuery, weights.Probe, wq, bq, 1, width, width);
        for (int b = 0; b < batch; b++) Array.Copy(probeQuery, 0, saved.Query, b * width, width);
        ops.LinearForward(saved.Key, input, wk, bk, batch * tokens, width, width);
        ops.LinearForward(saved.Value, input, wv, bv, batch * tokens, width, width);
        ops.AttentionForward(saved.Context, saved.Probs, saved.Query, saved.Key, saved.Value, batch, 1, tokens, heads, headDim);
        ops.LinearForward(saved.Attended, saved.Context, weights.OutWeight, weights.OutBias, batch, width, width);
        ops.LayerNormForward(saved.NormOut, saved.NormMean, saved.NormRstd, saved.Attended, weights.Norm.Weight, weights.Norm.Bias, batch, width, epsilon);
        Mlp.Forward(saved.MlpOut, saved.Mlp, saved.NormOut, weights.Mlp, batch, width, intermediate, ops);
        for (int i = 0; i < batch * width; i++) output[i] = saved.Attended[i] + saved.MlpOut[i];
    }

    // forward: q = probe Wq^T + bq;  a = Attn(q, x Wk^T + bk, x Wv^T + bv) Wo^T + bo;  y = a + mlp(LN a)
    // backward: da = dy + LN'(mlp'(dy)); out_proj and the core give dq, dk, dv;
    //   dprobe = (sum_b dq_b) Wq (the probe is shared by the batch); dx from the k and v projections;
    //   the q, k, v weight gradients land in their thirds of in_proj_weight / in_proj_bias.
    /// <param name="dinput">[B, N, H] accumulated, or null.</param>
    /// <param name="grads">gradient accumulators (+=).</param>
    /// <param name="doutput">[B, H].</param>
    /// <param name="input">[B, N, H], the forward input.</param>
    public static void Backward(double[]? dinput, MapHeadWeights grads, double[] doutput, MapHeadSaved saved, double[] input, MapHeadWeights weights, int batch, int tokens, int width, int heads, int intermediate, ILayerOps? ops = null) =>
        Backward(dinput, grads, doutput, saved, input, weights, batch, tokens, width, heads, intermediate, new double[batch * tokens * width], new double[batch * tokens * width], ops);

    /// <summary>As above, with caller-owned scratch dkey, dvalue (each [B, N, H]; cleared here, so they may be reused between steps).</summary>
    internal static void Backward(double[]? dinput, MapHeadWeights grads, double[] doutput, MapHeadSaved saved, double[] input, MapHeadWeights weights, int batch, int tokens, int width, int heads, int intermediate,
        double[] dkey, double[] dvalue, ILayerOps? ops = null)
    {
        ops ??= ReferenceOps.Instance;
        int headDim = Attention.HeadDim("MapHead.Backward", width, heads);
        var dnorm = new double[batch * width];                  // [B, H]
        var dattended = (double[])doutput.Clone();              // [B, H] residual path
        Mlp.Backward(dnorm, grads.Mlp, doutput, saved.Mlp, saved.NormOut, weights.Mlp, batch, width, intermediate, ops);
        ops.LayerNormBackward(dattended, grads.Norm.Weight, grads.Norm.Bias, dnorm, saved.Attended, weights.Norm.Weight, saved.NormMean, saved.NormRstd, batch, width);

        var dcontext = new double[batch * width];               // [B, H]
        ops.LinearBackward(dcontext, grads.OutWeight, grads.OutBias, dattended, saved.Context, weights.OutWeight, batch, width, width);
        var dquery = new double[batch * width];                 // [B, 1, H]
        Array.Clear(dkey, 0, batch * tokens * width);           // [B, N, H]
        Array.Clear(dvalue, 0, batch * tokens * width);         // [B, N, H]
        ops.AttentionBackward(dquery, dkey, dvalue, dcontext, saved.Probs, saved.Query, saved.Key, saved.Value, batch, 1, tokens, heads, headDim);

        var (wq, wk, wv) = SplitRows(weights.InProjWeight, width * width);
        var dwq = new double[width * width]; var dwk = new double[width * width]; var dwv = new double[width * width]; // [H, H] each
        var dbq = new double[width]; var dbk = new double[width]; var dbv = new double[width];                         // [H] each
        var dprobeQuery = new double[width];                    // [1, H] sum over the batch of dq
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < width; h++) dprobeQuery[h] += dquery[b * width + h];
        ops.LinearBackward(grads.Probe, dwq, dbq, dprobeQuery, weights.Probe, wq, 1, width, width);
        ops.LinearBackward(dinput, dwk, dbk, dkey, input, wk, batch * tokens, width, width);
        ops.LinearBackward(dinput, dwv, dbv, dvalue, input, wv, batch * tokens, width, width);
        AddRows(grads.InProjWeight, dwq, dwk, dwv);
        AddRows(grads.InProjBias, dbq, dbk, dbv);
    }

    /// <summary>The three equal consecutive blocks (q, k, v) of a fused array, copied.</summary>
    private static (double[] Q, double[] K, double[] V) SplitRows(double[] fused, int block) =>
        (fused[..block], fused[block..(2 * block)], fused[(2 * block)..(3 * block)]);

    private static void AddRows(double[] fused, double[] q, double[] k, double[] v)
    {
        int block = q.Length;
        for (int i = 0; i < block; i++)
        {
            fused[i] += q[i];
            fused[block + i] += k[i];
            fused[2 * block + i] += v[i];
        }
    }
}
