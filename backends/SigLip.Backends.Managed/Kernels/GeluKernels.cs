using System.Numerics;
using System.Numerics.Tensors;

namespace SigLip.Backends.Managed.Kernels;

/// <summary>
/// GELU, tanh form (gelu_pytorch_tanh), element-wise over `count` values:
///   y = 0.5·x·(1 + tanh(u)),  u = sqrt(2/π)·(x + 0.044715·x³)
///   dy/dx = 0.5·(1 + t) + 0.5·x·(1 - t²)·sqrt(2/π)·(1 + 3·0.044715·x²),  t = tanh(u)
/// Backward accumulates (+=).
/// </summary>
public static class GeluKernels
{
    private const double Coefficient = 0.044715;
    private static readonly double SqrtTwoOverPi = Math.Sqrt(2.0 / Math.PI);
    private const int Chunk = 1024;

    /// <summary>y = gelu(x) over the first <paramref name="count"/> elements (SIMD, parallel over chunks).</summary>
    public static void Forward<T>(T[] y, T[] x, int count, int threads = 0) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckSizes("GeluKernels.Forward", y.Length, x.Length, count);
        T c = T.CreateChecked(Coefficient), s = T.CreateChecked(SqrtTwoOverPi), half = T.CreateChecked(0.5);
        int chunks = (count + Chunk - 1) / Chunk;
        Ranges.For(threads, chunks, 20L * Chunk, (lo, hi) =>
        {
            var t = Scratch<T>.First(Chunk);
            for (int ch = lo; ch < hi; ch++)
            {
                int start = ch * Chunk, len = Math.Min(Chunk, count - start);
                var xs = x.AsSpan(start, len);
                var ts = t.AsSpan(0, len);
                var ys = y.AsSpan(start, len);
                TensorPrimitives.Multiply(xs, xs, ts);
                TensorPrimitives.Multiply(ts, xs, ts);               // x³
                TensorPrimitives.FusedMultiplyAdd(ts, c, xs, ts);    // x + c·x³
                TensorPrimitives.Multiply(ts, s, ts);                // u
                TensorPrimitives.Tanh<T>(ts, ts);                    // t
                TensorPrimitives.Add(ts, T.One, ts);
                TensorPrimitives.Multiply(ts, xs, ts);
                TensorPrimitives.Multiply(ts, half, ys);             // 0.5·x·(1 + t)
            }
        });
    }

    /// <summary>dx += dy · gelu'(x) over the first <paramref name="count"/> elements.</summary>
    public static void Backward<T>(T[] dx, T[] dy, T[] x, int count, int threads = 0) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckSizes("GeluKernels.Backward", dx.Length, x.Length, count);
        Check.Length("GeluKernels.Backward", "dy", dy.Length, count);
        T c = T.CreateChecked(Coefficient), c3 = T.CreateChecked(3 * Coefficient), s = T.CreateChecked(SqrtTwoOverPi), half = T.CreateChecked(0.5);
        int chunks = (count + Chunk - 1) / Chunk;
        Ranges.For(threads, chunks, 30L * Chunk, (lo, hi) =>
        {
            var t = Scratch<T>.First(Chunk);
            var x2 = Scratch<T>.Second(Chunk);
            var g = Scratch<T>.Third(Chunk);
            for (int ch = lo; ch < hi; ch++)
            {
                int start = ch * Chunk, len = Math.Min(Chunk, count - start);
                var xs = x.AsSpan(start, len);
                var ts = t.AsSpan(0, len);
                var x2s = x2.AsSpan(0, len);
                var gs = g.AsSpan(0, len);
                TensorPrimitives.Multiply(xs, xs, x2s);              // x²
                TensorPrimitives.Multiply(x2s, xs, ts);
                TensorPrimitives.FusedMultiplyAdd(ts, c, xs, ts);
                TensorPrimitives.Multiply(ts, s, ts);
                TensorPrimitives.Tanh<T>(ts, ts);                    // t
                // g = 0.5·x·(1 - t²)·s·(1 + 3c·x²)
                TensorPrimitives.Multiply(x2s, c3, x2s);
                TensorPrimitives.Add(x2s, T.One, x2s);
                TensorPrimitives.Multiply(x2s, s, x2s);
                TensorPrimitives.Multiply(ts, ts, gs);
                TensorPrimitives.Subtract(T.One, gs, gs);
                TensorPrimitives.Multiply(gs, x2s, gs);
                TensorPrimitives.Multiply(gs, xs, gs);
                // g += 1 + t;  g *= 0.5
                TensorPrimitives.Add(gs, ts, gs);
                TensorPrimitives.Add(gs, T.One, gs);
                TensorPrimitives.Multiply(gs, half, gs);
                var dxs = dx.AsSpan(start, len);
                TensorPrimitives.FusedMultiplyAdd(gs, dy.AsSpan(start, len), dxs, dxs);
            }
        });
    }

    private static void CheckSizes(string kernel, int y, int x, int count)
    {
        if (count < 0) throw new ArgumentException($"{kernel}: count must be non-negative, got {count}.");
        Check.Length(kernel, "output", y, count);
        Check.Length(kernel, "x", x, count);
    }
}
