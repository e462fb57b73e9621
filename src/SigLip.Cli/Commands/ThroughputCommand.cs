using System.CommandLine;
using System.Diagnostics;
using SigLip.Backends.TorchSharp;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SigLip.Cli.Commands;

/// <summary>
/// `siglip throughput --backend cuda [--config b16] [--batch 256] [--steps N] [--dtype bfloat16]`: times the
/// SigLIP training step (forward, backward, global-norm clipping, AdamW) of a randomly initialised
/// model on a TorchSharp backend (torch or cuda; it takes the shared backend options, and any other
/// --backend, the shared default managed included, is refused with a message naming torch and cuda), and prints pairs/s, peak GPU memory and model-FLOPs utilisation
/// beside PyTorch's figure from ../shared/notes/anchors.md.
/// </summary>
internal static class ThroughputCommand
{
    /// <summary>HF SiglipModel B/16-224, batch 256, bf16 autocast, AdamW, eager, one H200 (anchors.md).</summary>
    private const double PyTorchH200PairsPerSecond = 1762;

    public static Command Create()
    {
        var backendOptions = new BackendCliOptions();
        var config = new Option<string>("--config") { Description = "b16 (SigLIP B/16-224, HF SiglipConfig() defaults), s16 (a small ViT-S/16-like model) or tiny (CPU smoke test).", DefaultValueFactory = _ => "b16" };
        var batch = new Option<int?>("--batch") { Description = "Pairs per step (default 256 on cuda, 8 on the CPU)." };
        var steps = new Option<int>("--steps") { Description = "Timed steps.", DefaultValueFactory = _ => 20 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed steps first (allocator, kernel selection).", DefaultValueFactory = _ => 3 };
        var chunks = new Option<int>("--chunks") { Description = "Chunks of the sigmoid loss (1 = dense).", DefaultValueFactory = _ => 1 };
        var command = new Command("throughput", "Time the SigLIP training step on a TorchSharp backend: --backend torch or cuda (pairs/s, peak GPU memory, model-FLOPs utilisation).");
        backendOptions.AddTo(command);
        foreach (var o in new Option[] { config, batch, steps, warmup, chunks }) command.Options.Add(o);
        command.SetAction(parse => Run(
            backendOptions.BackendName(parse), parse.GetValue(config)!, parse.GetValue(batch), parse.GetValue(steps), parse.GetValue(warmup),
            parse.GetValue(chunks), backendOptions.Options(parse)));
        return command;
    }

    /// <summary>The configs this command can time, by name.</summary>
    public static SiglipConfig ConfigByName(string name) => name.ToLowerInvariant() switch
    {
        "b16" or "b16-224" => SiglipConfig.Base16_224,
        "s16" => new SiglipConfig(
            new TextConfig(VocabSize: 32000, HiddenSize: 384, IntermediateSize: 1536, NumHiddenLayers: 12, NumAttentionHeads: 6, MaxPositionEmbeddings: 64),
            new VisionConfig(HiddenSize: 384, IntermediateSize: 1536, NumHiddenLayers: 12, NumAttentionHeads: 6)),
        "tiny" => new SiglipConfig(
            new TextConfig(VocabSize: 1000, HiddenSize: 64, IntermediateSize: 128, NumHiddenLayers: 2, NumAttentionHeads: 4, MaxPositionEmbeddings: 16),
            new VisionConfig(HiddenSize: 64, IntermediateSize: 128, NumHiddenLayers: 2, NumAttentionHeads: 4, ImageSize: 32, PatchSize: 8)),
        _ => throw new ArgumentException($"--config: unknown config '{name}'; expected b16, s16 or tiny."),
    };

    private static int Run(string backendName, string configName, int? batchOption, int steps, int warmup, int chunks, BackendOptions options)
    {
        var provider = TorchBackends.Providers().FirstOrDefault(p => string.Equals(p.Name, backendName, StringComparison.OrdinalIgnoreCase)) as TorchBackendProvider
            ?? throw new ArgumentException($"--backend {backendName}: `siglip throughput` times the TorchSharp backends only; pass --backend cuda (the GPU) or --backend torch (libtorch on the CPU).");
        if (steps < 1) throw new ArgumentException($"--steps must be at least 1, got {steps}.");
        if (warmup < 0) throw new ArgumentException($"--warmup must be 0 or more, got {warmup}.");
        var config = ConfigByName(configName);
        int batch = batchOption ?? (provider.IsCuda ? 256 : 8);
        if (batch < 1) throw new ArgumentException($"--batch must be at least 1, got {batch}.");
        // Refuse a batch that cannot fit before libtorch tries to allocate it: on the CPU against this machine's memory
        // (it used to crash the process), on a GPU against its free memory as NVML reports it (where NVML is absent the
        // check is skipped, and says so, and libtorch's out-of-memory is translated by the backend instead).
        if (!provider.IsCuda)
            ModelSize.CheckTrainingFits(config, batch, options.DType == DType.Float64 ? 8 : 4, maxBytes: null, option: "--batch");
        else
        {
            int gpu = options.DeviceIndex ?? 0;
            Console.WriteLine(ModelSize.CheckTrainingFitsGpu(config, batch, options.DType ?? DType.Float32, GpuInfo.FreeBytes(gpu), $"GPU {gpu}"));
        }

        var probe = provider.Probe(options.LibTorchPath);
        if (!probe.CanStart) throw new BackendUnavailableException($"Backend '{provider.Name}' cannot start on this machine: {probe.Reason}");
        long? memoryBefore = provider.IsCuda ? GpuInfo.UsedBytes() : null;
        using var backend = (TorchBackend)provider.Start(options);
        Console.WriteLine($"backend {backend.Name} on {backend.Device}, {backend.DType}; config {configName} ({ParameterLayout.Count(config):N0} parameters), batch {batch}, loss chunks {chunks}");

        using var model = backend.CreateRandomModel(config);
        using var data = RandomBatch(config, batch, backend);
        var loss = new LossOptions(Chunks: chunks);
        var settings = new AdamWSettings();
        const double learningRate = 1e-5;
        long peak = 0;
        void Sample() { if (provider.IsCuda && GpuInfo.UsedBytes() is { } used) peak = Math.Max(peak, used); }

        for (int i = 0; i < warmup; i++)
        {
            using var l = model.TrainStepWithoutSync(data, loss, settings, learningRate);
            if (i == 0) Console.WriteLine($"first step loss {l.item<float>():F4}");
            Sample();
        }
        Synchronize(provider.IsCuda);
        var clock = Stopwatch.StartNew();
        Tensor? last = null;
        for (int i = 0; i < steps; i++)
        {
            last?.Dispose();
            last = model.TrainStepWithoutSync(data, loss, settings, learningRate);
            Sample();
        }
        float finalLoss = last!.item<float>();   // waits for the last step
        Synchronize(provider.IsCuda);
        double seconds = clock.Elapsed.TotalSeconds;
        last.Dispose();
        Sample();

        double stepMs = seconds / steps * 1000;
        double pairsPerSecond = (double)batch * steps / seconds; // not batch * steps in int: that overflows past 2^31 pairs
        var flops = TrainingFlops.PerPair(config, batch);
        double achieved = flops.Total * pairsPerSecond;
        double matmulPeak = MeasureMatmulPeak(backend);
        Console.WriteLine($"loss after {(long)warmup + steps} steps {finalLoss:F4} (finite: {float.IsFinite(finalLoss)})");
        Console.WriteLine($"step {stepMs:F1} ms = {pairsPerSecond:N0} pairs/s ({steps} timed steps after {warmup} warm-up)");
        if (provider.IsCuda)
        {
            Console.WriteLine(peak > 0
                ? $"peak GPU memory in use {peak / Math.Pow(1024, 3):F1} GiB (NVML, whole device: tensors, the caching allocator's reserve and the CUDA context; {(memoryBefore ?? 0) / Math.Pow(1024, 3):F1} GiB were in use before the backend started)"
                : "peak GPU memory: unknown (NVML not available)");
        }
        Console.WriteLine($"model FLOPs per pair {Si(flops.Total)}FLOP = 3 x forward (backward = 2 x forward): 6 x matmul parameters x tokens " +
            $"(vision {Si(flops.VisionMatmul)}FLOP + text {Si(flops.TextMatmul)}FLOP; the token embedding table is a lookup, not counted) " +
            $"+ attention scores and values 12 x T^2 x H per layer ({Si(flops.Attention)}FLOP) + loss 6 x batch x D ({Si(flops.Loss)}FLOP)");
        Console.WriteLine($"achieved {Si(achieved)}FLOP/s; a large {MatmulDTypeName(backend)} matmul reaches {Si(matmulPeak)}FLOP/s here: {achieved / matmulPeak:P1} of it");
        if (provider.IsCuda && SpecPeak(backend.Device, backend.DType.Name()) is { } spec)
            Console.WriteLine($"model-FLOPs utilisation {achieved / spec.Flops:P1} of the {spec.Name} spec-sheet dense {backend.DType.Name()} peak {spec.Flops / 1e12:F0} TFLOP/s");
        bool comparable = provider.IsCuda && configName.StartsWith("b16", StringComparison.OrdinalIgnoreCase) && batch == 256 && backend.DType == DType.BFloat16;
        Console.WriteLine($"PyTorch 2.11 eager (HF SiglipModel B/16-224, batch 256, bf16 autocast, AdamW) on one H200: {PyTorchH200PairsPerSecond:N0} pairs/s, 29.0 GiB peak (anchors.md)" +
            (comparable ? $": this run is {pairsPerSecond / PyTorchH200PairsPerSecond:F2}x that{(backend.Device.Contains("H200") ? "" : " (but on another card)")}" : " (not comparable: another backend, config, batch or dtype)"));
        return 0;
    }

    /// <summary>1.23e12 -> "1.23 T".</summary>
    private static string Si(double value)
    {
        string[] prefixes = ["", "k", "M", "G", "T", "P"];
        int i = 0;
        while (Math.Abs(value) >= 1000 && i < prefixes.Length - 1) { value /= 1000; i++; }
        return $"{value:G3} {prefixes[i]}";
    }

    private static DeviceBatch RandomBatch(SiglipConfig config, int batch, TorchBackend backend)
    {
        var v = config.Vision;
        var pixels = (rand(batch, v.NumChannels, v.ImageSize, v.ImageSize, dtype: backend.Precision.ParameterType, device: backend.TorchDevice) * 2 - 1);
        var ids = randint(0, config.Text.VocabSize, [batch, config.Text.MaxPositionEmbeddings], dtype: ScalarType.Int64, device: backend.TorchDevice);
        return new DeviceBatch(pixels, ids);
    }

    private static void Synchronize(bool cuda)
    {
        if (cuda) torch.cuda.synchronize();
    }

    private static string MatmulDTypeName(TorchBackend backend) => backend.Precision.ComputeType switch
    {
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float64 => "fp64",
        _ => "fp32",
    };

    /// <summary>FLOP/s of a large square matmul in the compute dtype, measured now on the same device.</summary>
    private static double MeasureMatmulPeak(TorchBackend backend)
    {
        using var scope = NewDisposeScope();
        bool cuda = backend.TorchDevice.type == DeviceType.CUDA;
        int n = cuda ? 8192 : 1024, repeats = cuda ? 20 : 3;
        var a = randn(n, n, dtype: backend.Precision.ComputeType, device: backend.TorchDevice);
        var b = randn(n, n, dtype: backend.Precision.ComputeType, device: backend.TorchDevice);
        a.matmul(b).Dispose();
        Synchronize(cuda);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < repeats; i++) a.matmul(b).Dispose();
        Synchronize(cuda);
        return 2.0 * n * n * (double)n * repeats / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Dense (no sparsity) tensor-core peaks from NVIDIA's data sheets, for the cards the anchors name.</summary>
    private static (string Name, double Flops)? SpecPeak(string device, string dtype)
    {
        (string Key, double Bf16, double Fp32)[] cards =
        [
            ("H200", 989e12, 67e12), ("H100 PCIe", 756e12, 51e12), ("H100", 989e12, 67e12), ("A100", 312e12, 19.5e12),
        ];
        foreach (var (key, bf16, fp32) in cards)
            if (device.Contains(key, StringComparison.OrdinalIgnoreCase))
                return dtype == "bfloat16" ? (key, bf16) : dtype == "float32" ? (key, fp32) : null;
        return null;
    }
}

/// <summary>
/// Training FLOPs of one image-text pair: forward matmuls 2 x (weights x tokens), backward twice the
/// forward; attention's two batched matmuls (scores and weighted values) 2 x 2 x T^2 x H per layer forward.
/// </summary>
internal sealed record TrainingFlops(double VisionMatmul, double TextMatmul, double Attention, double Loss)
{
    public double Total => VisionMatmul + TextMatmul + Attention + Loss;

    public static TrainingFlops PerPair(SiglipConfig config, int batch)
    {
        var v = config.Vision;
        var t = config.Text;
        double Layer(int h, int m) => 4.0 * h * h + 2.0 * h * m;                  // q, k, v, out + fc1, fc2
        int n = v.NumPatches, l = t.MaxPositionEmbeddings, hv = v.HiddenSize, ht = t.HiddenSize;
        double visionPerToken = v.NumHiddenLayers * Layer(hv, v.IntermediateSize)
            + (double)v.NumChannels * v.PatchSize * v.PatchSize * hv               // patch embedding
            + 2.0 * hv * hv;                                                     // MAP head's k and v projections
        double visionProbe = 2.0 * hv * hv + 2.0 * hv * v.IntermediateSize;       // MAP head's q, out and MLP on one token
        double vision = 6 * (visionPerToken * n + visionProbe);
        double text = 6 * (t.NumHiddenLayers * Layer(ht, t.IntermediateSize) * l + (double)ht * t.ProjectionDim);
        double attention = 3 * (4.0 * v.NumHiddenLayers * n * n * hv + 4.0 * n * hv + 4.0 * t.NumHiddenLayers * l * l * ht);
        double loss = 3 * 2.0 * batch * config.EmbedDim;                         // one row of the batch x batch logits per pair
        return new TrainingFlops(vision, text, attention, loss);
    }
}
