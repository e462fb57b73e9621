namespace SigLip.Reference.IO;

/// <summary>
/// Conversions between float64 and the 16-bit formats (IEEE half, bfloat16), rounding once,
/// directly from float64 to nearest with ties to even. Going through float32 first would round
/// twice and can be off by one unit in the last place, so neither format is reached via float.
/// </summary>
public static class FloatRounding
{
    // IEEE binary16: 10 stored mantissa bits, 5 exponent bits.
    private const int HalfMantissaBits = 10, HalfExponentBits = 5;
    // bfloat16: 7 stored mantissa bits, 8 exponent bits (float32's range).
    private const int BFloatMantissaBits = 7, BFloatExponentBits = 8;

    /// <summary>The IEEE float16 bit pattern nearest to <paramref name="value"/> (ties to even; overflow gives infinity).</summary>
    public static ushort ToHalfBits(double value) => Round(value, HalfMantissaBits, HalfExponentBits);
    /// <summary>The bfloat16 bit pattern nearest to <paramref name="value"/> (ties to even; overflow gives infinity).</summary>
    public static ushort ToBFloat16Bits(double value) => Round(value, BFloatMantissaBits, BFloatExponentBits);
    /// <summary>The value of an IEEE float16 bit pattern (exact).</summary>
    public static double FromHalfBits(ushort bits) => Decode(bits, HalfMantissaBits, HalfExponentBits);
    /// <summary>The value of a bfloat16 bit pattern (exact).</summary>
    public static double FromBFloat16Bits(ushort bits) => Decode(bits, BFloatMantissaBits, BFloatExponentBits);

    /// <summary>The float16 value nearest to <paramref name="value"/> (ties to even), as float64.</summary>
    public static double RoundToHalf(double value) => FromHalfBits(ToHalfBits(value));
    /// <summary>The bfloat16 value nearest to <paramref name="value"/> (ties to even), as float64.</summary>
    public static double RoundToBFloat16(double value) => FromBFloat16Bits(ToBFloat16Bits(value));
    /// <summary>The float32 value nearest to <paramref name="value"/> (ties to even), as float64.</summary>
    public static double RoundToSingle(double value) => (float)value;

    // A 16-bit float: sign | exponent (biased) | mantissa. Value = (1.m) * 2^(e - bias), or
    // (0.m) * 2^(1 - bias) when the exponent field is 0 (subnormal).
    private static ushort Round(double value, int mantissaBits, int exponentBits)
    {
        int bias = (1 << (exponentBits - 1)) - 1;
        int minExponent = 1 - bias, maxExponent = bias;
        ushort sign = (ushort)(BitConverter.DoubleToInt64Bits(value) < 0 ? 0x8000 : 0);
        ushort exponentMask = (ushort)(((1 << exponentBits) - 1) << mantissaBits);
        if (double.IsNaN(value)) return (ushort)(sign | exponentMask | (1 << (mantissaBits - 1)));
        double x = Math.Abs(value);
        if (double.IsPositiveInfinity(x)) return (ushort)(sign | exponentMask);
        if (x == 0) return sign;

        // Scale so that one unit in the last place of the target is 1, then round the integer part.
        // Scaling by a power of two is exact, and so is Math.Round on a double.
        int exponent = Math.Max(Math.ILogB(x), minExponent);
        double scaled = Math.ScaleB(x, mantissaBits - exponent);   // in [0, 2^(m+1))
        double mantissa = Math.Round(scaled, MidpointRounding.ToEven);
        if (mantissa >= 1 << (mantissaBits + 1))
        {
            // Rounded up into the next binade.
            mantissa /= 2;
            exponent++;
        }
        if (exponent > maxExponent) return (ushort)(sign | exponentMask);   // overflow: infinity, as IEEE rounding does
        if (mantissa < 1 << mantissaBits)
            return (ushort)(sign | (int)mantissa);                        // subnormal (exponent field 0), or zero
        return (ushort)(sign | ((exponent + bias) << mantissaBits) | ((int)mantissa - (1 << mantissaBits)));
    }

    private static double Decode(ushort bits, int mantissaBits, int exponentBits)
    {
        int bias = (1 << (exponentBits - 1)) - 1;
        bool negative = (bits & 0x8000) != 0;
        int exponentField = (bits >> mantissaBits) & ((1 << exponentBits) - 1);
        int mantissaField = bits & ((1 << mantissaBits) - 1);
        double magnitude;
        if (exponentField == (1 << exponentBits) - 1)
            magnitude = mantissaField == 0 ? double.PositiveInfinity : double.NaN;
        else if (exponentField == 0)
            magnitude = Math.ScaleB(mantissaField, 1 - bias - mantissaBits);
        else
            magnitude = Math.ScaleB((1 << mantissaBits) + mantissaField, exponentField - bias - mantissaBits);
        return negative ? -magnitude : magnitude;
    }
}
