using FsCheck;
using FsCheck.Fluent;
using SigLip.Reference.IO;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.IO;

/// <summary>
/// float64 -> float16 / bfloat16 must round once, to nearest, ties to even. The oracle is
/// independent of the converter: the result must be at least as close as both of its neighbours
/// in the target format, and on a tie it must be the one with an even last bit.
/// </summary>
public sealed class FloatRoundingTests(ITestOutputHelper output)
{
    public static TheoryData<string> Formats => new() { "F16", "BF16" };

    private static (Func<double, ushort> encode, Func<ushort, double> decode) Format(string name) => name == "F16"
        ? (FloatRounding.ToHalfBits, FloatRounding.FromHalfBits)
        : (FloatRounding.ToBFloat16Bits, FloatRounding.FromBFloat16Bits);

    private static bool IsNearestTiesToEven(double x, ushort bits, Func<ushort, double> decode, ushort infBits)
    {
        double r = decode(bits);
        if (double.IsNaN(x)) return double.IsNaN(r);
        if (x == 0) return r == 0 && double.IsNegative(r) == double.IsNegative(x);
        if (double.IsNegative(r) != double.IsNegative(x)) return false;
        ushort magnitude = (ushort)(bits & 0x7FFF);
        ushort sign = (ushort)(bits & 0x8000);
        double ax = Math.Abs(x);
        if (magnitude == infBits)
        {
            // Overflow: x must be at or beyond the midpoint between the largest finite value and the
            // next power of two (IEEE's rule for rounding to infinity).
            double maxFinite = decode((ushort)(infBits - 1));
            double ulp = maxFinite - decode((ushort)(infBits - 2));
            return ax >= maxFinite + ulp / 2;
        }
        double err = Math.Abs(Math.Abs(r) - ax);
        foreach (int neighbour in new[] { magnitude - 1, magnitude + 1 })
        {
            if (neighbour < 0 || neighbour > infBits) continue;
            double n = neighbour == infBits ? double.PositiveInfinity : decode((ushort)(neighbour | sign)) is var d ? Math.Abs(d) : 0;
            double nErr = Math.Abs(n - ax);
            if (nErr < err) return false;
            if (nErr == err && (magnitude & 1) != 0) return false;   // a tie must go to the even one
        }
        return true;
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Conversion_from_float64_rounds_to_nearest_ties_to_even(string format)
    {
        var (encode, decode) = Format(format);
        ushort infBits = format == "F16" ? (ushort)0x7C00 : (ushort)0x7F80;
        // Doubles spread over every binade the format has (including subnormals and overflow), plus
        // exact midpoints between neighbours, which are where a careless converter goes wrong.
        var anyDouble = from mantissa in Gen.Choose(0, int.MaxValue)
                        from exponent in Gen.Choose(format == "F16" ? -30 : -140, format == "F16" ? 17 : 129)
                        from negative in ArbMap.Default.GeneratorFor<bool>()
                        select (negative ? -1 : 1) * Math.ScaleB(1 + mantissa / (double)int.MaxValue, exponent);
        var midpoint = from bits in Gen.Choose(0, infBits - 2)
                       select (decode((ushort)bits) + decode((ushort)(bits + 1))) / 2;
        var special = Gen.Elements(0.0, -0.0, double.NaN, double.PositiveInfinity, double.NegativeInfinity, double.Epsilon, double.MaxValue, -double.MaxValue);
        var gen = Gen.Frequency((6, anyDouble), (3, midpoint), (1, special));
        Props.Check(gen, x => IsNearestTiesToEven(x, encode(x), decode, infBits), seed: 7001UL, output, maxTest: 20000);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Every_representable_value_converts_exactly(string format)
    {
        var (encode, decode) = Format(format);
        for (int bits = 0; bits <= 0xFFFF; bits++)
        {
            double v = decode((ushort)bits);
            if (double.IsNaN(v)) { Assert.True(double.IsNaN(decode(encode(v)))); continue; }
            Assert.Equal((ushort)bits, encode(v));
        }
    }

    [Fact]
    public void BFloat16_rounds_once_from_float64_not_through_float32()
    {
        // 1 + 2^-8 is the midpoint between bfloat16's 1 and 1 + 2^-7; a little more must round up.
        // Through float32 the extra 2^-30 would be lost and the tie would go down to 1.
        Assert.Equal(1.0, FloatRounding.RoundToBFloat16(1 + Math.ScaleB(1, -8)));
        Assert.Equal(1 + Math.ScaleB(1, -7), FloatRounding.RoundToBFloat16(1 + Math.ScaleB(1, -8) + Math.ScaleB(1, -30)));
        Assert.Equal(1 + Math.ScaleB(1, -6), FloatRounding.RoundToBFloat16(1 + 3 * Math.ScaleB(1, -8)));   // tie goes to even
    }

    [Fact]
    public void Float16_edges()
    {
        Assert.Equal(65504.0, FloatRounding.RoundToHalf(65504.0));
        Assert.Equal(65504.0, FloatRounding.RoundToHalf(65519.99));
        Assert.Equal(double.PositiveInfinity, FloatRounding.RoundToHalf(65520.0));
        Assert.Equal(Math.ScaleB(1, -24), FloatRounding.RoundToHalf(Math.ScaleB(1, -24)));       // smallest subnormal
        Assert.Equal(0.0, FloatRounding.RoundToHalf(Math.ScaleB(1, -25)));                       // tie to even (0)
        Assert.Equal(Math.ScaleB(1, -24), FloatRounding.RoundToHalf(Math.ScaleB(1.0000001, -25)));
        Assert.True(double.IsNegative(FloatRounding.RoundToHalf(-1e-30)));
    }
}
