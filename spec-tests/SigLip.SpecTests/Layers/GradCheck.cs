using MathNet.Numerics.Differentiation;
using SigLip.Reference;
using SigLip.Reference.Numerics;

namespace SigLip.SpecTests.Layers;

/// <summary>
/// Compares hand-written gradients with central finite differences (MathNet's 5-point stencil,
/// step 1e-5 (1 + |x|)), in float64. The scalar checked is L = sum(output * upstream) for a random
/// upstream gradient, so d output = upstream in the backward call.
/// </summary>
public static class GradCheck
{
    /// <summary>
    /// Agreement expected between an exact float64 gradient and the 5-point difference: truncation
    /// ~h^4, round-off ~1e-16 |L| / h; both far below these bounds on the small random cases used.
    /// </summary>
    public static Tolerance FiniteDifference { get; } = new(1e-7, 1e-6);

    /// <summary>Random values, N(0, std^2), from a fixed seed.</summary>
    public static double[] Random(DeterministicRandom rng, int count, double std = 1.0)
    {
        var a = new double[count];
        rng.FillGaussian(a, std);
        return a;
    }

    /// <summary>sum_i a[i] * b[i].</summary>
    public static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>
    /// Throws (naming the tensor and the worst element) unless analytic[i] equals the central
    /// difference of <paramref name="loss"/> with respect to x[i], for each chosen i (all when
    /// <paramref name="indices"/> is null). x is restored afterwards.
    /// </summary>
    public static void Check(string name, double[] x, double[] analytic, Func<double> loss, IReadOnlyList<int>? indices = null, Tolerance? tolerance = null)
    {
        var chosen = indices ?? Enumerable.Range(0, x.Length).ToArray();
        var derivative = new NumericalDerivative(5, 2) { StepType = StepType.RelativeX, BaseStepSize = 1e-5 };
        var numeric = new double[chosen.Count];
        var actual = new double[chosen.Count];
        for (int k = 0; k < chosen.Count; k++)
        {
            int i = chosen[k];
            double original = x[i];
            numeric[k] = derivative.EvaluateDerivative(v => { x[i] = v; return loss(); }, original, 1);
            x[i] = original;
            actual[k] = analytic[i];
        }
        var c = Comparison.Of($"d/d {name} (elements {string.Join(",", chosen.Take(8))}{(chosen.Count > 8 ? ",..." : "")})",
            new Tensor([actual.Length], actual), new Tensor([numeric.Length], numeric), tolerance ?? FiniteDifference);
        if (!c.Passed) throw new Xunit.Sdk.XunitException("Gradient differs from finite differences: " + c);
    }

    /// <summary>
    /// A gradient buffer pre-filled with random "earlier" values, to prove backward accumulates (+=):
    /// <see cref="Added"/> gives what backward added.
    /// </summary>
    public sealed class Accumulator
    {
        private readonly double[] _before;
        public Accumulator(DeterministicRandom rng, int count)
        {
            _before = Random(rng, count);
            Buffer = (double[])_before.Clone();
        }
        public double[] Buffer { get; }
        public double[] Added => Buffer.Select((v, i) => v - _before[i]).ToArray();
    }
}
