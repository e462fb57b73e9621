using System.Numerics;

namespace SigLip.Reference.Loss;

/// <summary>
/// Numerically stable sigmoid, log-sigmoid and log1p, generic over float and double.
/// Nothing here overflows: exp is only ever taken of a non-positive number.
/// </summary>
public static class LogSigmoid
{
    /// <summary>
    /// log sigma(u) = min(u, 0) - log1p(exp(-|u|)).
    /// The naive log(1 / (1 + exp(-u))) overflows for u &lt;&lt; 0 and loses every digit for u &gt;&gt; 0.
    /// </summary>
    public static T Value<T>(T u) where T : unmanaged, IFloatingPointIeee754<T> =>
        T.Min(u, T.Zero) - Log1P(T.Exp(-T.Abs(u)));

    /// <summary>d/du log sigma(u) = sigma(-u) = 1 - sigma(u), computed without cancellation.</summary>
    public static T Derivative<T>(T u) where T : unmanaged, IFloatingPointIeee754<T> => Sigmoid(-u);

    /// <summary>sigma(u) = 1 / (1 + exp(-u)), taking exp of -|u| only.</summary>
    public static T Sigmoid<T>(T u) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (u >= T.Zero) return T.One / (T.One + T.Exp(-u));
        var e = T.Exp(u); // u < 0: e in (0, 1)
        return e / (T.One + e);
    }

    /// <summary>
    /// log(1 + x), accurate for tiny x (.NET's LogP1 is log(x + 1), which returns 0 for x below
    /// machine epsilon). Kahan's trick: with w = fl(1 + x), log(w) * x / (w - 1) cancels the
    /// rounding of 1 + x to first order.
    /// </summary>
    public static T Log1P<T>(T x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var w = T.One + x;
        if (w == T.One) return x; // log(1 + x) = x - x^2/2 + ..., and x^2/2 is below half an ulp of x
        if (T.IsPositiveInfinity(w)) return T.Log(w);
        return T.Log(w) * x / (w - T.One);
    }
}
