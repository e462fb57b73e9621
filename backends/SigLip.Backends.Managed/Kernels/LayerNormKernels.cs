using System.Numerics;
using System.Numerics.Tensors;

namespace SigLip.Backends.Managed.Kernels;

/// <summary>
/// LayerNorm over the last dimension, as PyTorch computes it (biased variance, two passes).
/// R = rows, C = width. Forward saves mean [R] and rstd [R] for Backward; Backward accumulates (+=).
///   y = (x - mean) · rstd · w + b,   rstd = 1 / sqrt(var + eps),   var = mean((x - mean)²)
/// </summary>
public static class LayerNormKernels
{
    /// <summary>y = LayerNorm(x) row by row; saves <paramref name="mean"/> and <paramref name="rstd"/> for the backward.</summary>
    public static void Forward<T>(T[] y, T[] mean, T[] rstd, T[] x, T[] weight, T[] bias, int rows, int width, double epsilon, int threads = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckForward("LayerNormKernels.Forward", y, mean, rstd, x, weight, bias, rows, width);
        T eps = T.CreateChecked(epsilon), n = T.CreateChecked(width);
        Ranges.For(threads, rows, 8L * width, (lo, hi) =>
        {
            var w = weight.AsSpan(0, width);
            var b = bias.AsSpan(0, width);
            for (int r = lo; r < hi; r++)
            {
                var xr = x.AsSpan(r * width, width);
                var yr = y.AsSpan(r * width, width);
                T m = TensorPrimitives.Sum<T>(xr) / n;
                TensorPrimitives.Subtract(xr, m, yr);                 // y = x - mean
                T v = TensorPrimitives.SumOfSquares<T>(yr) / n;
                T s = T.One / T.Sqrt(v + eps);
                TensorPrimitives.Multiply(yr, s, yr);                 // y = xhat
                TensorPrimitives.FusedMultiplyAdd(yr, w, b, yr);      // y = xhat·w + b
                mean[r] = m;
                rstd[r] = s;
            }
        });
    }

    /// <summary>
    /// dx += rstd·(g - mean(g) - xhat·mean(g·xhat)) with g = dy·w;  dw += Σ_r dy·xhat;  db += Σ_r dy.
    /// Pass null for a gradient that is not needed.
    /// </summary>
    public static void Backward<T>(T[]? dx, T[]? dWeight, T[]? dBias, T[] dy, T[] x, T[] weight, T[] mean, T[] rstd, int rows, int width, int threads = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckBackward("LayerNormKernels.Backward", dx, dWeight, dBias, dy, x, weight, mean, rstd, rows, width);
        T n = T.CreateChecked(width);
        // dx rows are independent: parallel over rows.
        if (dx is not null) Ranges.For(threads, rows, 12L * width, (lo, hi) =>
        {
            var xhat = Scratch<T>.First(width).AsSpan(0, width);
            var g = Scratch<T>.Second(width).AsSpan(0, width);
            var w = weight.AsSpan(0, width);
            for (int r = lo; r < hi; r++)
            {
                var xr = x.AsSpan(r * width, width);
                var dyr = dy.AsSpan(r * width, width);
                var dxr = dx.AsSpan(r * width, width);
                TensorPrimitives.Subtract(xr, mean[r], xhat);
                TensorPrimitives.Multiply(xhat, rstd[r], xhat);
                TensorPrimitives.Multiply(dyr, w, g);
                T gMean = TensorPrimitives.Sum<T>(g) / n;
                T gxMean = TensorPrimitives.Dot<T>(g, xhat) / n;
                // dx += (g - gMean - xhat·gxMean)·rstd
                TensorPrimitives.Subtract(g, gMean, g);
                TensorPrimitives.FusedMultiplyAdd(xhat, -gxMean, g, g);
                TensorPrimitives.FusedMultiplyAdd(g, rstd[r], dxr, dxr);
            }
        });
        if (dWeight is null && dBias is null) return;
        // dw, db sum over rows: parallel over column blocks so that no two threads write one element.
        const int block = 64;
        int blocks = (width + block - 1) / block;
        Ranges.For(threads, blocks, 4L * block * rows, (lo, hi) =>
        {
            var xhat = Scratch<T>.First(block);
            for (int cb = lo; cb < hi; cb++)
            {
                int c0 = cb * block, len = Math.Min(block, width - c0);
                var xh = xhat.AsSpan(0, len);
                for (int r = 0; r < rows; r++)
                {
                    var dyr = dy.AsSpan(r * width + c0, len);
                    if (dBias is not null) TensorPrimitives.Add(dBias.AsSpan(c0, len), dyr, dBias.AsSpan(c0, len));
                    if (dWeight is not null)
                    {
                        TensorPrimitives.Subtract(x.AsSpan(r * width + c0, len), mean[r], xh);
                        TensorPrimitives.Multiply(xh, rstd[r], xh);
                        TensorPrimitives.FusedMultiplyAdd(xh, dyr, dWeight.AsSpan(c0, len), dWeight.AsSpan(c0, len));
                    }
                }
            }
        });
    }

    private static void CheckForward<T>(string kernel, T[] y, T[] mean, T[] rstd, T[] x, T[] w, T[] b, int rows, int width)
    {
        Check.FloatType<T>(kernel);
        Check.Length(kernel, "y", y.Length, (long)rows * width);
        Check.Length(kernel, "x", x.Length, (long)rows * width);
        Check.Length(kernel, "mean", mean.Length, rows);
        Check.Length(kernel, "rstd", rstd.Length, rows);
        Check.Length(kernel, "weight", w.Length, width);
        Check.Length(kernel, "bias", b.Length, width);
    }

    private static void CheckBackward<T>(string kernel, T[]? dx, T[]? dw, T[]? db, T[] dy, T[] x, T[] w, T[] mean, T[] rstd, int rows, int width)
    {
        Check.FloatType<T>(kernel);
        if (dx is not null) Check.Length(kernel, "dx", dx.Length, (long)rows * width);
        if (dw is not null) Check.Length(kernel, "dWeight", dw.Length, width);
        if (db is not null) Check.Length(kernel, "dBias", db.Length, width);
        Check.Length(kernel, "dy", dy.Length, (long)rows * width);
        Check.Length(kernel, "x", x.Length, (long)rows * width);
        Check.Length(kernel, "weight", w.Length, width);
        Check.Length(kernel, "mean", mean.Length, rows);
        Check.Length(kernel, "rstd", rstd.Length, rows);
    }
}
