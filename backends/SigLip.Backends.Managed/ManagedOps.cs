using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SigLip.Backends.Managed.Kernels;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Layers;
using SigLip.Reference.Loss;

namespace SigLip.Backends.Managed;

/// <summary>
/// The managed backend's primitive operations, plugged into the reference's towers and model
/// (<see cref="ILayerOps"/>): the fast kernels in <see cref="Kernels"/> on at most <see cref="Threads"/>
/// threads, in float64 or float32.
/// </summary>
/// <remarks>
/// float32: every operation rounds its inputs (activations and weights) to float32, computes in float32
/// with the float32 kernels, and hands its outputs back through the model's float64 buffers (exactly,
/// since a float32 value is a float64 value). So every matmul, LayerNorm, GELU, attention and loss runs
/// in float32, while the residual adds between them, the parameters and AdamW keep float64, as master
/// weights do in mixed-precision training. Not thread-safe: one model, one caller at a time (the
/// float32 conversions use buffers this object keeps).
/// </remarks>
public sealed class ManagedOps : ILayerOps
{
    private readonly Float32Buffers? _f32;

    /// <summary>Operations in <paramref name="dtype"/> (float64 or float32) on at most <paramref name="threads"/> threads (0: every core).</summary>
    public ManagedOps(DType dtype, int threads = 0)
    {
        if (dtype is not (DType.Float64 or DType.Float32))
            throw new ArgumentException($"The managed backend computes in float32 or float64, not {dtype.Name()}.");
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "The thread count must be at least 1 (or 0 for every core).");
        DType = dtype;
        Threads = threads == 0 ? Environment.ProcessorCount : threads;
        if (dtype == DType.Float32) _f32 = new Float32Buffers();
    }

    /// <summary>The dtype the operations compute in.</summary>
    public DType DType { get; }

    /// <summary>The most threads a kernel uses.</summary>
    public int Threads { get; }

    /// <inheritdoc/>
    public string Name => $"managed kernels, {DType.Name()}, {Threads} thread{(Threads == 1 ? "" : "s")}";

    /// <inheritdoc/>
    public void LinearForward(double[] output, double[] input, double[] weight, double[]? bias, int rows, int inFeatures, int outFeatures)
    {
        if (_f32 is not { } f) { LinearKernels.Forward(output, input, weight, bias, rows, inFeatures, outFeatures, Threads); return; }
        var y = f.Output(0, rows * outFeatures);
        LinearKernels.Forward(y, f.In(0, input, rows * inFeatures), f.In(1, weight, outFeatures * inFeatures), bias is null ? null : f.In(2, bias, outFeatures), rows, inFeatures, outFeatures, Threads);
        Float32Buffers.Store(output, y, rows * outFeatures);
    }

    /// <inheritdoc/>
    public void LinearBackward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, int rows, int inFeatures, int outFeatures)
    {
        if (_f32 is not { } f) { LinearKernels.Backward(dinput, dweight, dbias, doutput, input, weight, rows, inFeatures, outFeatures, Threads); return; }
        var dx = dinput is null ? null : f.Zeroed(0, rows * inFeatures);
        var dw = dweight is null ? null : f.Zeroed(1, outFeatures * inFeatures);
        var db = dbias is null ? null : f.Zeroed(2, outFeatures);
        LinearKernels.Backward(dx, dw, db, f.In(0, doutput, rows * outFeatures), f.In(1, input, rows * inFeatures), f.In(2, weight, outFeatures * inFeatures), rows, inFeatures, outFeatures, Threads);
        Float32Buffers.Accumulate(dinput, dx, rows * inFeatures);
        Float32Buffers.Accumulate(dweight, dw, outFeatures * inFeatures);
        Float32Buffers.Accumulate(dbias, db, outFeatures);
    }

    /// <inheritdoc/>
    public void LayerNormForward(double[] output, double[] mean, double[] rstd, double[] input, double[] weight, double[] bias, int rows, int width, double epsilon)
    {
        if (_f32 is not { } f) { LayerNormKernels.Forward(output, mean, rstd, input, weight, bias, rows, width, epsilon, Threads); return; }
        var y = f.Output(0, rows * width);
        var m = f.Output(1, rows);
        var s = f.Output(2, rows);
        LayerNormKernels.Forward(y, m, s, f.In(0, input, rows * width), f.In(1, weight, width), f.In(2, bias, width), rows, width, epsilon, Threads);
        Float32Buffers.Store(output, y, rows * width);
        Float32Buffers.Store(mean, m, rows);
        Float32Buffers.Store(rstd, s, rows);
    }

    /// <inheritdoc/>
    public void LayerNormBackward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, double[] mean, double[] rstd, int rows, int width)
    {
        if (_f32 is not { } f) { LayerNormKernels.Backward(dinput, dweight, dbias, doutput, input, weight, mean, rstd, rows, width, Threads); return; }
        var dx = dinput is null ? null : f.Zeroed(0, rows * width);
        var dw = dweight is null ? null : f.Zeroed(1, width);
        var db = dbias is null ? null : f.Zeroed(2, width);
        LayerNormKernels.Backward(dx, dw, db, f.In(0, doutput, rows * width), f.In(1, input, rows * width), f.In(2, weight, width), f.In(3, mean, rows), f.In(4, rstd, rows), rows, width, Threads);
        Float32Buffers.Accumulate(dinput, dx, rows * width);
        Float32Buffers.Accumulate(dweight, dw, width);
        Float32Buffers.Accumulate(dbias, db, width);
    }

    /// <inheritdoc/>
    public void GeluForward(double[] output, double[] input, int count)
    {
        if (_f32 is not { } f) { GeluKernels.Forward(output, input, count, Threads); return; }
        var y = f.Output(0, count);
        GeluKernels.Forward(y, f.In(0, input, count), count, Threads);
        Float32Buffers.Store(output, y, count);
    }

    /// <inheritdoc/>
    public void GeluBackward(double[] dinput, double[] doutput, double[] input, int count)
    {
        if (_f32 is not { } f) { GeluKernels.Backward(dinput, doutput, input, count, Threads); return; }
        var dx = f.Zeroed(0, count);
        GeluKernels.Backward(dx, f.In(0, doutput, count), f.In(1, input, count), count, Threads);
        Float32Buffers.Accumulate(dinput, dx, count);
    }

    /// <inheritdoc/>
    public void AttentionForward(double[] output, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim)
    {
        int width = heads * headDim;
        Attention.CheckSizes("ManagedOps.AttentionForward", output, probs, query, key, value, batch, queryTokens, keyTokens, heads, headDim);
        double scale = 1.0 / Math.Sqrt(headDim);
        if (_f32 is not { } f) { AttentionKernels.Forward(output, probs, query, key, value, batch, queryTokens, keyTokens, heads, headDim, scale, Threads); return; }
        int q = batch * queryTokens * width, kv = batch * keyTokens * width, p = batch * heads * queryTokens * keyTokens;
        var c = f.Output(0, q);
        var pr = f.Output(1, p);
        AttentionKernels.Forward(c, pr, f.In(0, query, q), f.In(1, key, kv), f.In(2, value, kv), batch, queryTokens, keyTokens, heads, headDim, scale, Threads);
        Float32Buffers.Store(output, c, q);
        Float32Buffers.Store(probs, pr, p);
    }

    /// <inheritdoc/>
    public void AttentionBackward(double[]? dquery, double[]? dkey, double[]? dvalue, double[] doutput, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim)
    {
        int width = heads * headDim;
        Attention.CheckSizes("ManagedOps.AttentionBackward", doutput, probs, query, key, value, batch, queryTokens, keyTokens, heads, headDim);
        double scale = 1.0 / Math.Sqrt(headDim);
        if (_f32 is not { } f) { AttentionKernels.Backward(dquery, dkey, dvalue, doutput, query, key, value, probs, batch, queryTokens, keyTokens, heads, headDim, scale, Threads); return; }
        int q = batch * queryTokens * width, kv = batch * keyTokens * width, p = batch * heads * queryTokens * keyTokens;
        var dq = dquery is null ? null : f.Zeroed(0, q);
        var dk = dkey is null ? null : f.Zeroed(1, kv);
        var dv = dvalue is null ? null : f.Zeroed(2, kv);
        AttentionKernels.Backward(dq, dk, dv, f.In(0, doutput, q), f.In(1, query, q), f.In(2, key, kv), f.In(3, value, kv), f.In(4, probs, p), batch, queryTokens, keyTokens, heads, headDim, scale, Threads);
        Float32Buffers.Accumulate(dquery, dq, q);
        Float32Buffers.Accumulate(dkey, dk, kv);
        Float32Buffers.Accumulate(dvalue, dv, kv);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The dense sigmoid loss runs on <see cref="ManagedLoss.SigmoidDense"/> (slabs of logits, never the whole
    /// [n, n]); the chunked ring, the softmax loss and a request for the logits run the reference's
    /// generic loss in this working dtype.
    /// </remarks>
    public LossResult PairwiseLoss(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var (n, d) = Reference.Loss.PairwiseLoss.Validate(imageEmbeds, textEmbeds, logitScale, logitBias, options);
        bool dense = options.Kind == LossKind.Sigmoid && options.Chunks == 1;
        return DType == DType.Float64
            ? Compute(imageEmbeds.Data, textEmbeds.Data, n, d, logitScale, logitBias, options, dense)
            : Compute(Float32Buffers.Round(imageEmbeds.Data), Float32Buffers.Round(textEmbeds.Data), n, d, logitScale, logitBias, options, dense);
    }

    private LossResult Compute<T>(T[] image, T[] text, int n, int d, double logitScale, double logitBias, LossOptions options, bool dense)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        if (!dense)
        {
            var r = Reference.Loss.PairwiseLoss.Compute(image, text, n, d, T.CreateChecked(logitScale), T.CreateChecked(logitBias), options);
            return new LossResult(double.CreateChecked(r.Loss), Widen(r.GradImageEmbeds, n, d), Widen(r.GradTextEmbeds, n, d),
                double.CreateChecked(r.GradLogitScale), double.CreateChecked(r.GradLogitBias));
        }
        var sigmoid = ManagedLoss.SigmoidDense(image, text, n, d, logitScale, logitBias, options.NormEpsilon, Threads);
        return new LossResult(sigmoid.Loss, Widen(sigmoid.GradImageEmbeds, n, d), Widen(sigmoid.GradTextEmbeds, n, d), sigmoid.GradLogitScale, sigmoid.GradLogitBias);
    }

    private static Tensor Widen<T>(T[] values, int n, int d) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T> =>
        values is double[] same ? new Tensor([n, d], same) : new Tensor([n, d], Array.ConvertAll(values, double.CreateChecked));

    /// <summary>float32 copies of the float64 buffers an operation reads and writes, kept between calls (slots by position).</summary>
    private sealed class Float32Buffers
    {
        private readonly float[][] _inputs = new float[5][];
        private readonly float[][] _outputs = new float[3][];

        /// <summary>Input slot <paramref name="slot"/> holding <paramref name="source"/>[0..count) rounded to float32.</summary>
        public float[] In(int slot, double[] source, int count)
        {
            var buffer = Get(_inputs, slot, count);
            // Round to nearest, as (float)x: ConvertTruncating is float.CreateTruncating, the cast (vectorised).
            TensorPrimitives.ConvertTruncating<double, float>(source.AsSpan(0, count), buffer.AsSpan(0, count));
            return buffer;
        }

        /// <summary>Output slot <paramref name="slot"/>, at least <paramref name="count"/> long (overwritten by the kernel).</summary>
        public float[] Output(int slot, int count) => Get(_outputs, slot, count);

        /// <summary>Output slot <paramref name="slot"/> zeroed over [0..count): a gradient the kernel accumulates into.</summary>
        public float[] Zeroed(int slot, int count)
        {
            var buffer = Get(_outputs, slot, count);
            Array.Clear(buffer, 0, count);
            return buffer;
        }

        /// <summary>target[i] = source[i] (exact: every float32 is a float64).</summary>
        public static void Store(double[] target, float[] source, int count) =>
            TensorPrimitives.ConvertChecked<float, double>(source.AsSpan(0, count), target.AsSpan(0, count));

        /// <summary>target[i] += source[i], the float32 value widened exactly, then one float64 add.</summary>
        public static void Accumulate(double[]? target, float[]? source, int count)
        {
            if (target is null || source is null) return;
            int i = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                var t = MemoryMarshal.Cast<double, Vector256<double>>(target.AsSpan(0, count));
                var s = source.AsSpan(0, count);
                for (; i + Vector256<float>.Count <= count; i += Vector256<float>.Count)
                {
                    var (lower, upper) = Vector256.Widen(Vector256.Create<float>(s.Slice(i, Vector256<float>.Count)));
                    int v = i / Vector256<double>.Count;
                    t[v] += lower;
                    t[v + 1] += upper;
                }
            }
            for (; i < count; i++) target[i] += source[i];
        }

        public static float[] Round(double[] source) => Array.ConvertAll(source, x => (float)x);

        // Grown, never shrunk: the kernels read and write only the sizes they are given.
        private static float[] Get(float[][] slots, int slot, int count)
        {
            var buffer = slots[slot];
            if (buffer is null || buffer.Length < count) slots[slot] = buffer = new float[count];
            return buffer;
        }
    }
}
