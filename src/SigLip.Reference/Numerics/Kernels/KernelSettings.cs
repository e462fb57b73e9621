namespace SigLip.Reference.Numerics.Kernels;

/// <summary>Which implementation the layers run: the readable naive loops (the specification) or the fast kernels.</summary>
public enum KernelMode
{
    /// <summary>The naive, readable loops: the specification every fast kernel is tested against.</summary>
    Naive,

    /// <summary>Blocked SIMD kernels (Vector256 + FMA, packing, Parallel.For); equal to Naive within the bounds in docs/fast-path.md.</summary>
    Fast,
}

/// <summary>Process-wide switches of the kernels.</summary>
public static class KernelSettings
{
    private static int threads = Environment.ProcessorCount;

    /// <summary>
    /// The kernels the layers dispatch to. Fast by default: the fast kernels are proven equal to the naive
    /// ones in float64 within ~K·2^-52·Σ|a·b| per dot product of length K (far inside the golden
    /// tolerance 1e-11 + 1e-9|e|). Set SIGLIP_KERNELS=naive to run the readable loops everywhere.
    /// </summary>
    public static KernelMode Mode { get; set; } =
        string.Equals(Environment.GetEnvironmentVariable("SIGLIP_KERNELS"), "naive", StringComparison.OrdinalIgnoreCase)
            ? KernelMode.Naive : KernelMode.Fast;

    /// <summary>True when <see cref="Mode"/> is <see cref="KernelMode.Fast"/>.</summary>
    public static bool UseFastPath => Mode == KernelMode.Fast;

    /// <summary>Worker threads a parallel kernel uses (default: every core).</summary>
    public static int Threads
    {
        get => threads;
        set => threads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Kernel thread count must be at least 1.");
    }

    /// <summary>Tests only: run the portable Vector&lt;T&gt; path as if AVX2/FMA were absent.</summary>
    internal static bool ForceFallback { get; set; }

    /// <summary>What the fast kernels run on: ISA and thread count, for reports.</summary>
    public static string Describe() =>
        $"{(System.Runtime.Intrinsics.X86.Avx2.IsSupported ? "AVX2" : "no AVX2")}" +
        $"{(System.Runtime.Intrinsics.X86.Fma.IsSupported ? "+FMA" : "")}" +
        $"{(System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? " (AVX-512F present, unused: Vector256 kernels)" : "")}, {Threads} threads";
}
