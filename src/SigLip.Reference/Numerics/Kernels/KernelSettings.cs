namespace SigLip.Reference.Numerics.Kernels;

/// <summary>Which implementation the layers run: the readable naive loops (the specification) or the fast kernels.</summary>
public enum KernelMode
{
    /// <summary>The naive, readable loops: the specification every fast kernel is tested against.</summary>
    Naive,

    /// <summary>Blocked SIMD kernels (Vector256 + FMA, packing, Parallel.For); equal to Naive within the bounds in docs/fast-path.md.</summary>
    Fast,
}

/// <summary>
/// Switches of the kernels: process-wide defaults, and scoped overrides (<see cref="UseMode"/>) that
/// only the calling logical flow sees (its awaits, tasks and Parallel.For workers), so that code which
/// needs the naive loops (golden generation, tests) never changes what another thread computes.
/// </summary>
public static class KernelSettings
{
    private static int threads = Environment.ProcessorCount;
    private static KernelMode defaultMode =
        string.Equals(Environment.GetEnvironmentVariable("SIGLIP_KERNELS"), "naive", StringComparison.OrdinalIgnoreCase)
            ? KernelMode.Naive : KernelMode.Fast;

    // Overrides of the current logical flow (AsyncLocal: they flow into tasks and Parallel.For workers
    // started inside the scope, and nowhere else).
    private static readonly AsyncLocal<KernelMode?> scopedMode = new();
    private static readonly AsyncLocal<bool?> scopedFallback = new();
    // Scopes open anywhere in the process. While it is 0 (almost always), the hot-path reads skip the
    // AsyncLocal lookup. A flow that opened a scope incremented this before setting its override, so it
    // always sees its own override.
    private static int openScopes;

    /// <summary>
    /// The kernels the layers dispatch to in the calling flow: the innermost <see cref="UseMode"/> scope
    /// of this flow if any, else the process default. Setting it sets the process default (every flow
    /// without a scope); prefer <see cref="UseMode"/>, which cannot change another thread's kernels.
    /// Fast by default: the fast kernels are proven equal to the naive ones in float64 within
    /// ~K·2^-52·Σ|a·b| per dot product of length K (far inside the golden tolerance 1e-11 + 1e-9|e|).
    /// Set SIGLIP_KERNELS=naive to run the readable loops everywhere.
    /// </summary>
    public static KernelMode Mode
    {
        get => Volatile.Read(ref openScopes) == 0 ? defaultMode : scopedMode.Value ?? defaultMode;
        set => defaultMode = value;
    }

    /// <summary>True when <see cref="Mode"/> is <see cref="KernelMode.Fast"/> in the calling flow.</summary>
    public static bool UseFastPath => Mode == KernelMode.Fast;

    /// <summary>
    /// Runs the calling logical flow (and the tasks and Parallel.For workers it starts) with
    /// <paramref name="mode"/> until the returned scope is disposed; other threads keep their kernels.
    /// Scopes nest; dispose on the flow that opened the scope (a using statement).
    /// </summary>
    public static IDisposable UseMode(KernelMode mode) => new Scope<KernelMode>(scopedMode, mode);

    /// <summary>Worker threads a parallel kernel uses (default: every core).</summary>
    public static int Threads
    {
        get => threads;
        set => threads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Kernel thread count must be at least 1.");
    }

    /// <summary>Tests only: true inside a <see cref="UseFallback"/> scope of the calling flow.</summary>
    internal static bool ForceFallback => Volatile.Read(ref openScopes) != 0 && scopedFallback.Value == true;

    /// <summary>Tests only: run the portable Vector&lt;T&gt; path as if AVX2/FMA were absent, in the calling flow only.</summary>
    internal static IDisposable UseFallback() => new Scope<bool>(scopedFallback, true);

    /// <summary>What the fast kernels run on: ISA and thread count, for reports.</summary>
    public static string Describe() =>
        $"{(System.Runtime.Intrinsics.X86.Avx2.IsSupported ? "AVX2" : "no AVX2")}" +
        $"{(System.Runtime.Intrinsics.X86.Fma.IsSupported ? "+FMA" : "")}" +
        $"{(System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? " (AVX-512F present, unused: Vector256 kernels)" : "")}, {Threads} threads";

    /// <summary>Sets an override of the current flow; disposing restores the one it replaced.</summary>
    private sealed class Scope<T> : IDisposable where T : struct
    {
        private readonly AsyncLocal<T?> _slot;
        private readonly T? _previous;
        private int _disposed;

        public Scope(AsyncLocal<T?> slot, T value)
        {
            _slot = slot;
            _previous = slot.Value;
            Interlocked.Increment(ref openScopes); // before the override: this flow must never skip it
            slot.Value = value;
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            _slot.Value = _previous;
            Interlocked.Decrement(ref openScopes);
        }
    }
}
