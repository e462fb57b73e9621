using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;

namespace SigLip.Backends.Managed;

/// <summary>
/// Finds and starts the <c>managed</c> backend: the reference's towers and model on the fast managed
/// kernels (<see cref="ManagedOps"/>), float32 by default or float64, on <see cref="BackendOptions.Threads"/>
/// threads (default: every core). Always available: pure managed code.
/// </summary>
public sealed class ManagedBackendProvider : IBackendProvider
{
    /// <summary>"managed".</summary>
    public const string BackendName = "managed";

    /// <inheritdoc/>
    public string Name => BackendName;

    /// <inheritdoc/>
    public string Description => "fast managed CPU kernels (Vector256/Vector512 + FMA GEMM, TensorPrimitives, parallel), float32 (default) or float64; --threads sets the parallelism";

    /// <inheritdoc/>
    public BackendAvailability Probe() => new(true, $"always available (pure managed code; {ManagedBackend.DescribeCpu()})");

    /// <summary>Starts the backend in float32 (default) or float64; bfloat16 throws <see cref="BackendUnavailableException"/>, and so does a thread count below 1.</summary>
    public IBackend Start(BackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var dtype = options.DType ?? DType.Float32;
        if (dtype is not (DType.Float32 or DType.Float64))
            throw new BackendUnavailableException($"The managed backend computes in float32 (default) or float64; --dtype {dtype.Name()} was asked for. Use float32 or float64, or the torch/cuda backend for bfloat16.");
        int threads;
        try { threads = options.ThreadsOrAllCores(); }
        catch (ArgumentException e) { throw new BackendUnavailableException(e.Message, e); }
        return new ManagedBackend(dtype, threads);
    }
}

/// <summary>The started managed backend: a dtype and a thread count. Every model it creates gets its own <see cref="ManagedOps"/>.</summary>
public sealed class ManagedBackend : IBackend
{
    internal ManagedBackend(DType dtype, int threads)
    {
        DType = dtype;
        Threads = threads;
        _lossOps = new ManagedOps(dtype, threads);
    }

    private readonly ManagedOps _lossOps;

    /// <inheritdoc/>
    public string Name => ManagedBackendProvider.BackendName;

    /// <inheritdoc/>
    public string Device => $"cpu (managed kernels: {DescribeCpu()}, {Threads} thread{(Threads == 1 ? "" : "s")})";

    /// <inheritdoc/>
    public DType DType { get; }

    /// <summary>The most threads a kernel uses.</summary>
    public int Threads { get; }

    /// <inheritdoc/>
    public LossResult Loss(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions options)
    {
        lock (_lossOps) return _lossOps.PairwiseLoss(imageEmbeds, textEmbeds, logitScale, logitBias, options);
    }

    /// <inheritdoc/>
    public ISiglipModel CreateModel(SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, LockedTowers locked = LockedTowers.None) =>
        new ManagedSiglipModel(config, parameters, locked, new ManagedOps(DType, Threads));

    /// <summary>Nothing to release: everything is managed memory.</summary>
    public void Dispose() { }

    /// <summary>What the kernels run on: the vector instructions they use.</summary>
    public static string DescribeCpu() =>
        (Vector256.IsHardwareAccelerated && Fma.IsSupported ? "AVX2+FMA" : "portable Vector<T>, no AVX2+FMA") +
        (Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? ", AVX-512F GEMM micro-kernel" : Avx512F.IsSupported ? " (AVX-512F present, not accelerated: unused)" : "");
}

/// <summary>
/// The managed backend's model: the reference's <see cref="SiglipModel"/> with <see cref="ManagedOps"/>,
/// whose training steps reuse one <see cref="SiglipWorkspace"/> per batch shape, so a step allocates almost nothing.
/// </summary>
public sealed class ManagedSiglipModel : HostSiglipModel
{
    private SiglipWorkspace? _workspace;

    internal ManagedSiglipModel(SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, LockedTowers locked, ManagedOps ops)
        : base(config, parameters, locked, ops) { }

    /// <summary>One workspace per batch shape, reused by every training step (forward, loss and backward) of that shape.</summary>
    protected override SiglipWorkspace? WorkspaceFor(SiglipBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (_workspace is null || !_workspace.Fits(batch))
            _workspace = new SiglipWorkspace(Inner, batch.Size, batch.InputIds.Length);
        return _workspace;
    }
}
