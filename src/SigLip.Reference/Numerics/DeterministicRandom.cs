namespace SigLip.Reference.Numerics;

/// <summary>
/// A seeded pseudo-random generator that gives the same numbers on every machine and runtime:
/// xoshiro256** seeded through SplitMix64, uniform doubles from the top 53 bits, Gaussians by
/// Box-Muller. System.Random's sequence is not promised to stay the same across .NET versions,
/// which would make initialisations and golden cases drift.
/// </summary>
public sealed class DeterministicRandom
{
    private ulong _s0, _s1, _s2, _s3;
    private double? _spareGaussian;

    /// <summary>A generator whose whole sequence is fixed by <paramref name="seed"/> (any value, 0 included).</summary>
    public DeterministicRandom(long seed)
    {
        // SplitMix64 spreads any seed (0 included) over the 256-bit state; xoshiro needs a non-zero state.
        ulong x = unchecked((ulong)seed);
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
    }

    private static ulong SplitMix64(ref ulong x)
    {
        unchecked
        {
            x += 0x9E3779B97F4A7C15UL;
            ulong z = x;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    /// <summary>The next 64 random bits (xoshiro256**).</summary>
    public ulong NextUInt64()
    {
        unchecked
        {
            ulong result = RotateLeft(_s1 * 5, 7) * 9;
            ulong t = _s1 << 17;
            _s2 ^= _s0;
            _s3 ^= _s1;
            _s1 ^= _s2;
            _s0 ^= _s3;
            _s2 ^= t;
            _s3 = RotateLeft(_s3, 45);
            return result;
        }
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));

    /// <summary>Uniform in [0, 1), a multiple of 2^-53.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [low, high).</summary>
    public double NextDouble(double low, double high) => low + (high - low) * NextDouble();

    /// <summary>Uniform integer in [0, maxExclusive) (unbiased: rejection sampling).</summary>
    public int NextInt(int maxExclusive)
    {
        if (maxExclusive <= 0) throw new ArgumentOutOfRangeException(nameof(maxExclusive), $"must be positive, got {maxExclusive}.");
        ulong bound = (ulong)maxExclusive;
        ulong limit = ulong.MaxValue - ulong.MaxValue % bound;
        ulong r;
        do r = NextUInt64(); while (r >= limit);
        return (int)(r % bound);
    }

    /// <summary>Uniform integer in [minInclusive, maxExclusive).</summary>
    public int NextInt(int minInclusive, int maxExclusive) => minInclusive + NextInt(maxExclusive - minInclusive);

    /// <summary>Standard normal (mean 0, std 1), Box-Muller; the second value of each pair is kept for the next call.</summary>
    public double NextGaussian()
    {
        if (_spareGaussian is { } spare)
        {
            _spareGaussian = null;
            return spare;
        }
        double u1 = 1.0 - NextDouble(); // (0, 1]: log(u1) is finite
        double u2 = NextDouble();
        double radius = Math.Sqrt(-2.0 * Math.Log(u1));
        double angle = 2.0 * Math.PI * u2;
        _spareGaussian = radius * Math.Sin(angle);
        return radius * Math.Cos(angle);
    }

    /// <summary>Normal with the given mean and standard deviation.</summary>
    public double NextGaussian(double mean, double std) => mean + std * NextGaussian();

    /// <summary>Fills <paramref name="values"/> with normal samples.</summary>
    public void FillGaussian(double[] values, double std = 1.0, double mean = 0.0)
    {
        for (int i = 0; i < values.Length; i++) values[i] = mean + std * NextGaussian();
    }

    /// <summary>Fills <paramref name="values"/> with uniform samples in [low, high).</summary>
    public void FillUniform(double[] values, double low, double high)
    {
        for (int i = 0; i < values.Length; i++) values[i] = NextDouble(low, high);
    }
}
