namespace SigLip.Reference.Numerics;

/// <summary>An element passes when |a - e| &lt;= Atol + Rtol * |e|.</summary>
/// <param name="Atol">Absolute allowance.</param>
/// <param name="Rtol">Allowance relative to |expected|.</param>
public sealed record Tolerance(double Atol, double Rtol)
{
    /// <summary>float64 against HF transformers float64 (the encoders issue's bound).</summary>
    public static Tolerance Float64 { get; } = new(1e-11, 1e-9);

    /// <summary>Whether |actual - expected| &lt;= Atol + Rtol |expected| (NaN is never accepted).</summary>
    public bool Accepts(double actual, double expected) =>
        Math.Abs(actual - expected) <= Atol + Rtol * Math.Abs(expected);

    /// <summary>"atol X, rtol Y".</summary>
    public override string ToString() => $"atol {Atol:G3}, rtol {Rtol:G3}";
}

/// <summary>How an actual tensor compares with an expected one: the worst element and whether all pass.</summary>
/// <param name="Name">What was compared.</param>
/// <param name="Passed">Whether every element is within the tolerance (and the shapes agree).</param>
/// <param name="MaxAbsError">max |a - e| over the elements.</param>
/// <param name="MaxRelError">max |a - e| / |e| over the elements (infinite where e = 0 and a != e).</param>
/// <param name="WorstIndex">The multi-index of the element that most exceeds its allowance atol + rtol |e| (or comes closest to it).</param>
/// <param name="WorstActual">Its actual value.</param>
/// <param name="WorstExpected">Its expected value.</param>
/// <param name="Tolerance">The tolerance applied.</param>
/// <param name="Problem">A problem that is not a numerical difference (shape mismatch, missing tensor), else null.</param>
public sealed record Comparison(
    string Name,
    bool Passed,
    double MaxAbsError,
    double MaxRelError,
    IReadOnlyList<int> WorstIndex,
    double WorstActual,
    double WorstExpected,
    Tolerance Tolerance,
    string? Problem = null)
{
    /// <summary>One line: pass or FAIL, the largest errors, the worst element (index, actual, expected) and the tolerance.</summary>
    public override string ToString() => Problem is not null
        ? $"{Name}: FAIL ({Problem})"
        : $"{Name}: {(Passed ? "pass" : "FAIL")} max abs {MaxAbsError:E3}, max rel {MaxRelError:E3}, worst at {Tensor.ShapeToString(WorstIndex)} actual {WorstActual:R} expected {WorstExpected:R} ({Tolerance})";

    /// <summary>
    /// Compares element by element. The worst element is the one that most exceeds its allowance
    /// (|a-e| - (atol + rtol|e|)); a NaN or infinity on either side fails. Shapes must agree.
    /// </summary>
    public static Comparison Of(string name, Tensor actual, Tensor expected, Tolerance tolerance)
    {
        if (!actual.Shape.SequenceEqual(expected.Shape))
            return new Comparison(name, false, double.NaN, double.NaN, [], double.NaN, double.NaN, tolerance,
                $"shape {Tensor.ShapeToString(actual.Shape)} but expected {Tensor.ShapeToString(expected.Shape)}");
        double maxAbs = 0, maxRel = 0, worstExcess = double.NegativeInfinity;
        long worst = 0;
        bool passed = true;
        var a = actual.Data;
        var e = expected.Data;
        for (long i = 0; i < a.Length; i++)
        {
            double err = Math.Abs(a[i] - e[i]);
            double allowance = tolerance.Atol + tolerance.Rtol * Math.Abs(e[i]);
            // A NaN or infinity on either side fails: with an infinite expected value the allowance
            // atol + rtol |e| would be infinite too and accept anything.
            bool nonFinite = !double.IsFinite(a[i]) || !double.IsFinite(e[i]);
            double excess = nonFinite || double.IsNaN(err) ? double.PositiveInfinity : err - allowance;
            if (nonFinite || !(err <= allowance)) passed = false;
            if (double.IsNaN(err) || err > maxAbs) maxAbs = double.IsNaN(err) ? double.NaN : Math.Max(maxAbs, err);
            double rel = e[i] == 0 ? (err == 0 ? 0 : double.PositiveInfinity) : err / Math.Abs(e[i]);
            if (!double.IsNaN(maxAbs) && rel > maxRel) maxRel = rel;
            if (excess > worstExcess) { worstExcess = excess; worst = i; }
        }
        if (a.Length == 0) return new Comparison(name, true, 0, 0, [], 0, 0, tolerance);
        return new Comparison(name, passed, maxAbs, maxRel, Tensor.Unravel(actual.Shape, worst), a[worst], e[worst], tolerance);
    }
}
