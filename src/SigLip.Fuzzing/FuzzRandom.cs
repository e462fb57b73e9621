namespace SigLip.Fuzzing;

/// <summary>
/// The fuzzer's random numbers: SplitMix64, written out here so that a case replays bit for bit on any
/// .NET version (System.Random's algorithms are not a promise across versions).
/// </summary>
public sealed class FuzzRandom(ulong state)
{
    private ulong _state = state;

    /// <summary>
    /// The seed of one case, from the run's seed, the format's name and the case's index, so that any single
    /// case can be replayed without running the ones before it.
    /// </summary>
    public static ulong CaseSeed(long runSeed, string format, long caseIndex)
    {
        ulong h = 0xCBF29CE484222325UL; // FNV-1a of the format name: a stable hash (string.GetHashCode is randomised per process)
        foreach (char c in format) { h ^= c; h *= 0x100000001B3UL; }
        return Mix(Mix((ulong)runSeed ^ h) ^ (ulong)caseIndex);
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        ulong z = _state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A number in [0, n); n must be positive.</summary>
    public int Next(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), $"n must be positive, got {n}.");
        return (int)(NextUInt64() % (ulong)n);
    }

    /// <summary>A number in [lo, hi).</summary>
    public int Next(int lo, int hi) => lo + Next(hi - lo);

    /// <summary>True with probability 1 / n.</summary>
    public bool OneIn(int n) => Next(n) == 0;

    public byte NextByte() => (byte)NextUInt64();

    public T Pick<T>(IReadOnlyList<T> items) => items[Next(items.Count)];
}
