using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SigLip.Backends.TorchSharp;

/// <summary>The TorchSharp backends: "torch" (libtorch on the CPU) and "cuda" (libtorch on GPU 0).</summary>
public static class TorchBackends
{
    /// <summary>"torch": libtorch on the CPU.</summary>
    public const string CpuName = "torch";
    /// <summary>"cuda": libtorch on GPU 0.</summary>
    public const string CudaName = "cuda";

    /// <summary>Both providers, "torch" then "cuda", to register in a <see cref="BackendRegistry"/>.</summary>
    public static IReadOnlyList<IBackendProvider> Providers() => [new TorchBackendProvider(cuda: false), new TorchBackendProvider(cuda: true)];
}

/// <summary>Finds, probes and starts a TorchSharp backend on the CPU or on CUDA.</summary>
public sealed class TorchBackendProvider(bool cuda) : IBackendProvider
{
    /// <summary>True for "cuda", false for "torch".</summary>
    public bool IsCuda { get; } = cuda;

    /// <inheritdoc/>
    public string Name => IsCuda ? TorchBackends.CudaName : TorchBackends.CpuName;

    /// <inheritdoc/>
    public string Description => IsCuda
        ? "libtorch on CUDA through TorchSharp: float32 (default), bfloat16 (mixed precision: bf16 matmuls and attention, fp32 weights, LayerNorm and loss) or float64. libtorch from SIGLIP_LIBTORCH / --libtorch (e.g. PyTorch's torch/lib) or a -p:SigLipTorchCuda=true build"
        : "libtorch on the CPU through TorchSharp: float32 (default) or float64 (also bfloat16 mixed precision, for testing)";

    /// <summary>Whether libtorch (and for "cuda" a GPU) can be used here with SIGLIP_LIBTORCH or the packaged libtorch; if not, what was tried and what to set.</summary>
    public BackendAvailability Probe() => Probe(null);

    /// <summary>Probe with an explicit libtorch folder (the CLI's --libtorch); null: SIGLIP_LIBTORCH or the packaged one.</summary>
    public BackendAvailability Probe(string? libTorchFolder)
    {
        var problem = IsCuda ? LibTorchRuntime.CudaProblem(libTorchFolder) : LibTorchRuntime.CpuProblem(libTorchFolder);
        if (problem is not null) return new BackendAvailability(false, problem);
        return new BackendAvailability(true, IsCuda ? $"CUDA available ({TorchBackend.DescribeCuda()})" : "libtorch CPU loaded");
    }

    /// <summary>Loads libtorch (from <see cref="BackendOptions.LibTorchPath"/> when given), seeds it, and starts the backend in the asked dtype (float32 by default); throws <see cref="BackendUnavailableException"/> with the reason when it cannot.</summary>
    public IBackend Start(BackendOptions options)
    {
        var probe = Probe(options.LibTorchPath);
        if (!probe.CanStart) throw new BackendUnavailableException($"Backend '{Name}' cannot start: {probe.Reason}");
        var precision = Precision.For(options.DType);
        torch.manual_seed(options.Seed);
        if (IsCuda)
        {
            torch.cuda.manual_seed_all(options.Seed);
            // float32 means float32: cuDNN convolutions default to TF32 (10-bit mantissa), which would put
            // the patch embedding ~1e-3 off; bfloat16 mode runs its convolutions and matmuls in bf16 anyway.
            torch.backends.cudnn.allow_tf32 = false;
            torch.backends.cuda.matmul.allow_tf32 = false;
        }
        return new TorchBackend(Name, IsCuda ? CudaDevice(options.DeviceIndex) : torch.CPU, precision);
    }

    /// <summary>GPU <paramref name="index"/> (null: 0), or <see cref="BackendUnavailableException"/> naming how many there are.</summary>
    private static Device CudaDevice(int? index)
    {
        int k = index ?? 0;
        int count = torch.cuda.device_count();
        if (k < 0 || k >= count)
            throw new BackendUnavailableException(
                $"Backend 'cuda': GPU {k} was asked for (under MPI: this rank's local rank) but this machine has {count} GPU{(count == 1 ? "" : "s")} (0..{count - 1}). " +
                "Start at most one rank per GPU on each machine (e.g. mpirun --map-by ppr:<GPUs>:node), or set CUDA_VISIBLE_DEVICES.");
        return new Device(DeviceType.CUDA, k);
    }
}

/// <summary>A started TorchSharp backend: the loss and models on one device, in one precision.</summary>
public sealed class TorchBackend(string name, Device device, Precision precision) : IBackend
{
    /// <summary>Logits are handed back by <see cref="Loss"/> up to this batch size (n^2 doubles on the host).</summary>
    public const int MaxLogitsBatch = 4096;

    /// <inheritdoc/>
    public string Name { get; } = name;
    /// <summary>The libtorch device models and tensors live on.</summary>
    public Device TorchDevice { get; } = device;
    /// <summary>The parameter and compute dtypes.</summary>
    public Precision Precision { get; } = precision;
    /// <inheritdoc/>
    public string Device => TorchDevice.type == DeviceType.CUDA ? $"cuda:{TorchDevice.index} {DescribeCuda()}" : "cpu";
    /// <inheritdoc/>
    public DType DType => Precision.DType;

    /// <summary>
    /// The loss and its gradients by autograd. Inputs are cast to the master dtype (float32 for
    /// bfloat16 mixed precision: the loss is never computed in bf16).
    /// </summary>
    public LossResult Loss(HostTensor imageEmbeds, HostTensor textEmbeds, double logitScale, double logitBias, LossOptions options)
    {
        if (imageEmbeds.Rank != 2 || textEmbeds.Rank != 2 || !imageEmbeds.Shape.SequenceEqual(textEmbeds.Shape))
            throw new ArgumentException($"Loss: image embeddings {HostTensor.ShapeToString(imageEmbeds.Shape)} and text embeddings {HostTensor.ShapeToString(textEmbeds.Shape)} must both be [n, d] with the same n and d.");
        CheckLossInputs(imageEmbeds, textEmbeds, logitScale, logitBias, options);
        int n = imageEmbeds.Shape[0];
        // Up to the largest size that passed, once: a GPU's free memory afterwards no longer counts the caching allocator's reserve.
        long rows = options.Chunks > 1 ? (n + options.Chunks - 1) / options.Chunks : n; // the logits' side: what dominates
        if (rows > _largestLossRowsChecked && TorchMemory.Available(TorchDevice) is var (bytes, where))
        {
            ModelSize.CheckLossFits(n, imageEmbeds.Shape[1], options.Chunks, Precision.ParameterType == ScalarType.Float64 ? 8 : 4, bytes, where);
            _largestLossRowsChecked = rows;
        }
        return TorchMemory.Guard(() => ComputeLoss(imageEmbeds, textEmbeds, logitScale, logitBias, options),
            $"torch backend on {(TorchDevice.type == DeviceType.CUDA ? $"cuda:{TorchDevice.index}" : "cpu")}",
            $"the loss of {n:N0} pairs ({n:N0} x {n:N0} logits)", TorchMemory.SmallerBatch(n));
    }

    private long _largestLossRowsChecked;

    private LossResult ComputeLoss(HostTensor imageEmbeds, HostTensor textEmbeds, double logitScale, double logitBias, LossOptions options)
    {
        using var scope = NewDisposeScope();
        var dtype = Precision.ParameterType;
        var x = HostTensors.ToTorch(imageEmbeds, dtype, TorchDevice).requires_grad_();
        var y = HostTensors.ToTorch(textEmbeds, dtype, TorchDevice).requires_grad_();
        var scale = tensor(new[] { logitScale }, ScalarType.Float64).to(dtype, TorchDevice).requires_grad_();
        var bias = tensor(new[] { logitBias }, ScalarType.Float64).to(dtype, TorchDevice).requires_grad_();
        var loss = TorchLoss.Compute(x, y, scale, bias, options, dtype);
        loss.backward();
        HostTensor? logits = null;
        if (imageEmbeds.Shape[0] <= MaxLogitsBatch)
        {
            using var noGrad = no_grad();
            logits = HostTensors.ToHost(TorchLoss.LogitsPerImage(TorchLoss.Normalize(x, options.NormEpsilon), TorchLoss.Normalize(y, options.NormEpsilon), scale,
                options.Kind == LossKind.Sigmoid ? bias : null));
        }
        return new LossResult(
            HostTensors.ToDouble(loss),
            HostTensors.ToHost(x.grad!),
            HostTensors.ToHost(y.grad!),
            scale.grad is { } gs ? HostTensors.ToDouble(gs) : 0.0,
            bias.grad is { } gb ? HostTensors.ToDouble(gb) : 0.0,   // the softmax loss has no bias: its gradient is 0
            logits);
    }

    /// <summary>The reference's checks of host inputs (non-finite values, zero rows without epsilon, t' and b), same wording.</summary>
    private static void CheckLossInputs(HostTensor imageEmbeds, HostTensor textEmbeds, double logitScale, double logitBias, LossOptions options)
    {
        int n = imageEmbeds.Shape[0], d = imageEmbeds.Shape[1];
        foreach (var (name, t) in new[] { ("image_embeds", imageEmbeds), ("text_embeds", textEmbeds) })
        {
            for (int i = 0; i < t.Size; i++)
                if (!double.IsFinite(t.Data[i]))
                    throw new ArgumentException($"{name}[{i / d}, {i % d}] = {t.Data[i]} is not finite; embeddings must be finite numbers.");
            if (options.NormEpsilon == 0)
                for (int r = 0; r < n; r++)
                    if (t.Data.AsSpan(r * d, d).IndexOfAnyExcept(0.0) < 0)
                        throw new ArgumentException($"{name} row {r} is all zeros: it has no direction to normalise (with NormEpsilon = 0, HF's form); give it a non-zero embedding or set NormEpsilon > 0.");
        }
        if (!double.IsFinite(logitScale)) throw new ArgumentException($"logit_scale t' = {logitScale} is not finite; it must be a finite number (t = exp(t'), the paper starts at t' = ln 10).");
        if (!double.IsFinite(logitBias)) throw new ArgumentException($"logit_bias b = {logitBias} is not finite; it must be a finite number (the paper starts at b = -10).");
    }

    /// <inheritdoc/>
    public ISiglipModel CreateModel(SiglipConfig config, IReadOnlyDictionary<string, HostTensor> parameters, LockedTowers locked = LockedTowers.None) =>
        new TorchSiglipModel(config, Precision, TorchDevice, locked, parameters);

    /// <summary>
    /// A model initialised by libtorch itself (TorchSharp's default layer init; t' = ln 10, b = -10),
    /// without copying parameters from the host: for timing large configs.
    /// </summary>
    public TorchSiglipModel CreateRandomModel(SiglipConfig config, LockedTowers locked = LockedTowers.None) =>
        new(config, Precision, TorchDevice, locked, parameters: null);

    /// <summary>Nothing to release: models own their tensors.</summary>
    public void Dispose() { }

    /// <summary>The GPU's name from the NVIDIA driver, or "CUDA device" when it cannot be read.</summary>
    public static string DescribeCuda() => GpuInfo.Name() ?? "CUDA device";
}
