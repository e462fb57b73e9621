using SigLip.Reference;
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
