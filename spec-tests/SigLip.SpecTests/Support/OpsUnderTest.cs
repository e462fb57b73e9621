using SigLip.Backends.Managed;
using SigLip.Backends.TorchSharp;
using SigLip.Reference.Backends;
using SigLip.Reference.Layers;
using SigLip.Reference.Numerics;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Support;

/// <summary>
/// The implementations of <see cref="ILayerOps"/> that the layer and model tests run on, by name, so
/// that one test body checks every backend that can start here: the reference loops (the
/// specification), the managed kernels (float64, and float32 for the forward values) and libtorch
/// (float64, <see cref="TorchLayerOps"/>). A test takes the name as an xunit theory argument
/// ([SkippableTheory], <see cref="Float64"/> as its MemberData) and calls <see cref="Get"/>: where libtorch
/// cannot start the torch case is reported as skipped with the reason, never as a pass.
/// </summary>
public static class OpsUnderTest
{
    public const string Reference = "reference";
    public const string ManagedFloat64 = "managed-float64";
    public const string ManagedFloat32 = "managed-float32";
    public const string TorchFloat64 = "torch-float64";

    /// <summary>Threads for the managed kernels: 2, so their parallel paths run too (where a size is big enough to split).</summary>
    public const int ManagedThreads = 2;

    /// <summary>Every float64 implementation: gradient checks and forward values at the float64 tolerances.</summary>
    public static TheoryData<string> Float64 => [Reference, ManagedFloat64, TorchFloat64];

    /// <summary>Every implementation, float32 included: forward values at the tolerance of each one's dtype (<see cref="ForwardTolerance"/>).</summary>
    public static TheoryData<string> All => [Reference, ManagedFloat64, TorchFloat64, ManagedFloat32];

    /// <summary>The implementation of this name, or a skip (with the reason) where it cannot start.</summary>
    public static ILayerOps Get(string name, ITestOutputHelper? output = null)
    {
        ILayerOps ops = name switch
        {
            Reference => ReferenceOps.Instance,
            ManagedFloat64 => new ManagedOps(DType.Float64, ManagedThreads),
            ManagedFloat32 => new ManagedOps(DType.Float32, ManagedThreads),
            TorchFloat64 => StartTorch(),
            _ => throw new ArgumentException($"no layer operations named '{name}'"),
        };
        output?.WriteLine($"layer operations: {name} ({ops.Name})");
        return ops;
    }

    private static TorchLayerOps StartTorch()
    {
        var problem = LibTorchRuntime.CpuProblem();
        Skip.If(problem is not null, $"libtorch cannot start on this machine, so the torch layer operations are not tested: {problem}");
        return TorchLayerOps.Instance;
    }

    /// <summary>
    /// How many generated cases a property test runs on this implementation: <paramref name="cases"/>,
    /// except on libtorch, where every primitive call is a round trip of ~0.2 ms through TorchSharp and
    /// a finite-difference check of a composite layer makes thousands of them: a sixth (at least 2), so
    /// the default test run stays short. The cases are drawn from the same generator and seed, and the
    /// tolerances are the same.
    /// </summary>
    public static int Cases(string name, int cases) => name == TorchFloat64 ? Math.Max(2, cases / 6) : cases;

    /// <summary>
    /// Which elements of a tensor of <paramref name="size"/> a finite-difference check looks at: all
    /// (null) except on libtorch, where 4 chosen at random from <paramref name="rng"/>, for the same
    /// reason as <see cref="Cases"/>.
    /// </summary>
    public static IReadOnlyList<int>? Elements(string name, SigLip.Reference.Numerics.DeterministicRandom rng, int size) =>
        name == TorchFloat64 ? Enumerable.Range(0, 4).Select(_ => rng.NextInt(size)).Distinct().ToArray() : null;

    /// <summary>The dtype the named implementation computes in.</summary>
    public static DType DTypeOf(string name) => name == ManagedFloat32 ? DType.Float32 : DType.Float64;

    /// <summary>
    /// The tolerance for a forward value of a float32 implementation against an exact (float64)
    /// expectation, |a - e| &lt;= atol + rtol |e|. Every input is rounded to float32 (relative error
    /// u = 2^-24 = 6e-8 each) and each of the few operations adds a few u; the tests' sums have at most
    /// ~30 terms of magnitude up to ~10, so errors stay below ~30 * 10 * 6e-8 = 2e-5 absolute in the
    /// worst case and ~1e-6 typically. rtol 1e-5 (~170 u) and atol 1e-5 hold that with margin; a wrong
    /// constant or formula moves values by 1e-4 or more.
    /// </summary>
    public static Tolerance Float32Forward { get; } = new(1e-5, 1e-5);

    /// <summary>
    /// The forward-value tolerance for this implementation: <paramref name="float64"/> (the test's own,
    /// stated at the test) for the float64 implementations, <see cref="Float32Forward"/> for float32.
    /// </summary>
    public static Tolerance ForwardTolerance(string name, Tolerance float64) =>
        DTypeOf(name) == DType.Float32 ? Float32Forward : float64;
}
