using SigLip.Reference;
using System.Numerics;
using SigLip.Reference.Numerics;

namespace SigLip.SpecTests.Kernels;

/// <summary>
/// Stated tolerances of fast kernels against their naive twins, and test data helpers.
/// float64: 100x inside the golden bound (1e-11 + 1e-9|e|), so a model that switches to the fast
/// kernels keeps passing its golden cases. float32: compared with the float32 naive twin.
/// Matrix products use a sharper, per-element rounding bound instead (see DotBound).
/// </summary>
internal static class KernelTolerances
{
    public static readonly Tolerance Float64 = new(1e-13, 1e-11);
    public static readonly Tolerance Float32 = new(2e-6, 2e-5);

    /// <summary>Unit roundoff u (half an ulp of 1).</summary>
    public static double UnitRoundoff<T>() => typeof(T) == typeof(float) ? Math.Pow(2, -24) : Math.Pow(2, -53);

    public static Tolerance For<T>() => typeof(T) == typeof(float) ? Float32 : Float64;
}

internal static class TestData
{
    /// <summary>Uniform values in [-scale, scale] from a seeded generator (test inputs only).</summary>
    public static double[] Uniform(Random rng, int count, double scale = 1.0)
    {
        var a = new double[count];
        for (int i = 0; i < count; i++) a[i] = scale * (2 * rng.NextDouble() - 1);
        return a;
    }

    public static T[] As<T>(double[] a) where T : unmanaged =>
        typeof(T) == typeof(float) ? (T[])(object)a.Select(v => (float)v).ToArray() : (T[])(object)a.ToArray();

    public static double[] ToDouble<T>(T[] a) where T : unmanaged =>
        typeof(T) == typeof(float) ? ((float[])(object)a).Select(v => (double)v).ToArray() : ((double[])(object)a).ToArray();

    /// <summary>Rows normalised to unit L2 norm, computed in float64.</summary>
    public static double[] UnitRows(double[] a, int rows, int width)
    {
        var o = (double[])a.Clone();
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int c = 0; c < width; c++) s += o[r * width + c] * o[r * width + c];
            double inv = 1 / Math.Sqrt(s);
            for (int c = 0; c < width; c++) o[r * width + c] *= inv;
        }
        return o;
    }

    public static void Close<T>(T[] actual, T[] expected, Tolerance tolerance, string name) where T : unmanaged =>
        Support.AssertClose.Array(ToDouble(actual), ToDouble(expected), tolerance, name);
}

/// <summary>
/// The rounding bound of a dot product of length K computed in two different orders (with or without
/// FMA): each result is within γ_K·Σ|a_p·b_p| of the exact value, γ_K = K·u/(1 - K·u), so the two
/// differ by at most 2·γ_K·Σ|a_p·b_p| (plus the same for an accumulated C term).
/// </summary>
internal static class DotBound
{
    public static void Assert(double[] fast, double[] naive, double[] absSums, int k, double unitRoundoff, string name)
    {
        double gamma = (k + 2) * unitRoundoff / (1 - (k + 2) * unitRoundoff);
        double worstExcess = double.NegativeInfinity;
        int worst = -1;
        for (int i = 0; i < fast.Length; i++)
        {
            double allowance = 2 * gamma * absSums[i] + double.Epsilon;
            double excess = Math.Abs(fast[i] - naive[i]) - allowance;
            if (double.IsNaN(fast[i]) || double.IsNaN(naive[i])) excess = double.PositiveInfinity;
            if (excess > worstExcess) { worstExcess = excess; worst = i; }
        }
        if (worstExcess > 0)
            throw new Xunit.Sdk.XunitException(
                $"{name}: element {worst} fast {fast[worst]:R} naive {naive[worst]:R} differ by {Math.Abs(fast[worst] - naive[worst]):E3} > 2·γ_{k}·Σ|a·b| = {2 * gamma * absSums[worst]:E3}");
    }
}

/// <summary>
/// The reference layers (the specification, float64 loops) with the managed kernels' signatures, for
/// comparing the two: inputs are widened to float64, the reference computes, results (and accumulated
/// gradients) are rounded back to <typeparamref name="T"/>. So a float32 kernel is compared with the
/// float64 specification on the same float32 inputs.
/// </summary>
internal static class ReferenceTwin<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private static double[] W(T[] a) => TestData.ToDouble(a);
    private static double[]? Wn(T[]? a) => a is null ? null : TestData.ToDouble(a);

    private static void Back(T[]? target, double[]? source)
    {
        if (target is null || source is null) return;
        for (int i = 0; i < target.Length; i++) target[i] = T.CreateChecked(source[i]);
    }

    public static void LinearForward(T[] y, T[] x, T[] weight, T[]? bias, int rows, int inFeatures, int outFeatures)
    {
        var yd = new double[y.Length];
        Reference.Layers.Linear.Forward(yd, W(x), W(weight), Wn(bias), rows, inFeatures, outFeatures);
        Back(y, yd);
    }

    public static void LinearBackward(T[]? dx, T[]? dWeight, T[]? dBias, T[] dy, T[] x, T[] weight, int rows, int inFeatures, int outFeatures)
    {
        double[]? dxd = Wn(dx), dwd = Wn(dWeight), dbd = Wn(dBias);
        Reference.Layers.Linear.Backward(dxd, dwd, dbd, W(dy), W(x), W(weight), rows, inFeatures, outFeatures);
        Back(dx, dxd); Back(dWeight, dwd); Back(dBias, dbd);
    }

    public static void LayerNormForward(T[] y, T[] mean, T[] rstd, T[] x, T[] weight, T[] bias, int rows, int width, double epsilon)
    {
        double[] yd = new double[y.Length], md = new double[mean.Length], sd = new double[rstd.Length];
        Reference.Layers.LayerNorm.Forward(yd, md, sd, W(x), W(weight), W(bias), rows, width, epsilon);
        Back(y, yd); Back(mean, md); Back(rstd, sd);
    }

    public static void LayerNormBackward(T[]? dx, T[]? dWeight, T[]? dBias, T[] dy, T[] x, T[] weight, T[] mean, T[] rstd, int rows, int width)
    {
        double[]? dxd = Wn(dx), dwd = Wn(dWeight), dbd = Wn(dBias);
        Reference.Layers.LayerNorm.Backward(dxd, dwd, dbd, W(dy), W(x), W(weight), W(mean), W(rstd), rows, width);
        Back(dx, dxd); Back(dWeight, dwd); Back(dBias, dbd);
    }

    public static void GeluForward(T[] y, T[] x, int count)
    {
        var yd = new double[y.Length];
        Reference.Layers.Gelu.Forward(yd, W(x), count);
        Back(y, yd);
    }

    public static void GeluBackward(T[] dx, T[] dy, T[] x, int count)
    {
        var dxd = W(dx);
        Reference.Layers.Gelu.Backward(dxd, W(dy), W(x), count);
        Back(dx, dxd);
    }

    /// <summary>The kernel's argument order (probs last among the arrays); the reference's scale is headDim^-0.5, so <paramref name="scale"/> must be that.</summary>
    public static void AttentionForward(T[] context, T[] probs, T[] q, T[] k, T[] v, int batch, int queryTokens, int keyTokens, int heads, int headWidth, double scale)
    {
        Xunit.Assert.Equal(1 / Math.Sqrt(headWidth), scale);
        double[] cd = new double[context.Length], pd = new double[probs.Length];
        Reference.Layers.Attention.Forward(cd, pd, W(q), W(k), W(v), batch, queryTokens, keyTokens, heads, headWidth);
        Back(context, cd); Back(probs, pd);
    }

    public static void AttentionBackward(T[]? dq, T[]? dk, T[]? dv, T[] dContext, T[] q, T[] k, T[] v, T[] probs, int batch, int queryTokens, int keyTokens, int heads, int headWidth, double scale)
    {
        Xunit.Assert.Equal(1 / Math.Sqrt(headWidth), scale);
        double[]? dqd = Wn(dq), dkd = Wn(dk), dvd = Wn(dv);
        Reference.Layers.Attention.Backward(dqd, dkd, dvd, W(dContext), W(probs), W(q), W(k), W(v), batch, queryTokens, keyTokens, heads, headWidth);
        Back(dq, dqd); Back(dk, dkd); Back(dv, dvd);
    }

    /// <summary>The reference's dense sigmoid loss (Loss/SigmoidLoss Forward + Backward) on already normalised rows, in float64; gradients accumulated like the kernel's.</summary>
    public static SigLip.Backends.Managed.Kernels.SigmoidLossValue SigmoidLoss(T[]? dx, T[]? dy, T[] x, T[] y, int n, int width, double logitScale, double logitBias)
    {
        var logits = new double[n * n];
        double[] xd = W(x), yd = W(y);
        double scale = Math.Exp(logitScale);
        double loss = Reference.Loss.SigmoidLoss.Forward(logits, xd, yd, n, width, scale, logitBias);
        double[] dxd = dx is null ? new double[n * width] : W(dx), dyd = dy is null ? new double[n * width] : W(dy);
        var g = Reference.Loss.SigmoidLoss.Backward(dxd, dyd, logits, xd, yd, n, width, scale);
        Back(dx, dxd); Back(dy, dyd);
        return new SigLip.Backends.Managed.Kernels.SigmoidLossValue(loss, g.LogitScale, g.LogitBias);
    }
}
