using FsCheck;
using FsCheck.Fluent;
using Microsoft.FSharp.Core;
using SigLip.Reference;
using SigLip.Reference.Numerics;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Support;

/// <summary>
/// Runs FsCheck properties from a fixed, reported seed, so any failure can be replayed by putting
/// the printed seed back into the test.
/// </summary>
public static class Props
{
    /// <summary>
    /// Checks <paramref name="property"/> on <paramref name="maxTest"/> generated cases from a fixed seed.
    /// The seed is written to the test output, and is part of the failure message.
    /// </summary>
    public static void Check<T>(Gen<T> gen, Func<T, bool> property, ulong seed, ITestOutputHelper? output = null, int maxTest = 50)
    {
        output?.WriteLine($"FsCheck seed {seed} (gamma 1), {maxTest} cases");
        var config = Config.QuickThrowOnFailure
            .WithMaxTest(maxTest)
            .WithReplay(FSharpOption<Replay>.Some(new Replay(new Rnd(seed, 1UL), FSharpOption<int>.None)));
        try
        {
            FsCheck.Check.One(config, Prop.ForAll(gen.ToArbitrary(), property));
        }
        catch (Exception ex)
        {
            throw new Xunit.Sdk.XunitException($"Property failed from seed {seed} (replay with this seed): {ex.Message}");
        }
    }
}

/// <summary>Tolerance assertions that print the worst element.</summary>
public static class AssertClose
{
    // Written out here, not through Comparison.Of: a test's check must not share code with the verifier it checks.
    public static void Tensor(Tensor actual, Tensor expected, Tolerance tolerance, string name = "tensor")
    {
        if (!actual.Shape.SequenceEqual(expected.Shape))
            throw new Xunit.Sdk.XunitException($"{name}: shape {SigLip.Reference.Tensor.ShapeToString(actual.Shape)} but expected {SigLip.Reference.Tensor.ShapeToString(expected.Shape)}");
        int worst = -1;
        double worstExcess = double.NegativeInfinity;
        for (int i = 0; i < actual.Size; i++)
        {
            double a = actual.Data[i], e = expected.Data[i];
            double excess = double.IsFinite(a) && double.IsFinite(e) ? Math.Abs(a - e) - (tolerance.Atol + tolerance.Rtol * Math.Abs(e)) : double.PositiveInfinity;
            if (excess > worstExcess) { worstExcess = excess; worst = i; }
        }
        if (worst >= 0 && !(worstExcess <= 0))
        {
            double a = actual.Data[worst], e = expected.Data[worst];
            throw new Xunit.Sdk.XunitException($"{name}: worst at {SigLip.Reference.Tensor.ShapeToString(SigLip.Reference.Tensor.Unravel(actual.Shape, worst))} actual {a:R} expected {e:R}, |a-e| = {Math.Abs(a - e):E3} > {tolerance.Atol:G3} + {tolerance.Rtol:G3}*|e|");
        }
    }

    public static void Array(double[] actual, double[] expected, Tolerance tolerance, string name = "array") =>
        Tensor(new Tensor([actual.Length], actual), new Tensor([expected.Length], expected), tolerance, name);

    public static void Scalar(double actual, double expected, Tolerance tolerance, string name = "value")
    {
        if (!(double.IsFinite(actual) && double.IsFinite(expected) && Math.Abs(actual - expected) <= tolerance.Atol + tolerance.Rtol * Math.Abs(expected)))
            throw new Xunit.Sdk.XunitException($"{name}: actual {actual:R} expected {expected:R}, |a-e| = {Math.Abs(actual - expected):E3} > {tolerance.Atol:G3} + {tolerance.Rtol:G3}*|e|");
    }
}
