namespace SigLip.Backends.Managed.Kernels;

/// <summary>Per-thread scratch rows, so steady-state kernels allocate nothing.</summary>
internal static class Scratch<T> where T : unmanaged
{
    [ThreadStatic] private static T[]? first;
    [ThreadStatic] private static T[]? second;
    [ThreadStatic] private static T[]? third;

    public static T[] First(int length) => Get(ref first, length);
    public static T[] Second(int length) => Get(ref second, length);
    public static T[] Third(int length) => Get(ref third, length);

    private static T[] Get(ref T[]? buffer, int length)
    {
        if (buffer is null || buffer.Length < length) buffer = new T[Math.Max(length, 64)];
        return buffer;
    }
}

/// <summary>Splits [0, count) into contiguous ranges run across the cores when the work is large enough.</summary>
internal static class Ranges
{
    /// <summary>Runs body(start, end) over ranges on at most <paramref name="threads"/> threads (0: every core); serial when count * costPerItem is small.</summary>
    public static void For(int threads, int count, long costPerItem, Action<int, int> body)
    {
        threads = Threads.Resolve(threads);
        if (count <= 0) return;
        if (threads == 1 || count == 1 || (long)count * costPerItem < 1L << 16)
        {
            body(0, count);
            return;
        }
        // A few chunks per thread: balances noisy, shared cores without much scheduling cost.
        int chunks = Math.Min(count, threads * 4);
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, ch =>
        {
            int lo = (int)((long)count * ch / chunks), hi = (int)((long)count * (ch + 1) / chunks);
            if (hi > lo) body(lo, hi);
        });
    }
}

internal static class Check
{
    public static void Length(string kernel, string name, int actual, long needed)
    {
        if (actual < needed)
            throw new ArgumentException($"{kernel}: buffer '{name}' has {actual} elements but the sizes given need {needed}.");
    }

    public static void FloatType<T>(string kernel)
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double))
            throw new NotSupportedException($"{kernel} supports float and double, not {typeof(T).Name}.");
    }
}

/// <summary>The thread count a kernel was given: 0 (or less) means every core.</summary>
internal static class Threads
{
    public static int Resolve(int threads) => threads >= 1 ? threads : Environment.ProcessorCount;
}
