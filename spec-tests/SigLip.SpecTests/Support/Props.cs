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
    public static void Tensor(Tensor actual, Tensor expected, Tolerance tolerance, string name = "tensor")
    {
        var c = Comparison.Of(name, actual, expected, tolerance);
        if (!c.Passed) throw new Xunit.Sdk.XunitException(c.ToString());
    }

    public static void Array(double[] actual, double[] expected, Tolerance tolerance, string name = "array") =>
        Tensor(new Tensor([actual.Length], actual), new Tensor([expected.Length], expected), tolerance, name);

    public static void Scalar(double actual, double expected, Tolerance tolerance, string name = "value")
    {
        if (!tolerance.Accepts(actual, expected))
            throw new Xunit.Sdk.XunitException($"{name}: actual {actual:R} expected {expected:R}, |a-e| = {Math.Abs(actual - expected):E3} > {tolerance.Atol:G3} + {tolerance.Rtol:G3}*|e|");
    }
}
