using System.Numerics;
using System.Numerics.Tensors;

namespace SigLip.Backends.Managed.Kernels;

/// <summary>
/// y = x·Wᵀ + b with W [Out, In] (PyTorch/HF layout). R = rows (batch x tokens), In, Out = widths.
/// Forward overwrites y; Backward accumulates (+=) into dx, dW, db, as in llm.c.
/// </summary>
public static class LinearKernels
{
    /// <summary>y[R,Out] = x[R,In]·W[Out,In]ᵀ + b[Out] (bias may be null).</summary>
    public static void Forward<T>(T[] y, T[] x, T[] weight, T[]? bias, int rows, int inFeatures, int outFeatures, int threads = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckSizes("LinearKernels.Forward", y.Length, x.Length, weight.Length, bias?.Length, rows, inFeatures, outFeatures);
        MatMul.ABt(y, x, weight, rows, outFeatures, inFeatures, threads: threads);
        if (bias is not null)
            for (int r = 0; r < rows; r++)
            {
                var row = y.AsSpan(r * outFeatures, outFeatures);
                TensorPrimitives.Add(row, bias.AsSpan(0, outFeatures), row);
            }
    }

    /// <summary>
    /// dx[R,In] += dy·W; dW[Out,In] += dyᵀ·x; db[Out] += Σ_r dy[r,:]. Pass null for a gradient you do not need.
    /// </summary>
    public static void Backward<T>(T[]? dx, T[]? dWeight, T[]? dBias, T[] dy, T[] x, T[] weight, int rows, int inFeatures, int outFeatures, int threads = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckBackward("LinearKernels.Backward", dx, dWeight, dBias, dy, x, weight, rows, inFeatures, outFeatures);
        if (dx is not null) MatMul.AB(dx, dy, weight, rows, inFeatures, outFeatures, accumulate: true, threads: threads);
        if (dWeight is not null) MatMul.AtB(dWeight, dy, x, outFeatures, inFeatures, rows, accumulate: true, threads: threads);
        if (dBias is not null)
            for (int r = 0; r < rows; r++)
                TensorPrimitives.Add(dBias.AsSpan(0, outFeatures), dy.AsSpan(r * outFeatures, outFeatures), dBias.AsSpan(0, outFeatures));
    }

    private static void CheckSizes(string kernel, int y, int x, int w, int? b, int rows, int inF, int outF)
    {
        Check.FloatType<float>(kernel);
        Check.Length(kernel, "y", y, (long)rows * outF);
        Check.Length(kernel, "x", x, (long)rows * inF);
        Check.Length(kernel, "weight", w, (long)outF * inF);
        if (b is { } bl) Check.Length(kernel, "bias", bl, outF);
    }

    private static void CheckBackward<T>(string kernel, T[]? dx, T[]? dW, T[]? db, T[] dy, T[] x, T[] w, int rows, int inF, int outF)
    {
        Check.FloatType<T>(kernel);
        if (dx is not null) Check.Length(kernel, "dx", dx.Length, (long)rows * inF);
        if (dW is not null) Check.Length(kernel, "dWeight", dW.Length, (long)outF * inF);
        if (db is not null) Check.Length(kernel, "dBias", db.Length, outF);
        Check.Length(kernel, "dy", dy.Length, (long)rows * outF);
        Check.Length(kernel, "x", x.Length, (long)rows * inF);
        Check.Length(kernel, "weight", w.Length, (long)outF * inF);
    }
}
