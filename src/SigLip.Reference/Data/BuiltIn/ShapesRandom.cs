namespace SigLip.Reference.Data.BuiltIn;

/// <summary>
/// SplitMix64: a tiny seeded generator with the same output on every machine and runtime
/// (System.Random's algorithm is not a contract). Each example gets its own stream, derived from
/// (seed, split, index), so any example can be regenerated alone.
/// </summary>
internal sealed class ShapesRandom
{
    private ulong _state;

    public ShapesRandom(ulong seed) => _state = seed;

    /// <summary>A stream keyed by several integers (mixed, so nearby keys give unrelated streams).</summary>
    public static ShapesRandom For(params long[] keys)
    {
        ulong h = 0x9E3779B97F4A7C15UL;
        foreach (var k in keys) h = Mix(h ^ Mix((ulong)k + 0x632BE59BD9B4E019UL));
        return new ShapesRandom(h);
    }

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [lo, hi).</summary>
    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();

    /// <summary>Uniform integer in [0, n).</summary>
    public int Next(int n) => (int)((NextUInt64() >> 33) % (ulong)n);

    /// <summary>Standard normal (Box-Muller; one draw per call keeps the stream simple).</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(); // (0, 1]: log is finite
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>A uniformly shuffled permutation of 0..n-1 (Fisher-Yates).</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}
