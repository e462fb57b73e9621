using FsCheck;
using FsCheck.Fluent;
using MathNet.Numerics.Differentiation;

namespace SigLip.SpecTests.Loss;

/// <summary>
/// One random loss problem: n pairs of width d, t' and b, and a seed for the embeddings.
/// Embeddings are standard Gaussian, deliberately unnormalised (scaled per row by 0.3 .. 3).
/// </summary>
public sealed record LossCase(int N, int D, double LogitScale, double LogitBias, int DataSeed)
{
    public double[] Images { get; } = Embeddings(N, D, DataSeed);
    public double[] Texts { get; } = Embeddings(N, D, DataSeed + 7919);

    public override string ToString() => $"n={N} d={D} t'={LogitScale:R} b={LogitBias:R} dataSeed={DataSeed}";

    public static double[] Embeddings(int n, int d, int seed)
    {
        var random = new Random(seed);
        var values = new double[n * d];
        for (int r = 0; r < n; r++)
        {
            double rowScale = 0.3 + 2.7 * random.NextDouble();
            for (int k = 0; k < d; k++) values[r * d + k] = rowScale * Gaussian(random);
        }
        return values;
    }

    public static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    /// <summary>A double uniformly in [lo, hi] on a grid of 10^6 steps.</summary>
    public static FsCheck.Gen<double> Uniform(double lo, double hi) =>
        FsCheck.Fluent.Gen.Choose(0, 1_000_000).Select(k => lo + (hi - lo) * k / 1_000_000.0);

    /// <summary>Random sizes, t' in [tLo, tHi] and b in [-12, 4].</summary>
    public static FsCheck.Gen<LossCase> Gen(int maxN = 6, int maxD = 5, double tLo = -1, double tHi = 2.5) =>
        from n in FsCheck.Fluent.Gen.Choose(1, maxN)
        from d in FsCheck.Fluent.Gen.Choose(1, maxD)
        from t in Uniform(tLo, tHi)
        from b in Uniform(-12, 4)
        from seed in FsCheck.Fluent.Gen.Choose(0, 1_000_000)
        select new LossCase(n, d, t, b, seed);

    /// <summary>
    /// Central finite differences (MathNet's 5-point stencil) of f at x, one partial derivative per
    /// coordinate, with an absolute step h_p = 1e-3 * scale(p), where scale(p) is the length over
    /// which f changes along coordinate p (a row's norm for an embedding: L2 normalisation makes f
    /// vary on that scale). Truncation error O(h^4) ~ 1e-12 relative; rounding ~ eps |f| / h.
    /// (MathNet's default step, eps^(1/5) (1 + |x_p|) ~ 7e-4, is too large
    /// for short rows.)
    /// </summary>
    public static double[] FiniteDifferenceGradient(Func<double[], double> f, double[] x, Func<int, double>? scale = null)
    {
        var gradient = new double[x.Length];
        for (int p = 0; p < x.Length; p++)
        {
            var derivative = new NumericalDerivative(5, 2) { StepType = StepType.Absolute, StepSize = 1e-3 * (scale?.Invoke(p) ?? 1.0) };
            gradient[p] = derivative.EvaluatePartialDerivative(f, (double[])x.Clone(), p, 1);
        }
        return gradient;
    }

    /// <summary>The Euclidean norm of row r of a row-major [rows, width] array.</summary>
    public static double RowNorm(double[] values, int width, int r)
    {
        double sum = 0;
        for (int k = 0; k < width; k++) sum += values[r * width + k] * values[r * width + k];
        return Math.Sqrt(sum);
    }

    /// <summary>Step scales for <see cref="Packed"/>: row norms for embeddings, max(1, |value|) for t' and b.</summary>
    public double StepScale(int p)
    {
        int nd = N * D;
        if (p < nd) return RowNorm(Images, D, p / D);
        if (p < 2 * nd) return RowNorm(Texts, D, (p - nd) / D);
        return Math.Max(1, Math.Abs(p == 2 * nd ? LogitScale : LogitBias));
    }

    /// <summary>[images (n*d), texts (n*d), t', b] packed into one parameter vector.</summary>
    public double[] Packed()
    {
        var x = new double[2 * N * D + 2];
        Images.CopyTo(x, 0);
        Texts.CopyTo(x, N * D);
        x[^2] = LogitScale;
        x[^1] = LogitBias;
        return x;
    }

    public (double[] Images, double[] Texts, double LogitScale, double LogitBias) Unpack(double[] x) =>
        (x[..(N * D)], x[(N * D)..(2 * N * D)], x[^2], x[^1]);
}
