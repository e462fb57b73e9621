namespace SigLip.Reference.Layers;

// One pre-LN transformer layer, as HF's SiglipEncoderLayer:
//   r = x + SelfAttention(LayerNorm1(x))
//   y = r + Mlp(LayerNorm2(r))
// Dimensions: B = batch, N = tokens, H = width, NH = heads, I = MLP width, R = B*N rows.

/// <summary>One encoder layer's weights (HF names under <c>...encoder.layers.{i}.</c>).</summary>
/// <param name="Norm1">layer_norm1, before attention.</param>
/// <param name="Attention">self_attn's four projections.</param>
/// <param name="Norm2">layer_norm2, before the MLP.</param>
/// <param name="Mlp">mlp.fc1 and mlp.fc2.</param>
public sealed record EncoderLayerWeights(NormWeights Norm1, AttentionWeights Attention, NormWeights Norm2, MlpWeights Mlp)
{
    /// <summary>
    /// The layer's arrays from named tensors (not copied: the layer reads and writes these arrays),
    /// e.g. prefix "vision_model.encoder.layers.0".
    /// </summary>
    public static EncoderLayerWeights From(IReadOnlyDictionary<string, Tensor> tensors, string prefix)
    {
        double[] Get(string name) => tensors.TryGetValue($"{prefix}.{name}", out var t)
            ? t.Data
            : throw new ArgumentException($"Missing parameter '{prefix}.{name}'.");
        return new EncoderLayerWeights(
            new NormWeights(Get("layer_norm1.weight"), Get("layer_norm1.bias")),
            new AttentionWeights(
                Get("self_attn.q_proj.weight"), Get("self_attn.q_proj.bias"),
                Get("self_attn.k_proj.weight"), Get("self_attn.k_proj.bias"),
                Get("self_attn.v_proj.weight"), Get("self_attn.v_proj.bias"),
                Get("self_attn.out_proj.weight"), Get("self_attn.out_proj.bias")),
            new NormWeights(Get("layer_norm2.weight"), Get("layer_norm2.bias")),
            new MlpWeights(Get("mlp.fc1.weight"), Get("mlp.fc1.bias"), Get("mlp.fc2.weight"), Get("mlp.fc2.bias")));
    }
}

/// <summary>What an encoder layer's forward keeps for its backward; <see cref="Output"/> is the layer's output.</summary>
public sealed class EncoderLayerSaved
{
    /// <summary>Buffers for one layer's forward on <paramref name="batch"/> x <paramref name="tokens"/> tokens.</summary>
    public EncoderLayerSaved(int batch, int tokens, int width, int heads, int intermediate)
    {
        int rows = batch * tokens;
        Norm1Out = new double[rows * width];
        Norm1Mean = new double[rows];
        Norm1Rstd = new double[rows];
        Attention = new SelfAttentionSaved(batch, tokens, width, heads);
        AttentionOut = new double[rows * width];
        Residual = new double[rows * width];
        Norm2Out = new double[rows * width];
        Norm2Mean = new double[rows];
        Norm2Rstd = new double[rows];
        Mlp = new MlpSaved(rows, intermediate);
        MlpOut = new double[rows * width];
        Output = new double[rows * width];
    }

    /// <summary>[R, H] LayerNorm1(x)</summary>
    public double[] Norm1Out { get; }            // [R, H] LayerNorm1(x)
    /// <summary>[R] LayerNorm1's mean of each row.</summary>
    public double[] Norm1Mean { get; }           // [R]
    /// <summary>[R] LayerNorm1's 1 / sqrt(variance + eps) of each row.</summary>
    public double[] Norm1Rstd { get; }           // [R]
    /// <summary>What self-attention saved.</summary>
    public SelfAttentionSaved Attention { get; }
    /// <summary>[R, H] SelfAttention(LayerNorm1(x))</summary>
    public double[] AttentionOut { get; }        // [R, H] SelfAttention(LayerNorm1(x))
    /// <summary>[R, H] r = x + AttentionOut</summary>
    public double[] Residual { get; }            // [R, H] r = x + AttentionOut
    /// <summary>[R, H] LayerNorm2(r)</summary>
    public double[] Norm2Out { get; }            // [R, H] LayerNorm2(r)
    /// <summary>[R] LayerNorm2's mean of each row.</summary>
    public double[] Norm2Mean { get; }           // [R]
    /// <summary>[R] LayerNorm2's 1 / sqrt(variance + eps) of each row.</summary>
    public double[] Norm2Rstd { get; }           // [R]
    /// <summary>What the MLP saved.</summary>
    public MlpSaved Mlp { get; }
    /// <summary>[R, H] Mlp(LayerNorm2(r))</summary>
    public double[] MlpOut { get; }              // [R, H] Mlp(LayerNorm2(r))
    /// <summary>[R, H] y = r + MlpOut</summary>
    public double[] Output { get; }              // [R, H] y = r + MlpOut
}

/// <summary>
/// An encoder layer's backward scratch (not saved state: overwritten by every backward), so a
/// training loop can reuse one set while (batch, tokens) are unchanged instead of allocating per step.
/// </summary>
public sealed class EncoderLayerScratch
{
    /// <summary>Scratch for a layer of these sizes, R = <paramref name="rows"/> (batch x tokens).</summary>
    public EncoderLayerScratch(int rows, int width, int intermediate)
    {
        Rows = rows; Width = width; Intermediate = intermediate;
        DNorm2 = new double[rows * width];
        DResidual = new double[rows * width];
        DNorm1 = new double[rows * width];
        DContext = new double[rows * width];
        DQuery = new double[rows * width];
        DKey = new double[rows * width];
        DValue = new double[rows * width];
        DActivated = new double[rows * intermediate];
        DHidden = new double[rows * intermediate];
    }

    /// <summary>R, the rows it was sized for.</summary>
    public int Rows { get; }
    /// <summary>H, the width it was sized for.</summary>
    public int Width { get; }
    /// <summary>I, the MLP width it was sized for.</summary>
    public int Intermediate { get; }
    /// <summary>[R, H] dL / d LayerNorm2(r).</summary>
    public double[] DNorm2 { get; }              // [R, H] d LayerNorm2(r)
    /// <summary>[R, H] dL / dr.</summary>
    public double[] DResidual { get; }           // [R, H] d r
    /// <summary>[R, H] dL / d LayerNorm1(x).</summary>
    public double[] DNorm1 { get; }              // [R, H] d LayerNorm1(x)
    /// <summary>[R, H] dL / d attention context (before out_proj).</summary>
    public double[] DContext { get; }            // [R, H] attention, before out_proj
    /// <summary>[R, H] dL / d queries.</summary>
    public double[] DQuery { get; }              // [R, H]
    /// <summary>[R, H] dL / d keys.</summary>
    public double[] DKey { get; }                // [R, H]
    /// <summary>[R, H] dL / d values.</summary>
    public double[] DValue { get; }              // [R, H]
    /// <summary>[R, I] dL / d MLP activations (after GELU).</summary>
    public double[] DActivated { get; }          // [R, I] MLP, after GELU
    /// <summary>[R, I] dL / d MLP hidden (before GELU).</summary>
    public double[] DHidden { get; }             // [R, I] MLP, before GELU

    internal bool Fits(int rows, int width, int intermediate) => Rows == rows && Width == width && Intermediate == intermediate;
}

/// <summary>HF SiglipEncoderLayer (pre-LN): x + attn(LN1 x), then + MLP(LN2 .).</summary>
public static class EncoderLayer
{
    /// <param name="saved">buffers (the output is <c>saved.Output</c>).</param>
    /// <param name="input">[B, N, H].</param>
    public static void Forward(EncoderLayerSaved saved, double[] input, EncoderLayerWeights weights, int batch, int tokens, int width, int heads, int intermediate, double epsilon, ILayerOps? ops = null)
    {
        ops ??= ReferenceOps.Instance;
        int rows = batch * tokens;
        ops.LayerNormForward(saved.Norm1Out, saved.Norm1Mean, saved.Norm1Rstd, input, weights.Norm1.Weight, weights.Norm1.Bias, rows, width, epsilon);
        SelfAttention.Forward(saved.AttentionOut, saved.Attention, saved.Norm1Out, weights.Attention, batch, tokens, width, heads, ops);
        for (int i = 0; i < rows * width; i++) saved.Residual[i] = input[i] + saved.AttentionOut[i];
        ops.LayerNormForward(saved.Norm2Out, saved.Norm2Mean, saved.Norm2Rstd, saved.Residual, weights.Norm2.Weight, weights.Norm2.Bias, rows, width, epsilon);
        Mlp.Forward(saved.MlpOut, saved.Mlp, saved.Norm2Out, weights.Mlp, rows, width, intermediate, ops);
        for (int i = 0; i < rows * width; i++) saved.Output[i] = saved.Residual[i] + saved.MlpOut[i];
    }

    // forward: r = x + attn(LN1 x);  y = r + mlp(LN2 r)
    // backward: dr = dy + LN2'(mlp'(dy));  dx += dr + LN1'(attn'(dr))
    /// <param name="dinput">[B, N, H] accumulated, or null.</param>
    /// <param name="grads">gradient accumulators (+=).</param>
    /// <param name="doutput">[B, N, H].</param>
    /// <param name="input">[B, N, H], the forward input.</param>
    public static void Backward(double[]? dinput, EncoderLayerWeights grads, double[] doutput, EncoderLayerSaved saved, double[] input, EncoderLayerWeights weights, int batch, int tokens, int width, int heads, int intermediate, ILayerOps? ops = null) =>
        Backward(dinput, grads, doutput, saved, input, weights, batch, tokens, width, heads, intermediate, new EncoderLayerScratch(batch * tokens, width, intermediate), ops);

    /// <summary>As above, with the intermediate gradients in <paramref name="scratch"/> (cleared here, so it may be reused).</summary>
    public static void Backward(double[]? dinput, EncoderLayerWeights grads, double[] doutput, EncoderLayerSaved saved, double[] input, EncoderLayerWeights weights, int batch, int tokens, int width, int heads, int intermediate, EncoderLayerScratch scratch, ILayerOps? ops = null)
    {
        ops ??= ReferenceOps.Instance;
        ArgumentNullException.ThrowIfNull(scratch);
        int rows = batch * tokens;
        if (!scratch.Fits(rows, width, intermediate))
            throw new ArgumentException($"EncoderLayer.Backward: the scratch is for {scratch.Rows} rows, width {scratch.Width}, MLP width {scratch.Intermediate}; this call needs {rows}, {width}, {intermediate}.");
        var dnorm2 = scratch.DNorm2;                     // [R, H]
        Array.Clear(dnorm2);
        var dresidual = scratch.DResidual;               // [R, H] the skip path carries dy straight through
        Array.Copy(doutput, dresidual, rows * width);
        Mlp.Backward(dnorm2, grads.Mlp, doutput, saved.Mlp, saved.Norm2Out, weights.Mlp, rows, width, intermediate, scratch.DActivated, scratch.DHidden, ops);
        ops.LayerNormBackward(dresidual, grads.Norm2.Weight, grads.Norm2.Bias, dnorm2, saved.Residual, weights.Norm2.Weight, saved.Norm2Mean, saved.Norm2Rstd, rows, width);

        var dnorm1 = scratch.DNorm1;                     // [R, H]
        Array.Clear(dnorm1);
        SelfAttention.Backward(dnorm1, grads.Attention, dresidual, saved.Attention, saved.Norm1Out, weights.Attention, batch, tokens, width, heads,
            scratch.DContext, scratch.DQuery, scratch.DKey, scratch.DValue, ops);
        if (dinput is null) return;
        for (int i = 0; i < rows * width; i++) dinput[i] += dresidual[i];
        ops.LayerNormBackward(dinput, grads.Norm1.Weight, grads.Norm1.Bias, dnorm1, input, weights.Norm1.Weight, saved.Norm1Mean, saved.Norm1Rstd, rows, width);
    }
}
