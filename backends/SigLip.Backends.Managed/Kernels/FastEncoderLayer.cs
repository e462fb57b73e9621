using System.Numerics;
using System.Numerics.Tensors;

namespace SigLip.Backends.Managed.Kernels;

/// <summary>The arrays of one pre-LN encoder layer (HF SiglipEncoderLayer names in comments).</summary>
public sealed record EncoderLayerArrays<T>(
    T[] Norm1Weight, T[] Norm1Bias,                 // layer_norm1 [H]
    T[] QueryWeight, T[] QueryBias,                 // self_attn.q_proj [H, H], [H]
    T[] KeyWeight, T[] KeyBias,                     // self_attn.k_proj
    T[] ValueWeight, T[] ValueBias,                 // self_attn.v_proj
    T[] OutWeight, T[] OutBias,                     // self_attn.out_proj
    T[] Norm2Weight, T[] Norm2Bias,                 // layer_norm2 [H]
    T[] Fc1Weight, T[] Fc1Bias,                     // mlp.fc1 [I, H], [I]
    T[] Fc2Weight, T[] Fc2Bias)                     // mlp.fc2 [H, I], [H]
    where T : unmanaged
{
    /// <summary>Zero-filled arrays for these sizes (gradient accumulators).</summary>
    public static EncoderLayerArrays<T> Zeros(int width, int intermediate) => new(
        new T[width], new T[width],
        new T[width * width], new T[width], new T[width * width], new T[width],
        new T[width * width], new T[width], new T[width * width], new T[width],
        new T[width], new T[width],
        new T[intermediate * width], new T[intermediate], new T[width * intermediate], new T[width]);

    /// <summary>Every array, in the record's order.</summary>
    public IEnumerable<T[]> All() =>
        [Norm1Weight, Norm1Bias, QueryWeight, QueryBias, KeyWeight, KeyBias, ValueWeight, ValueBias, OutWeight, OutBias,
         Norm2Weight, Norm2Bias, Fc1Weight, Fc1Bias, Fc2Weight, Fc2Bias];
}

/// <summary>
/// One pre-LN encoder layer run entirely on the fast kernels, for any float type, with every buffer
/// allocated once (forward and backward allocate nothing). Same computation as Layers/EncoderLayer:
///   r = x + out_proj(Attention(q, k, v of LN1 x));   y = r + fc2(gelu(fc1(LN2 r)))
/// B = batch, N = tokens, H = width, A = heads, I = MLP width, R = B·N rows.
/// </summary>
public sealed class FastEncoderLayer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly int batch, tokens, width, heads, intermediate, rows;
    private readonly double epsilon;

    /// <summary>A layer over <paramref name="weights"/> (not copied) for batches of <paramref name="batch"/> x <paramref name="tokens"/>; allocates every buffer now.</summary>
    public FastEncoderLayer(EncoderLayerArrays<T> weights, int batch, int tokens, int width, int heads, int intermediate, double epsilon = 1e-6)
    {
        if (width % heads != 0) throw new ArgumentException($"Width {width} is not divisible by {heads} heads.");
        Weights = weights;
        Gradients = EncoderLayerArrays<T>.Zeros(width, intermediate);
        (this.batch, this.tokens, this.width, this.heads, this.intermediate, this.epsilon) = (batch, tokens, width, heads, intermediate, epsilon);
        rows = batch * tokens;
        T[] Rh() => new T[rows * width];
        Norm1Out = Rh(); Query = Rh(); Key = Rh(); Value = Rh(); Context = Rh(); Residual = Rh(); Norm2Out = Rh(); Output = Rh();
        Norm1Mean = new T[rows]; Norm1Rstd = new T[rows]; Norm2Mean = new T[rows]; Norm2Rstd = new T[rows];
        Probs = new T[batch * heads * tokens * tokens];
        Hidden = new T[rows * intermediate]; Activated = new T[rows * intermediate];
        dHidden = new T[rows * intermediate]; dActivated = new T[rows * intermediate];
        dResidual = Rh(); dNorm = Rh(); dContext = Rh(); dQuery = Rh(); dKey = Rh(); dValue = Rh();
    }

    /// <summary>The weights it computes with (the arrays given to the constructor).</summary>
    public EncoderLayerArrays<T> Weights { get; }
    /// <summary>Accumulated (+=) by <see cref="Backward"/>; zero them yourself between steps.</summary>
    public EncoderLayerArrays<T> Gradients { get; }

    /// <summary>[R, H] the last <see cref="Forward"/>'s output.</summary>
    public T[] Output { get; }                                        // [R, H]
    private T[] Norm1Out { get; }                                     // [R, H]
    private T[] Norm1Mean { get; }                                    // [R]
    private T[] Norm1Rstd { get; }                                    // [R]
    private T[] Query { get; }                                        // [R, H]
    private T[] Key { get; }                                          // [R, H]
    private T[] Value { get; }                                        // [R, H]
    private T[] Probs { get; }                                        // [B, A, N, N]
    private T[] Context { get; }                                      // [R, H]
    private T[] Residual { get; }                                     // [R, H]
    private T[] Norm2Out { get; }                                     // [R, H]
    private T[] Norm2Mean { get; }                                    // [R]
    private T[] Norm2Rstd { get; }                                    // [R]
    private T[] Hidden { get; }                                       // [R, I] fc1 output
    private T[] Activated { get; }                                    // [R, I] gelu(fc1)
    private readonly T[] dHidden, dActivated;                         // [R, I]
    private readonly T[] dResidual, dNorm, dContext, dQuery, dKey, dValue; // [R, H]

    /// <summary>Runs the layer on x [R, H]; the result is <see cref="Output"/>.</summary>
    public T[] Forward(T[] x)
    {
        var w = Weights;
        int h = width, d = width / heads;
        LayerNormKernels.Forward(Norm1Out, Norm1Mean, Norm1Rstd, x, w.Norm1Weight, w.Norm1Bias, rows, h, epsilon);
        LinearKernels.Forward(Query, Norm1Out, w.QueryWeight, w.QueryBias, rows, h, h);
        LinearKernels.Forward(Key, Norm1Out, w.KeyWeight, w.KeyBias, rows, h, h);
        LinearKernels.Forward(Value, Norm1Out, w.ValueWeight, w.ValueBias, rows, h, h);
        AttentionKernels.Forward(Context, Probs, Query, Key, Value, batch, tokens, tokens, heads, d, 1 / Math.Sqrt(d));
        LinearKernels.Forward(Residual, Context, w.OutWeight, w.OutBias, rows, h, h);
        TensorPrimitives.Add(Residual.AsSpan(0, rows * h), x.AsSpan(0, rows * h), Residual);
        LayerNormKernels.Forward(Norm2Out, Norm2Mean, Norm2Rstd, Residual, w.Norm2Weight, w.Norm2Bias, rows, h, epsilon);
        LinearKernels.Forward(Hidden, Norm2Out, w.Fc1Weight, w.Fc1Bias, rows, h, intermediate);
        GeluKernels.Forward(Activated, Hidden, rows * intermediate);
        LinearKernels.Forward(Output, Activated, w.Fc2Weight, w.Fc2Bias, rows, intermediate, h);
        TensorPrimitives.Add(Output.AsSpan(0, rows * h), Residual.AsSpan(0, rows * h), Output);
        return Output;
    }

    /// <summary>dy [R, H] in; dx [R, H] accumulated (null: not wanted); weight gradients into <see cref="Gradients"/>.</summary>
    public void Backward(T[] dy, T[] x, T[]? dx)
    {
        var w = Weights;
        var g = Gradients;
        int h = width, d = width / heads;
        // y = r + fc2(gelu(fc1(LN2 r)))
        Array.Copy(dy, dResidual, rows * h);
        Array.Clear(dActivated); Array.Clear(dHidden); Array.Clear(dNorm);
        LinearKernels.Backward(dActivated, g.Fc2Weight, g.Fc2Bias, dy, Activated, w.Fc2Weight, rows, intermediate, h);
        GeluKernels.Backward(dHidden, dActivated, Hidden, rows * intermediate);
        LinearKernels.Backward(dNorm, g.Fc1Weight, g.Fc1Bias, dHidden, Norm2Out, w.Fc1Weight, rows, h, intermediate);
        LayerNormKernels.Backward(dResidual, g.Norm2Weight, g.Norm2Bias, dNorm, Residual, w.Norm2Weight, Norm2Mean, Norm2Rstd, rows, h);
        // r = x + out_proj(attention(LN1 x))
        Array.Clear(dContext); Array.Clear(dQuery); Array.Clear(dKey); Array.Clear(dValue); Array.Clear(dNorm);
        LinearKernels.Backward(dContext, g.OutWeight, g.OutBias, dResidual, Context, w.OutWeight, rows, h, h);
        AttentionKernels.Backward(dQuery, dKey, dValue, dContext, Query, Key, Value, Probs, batch, tokens, tokens, heads, d, 1 / Math.Sqrt(d));
        LinearKernels.Backward(dNorm, g.QueryWeight, g.QueryBias, dQuery, Norm1Out, w.QueryWeight, rows, h, h);
        LinearKernels.Backward(dNorm, g.KeyWeight, g.KeyBias, dKey, Norm1Out, w.KeyWeight, rows, h, h);
        LinearKernels.Backward(dNorm, g.ValueWeight, g.ValueBias, dValue, Norm1Out, w.ValueWeight, rows, h, h);
        if (dx is null) return;
        TensorPrimitives.Add(dx.AsSpan(0, rows * h), dResidual.AsSpan(0, rows * h), dx);
        LayerNormKernels.Backward(dx, g.Norm1Weight, g.Norm1Bias, dNorm, x, w.Norm1Weight, Norm1Mean, Norm1Rstd, rows, h);
    }
}
