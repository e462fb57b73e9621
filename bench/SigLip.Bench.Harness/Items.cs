using SigLip.Backends.Managed;
using SigLip.Backends.Managed.Kernels;
using SigLip.Backends.TorchSharp;
using SigLip.Backends.TorchSharp.Modules;
using SigLip.Reference.Backends;
using SigLip.Reference.Layers;
using SigLip.Reference.Models;
using SigLip.Reference.Training;
using TorchSharp;
using static TorchSharp.torch;
using HostTensor = SigLip.Reference.Tensor;
using NamedTensors = SigLip.Reference.NamedTensors;
using SiglipBatch = SigLip.Reference.SiglipBatch;

namespace SigLip.Bench.Harness;

/// <summary>What every item needs: the timing settings, why libtorch cannot run (null: it can), the thread count.</summary>
internal sealed record ItemContext(TimingSettings Settings, string? TorchProblem, int Threads);

/// <summary>The bench's items. Each side runs its backend's own code; the data are seeded, so runs are comparable.</summary>
internal static class Items
{
    /// <summary>The training step's allocation target (issue 8): a steady-state step of the managed backend's model allocates under 1 MB.</summary>
    public const long AllocationLimitBytes = 1_000_000;

    // ------------------------------------------------------------------ matmul

    /// <summary>C = A B, float32, n x n x n: the managed GEMM against libtorch's matmul.</summary>
    public static BenchItem MatMul(int n, ItemContext c)
    {
        string name = $"matmul {n}x{n}x{n}";
        var a = Data.RandomFloats(n * n, 1);
        var b = Data.RandomFloats(n * n, 2);
        var product = new float[n * n];
        void Managed() => Backends.Managed.Kernels.MatMul.AB(product, a, b, n, n, n, threads: c.Threads);
        double flops = 2.0 * n * n * n;
        if (c.TorchProblem is not null)
            return Make(name, "float32", Timer.Time(Managed, null, c.Settings, Timer.MatMulRepeatScale), null, null, null, $"libtorch unavailable: {c.TorchProblem}", flops);
        using var ta = torch.tensor(a, [n, n]);
        using var tb = torch.tensor(b, [n, n]);
        void Torch()
        {
            using var scope = torch.NewDisposeScope();
            _ = ta.matmul(tb);
        }
        var ms = Timer.Time(Managed, Torch, c.Settings, Timer.MatMulRepeatScale);
        string agreement;
        using (var scope = torch.NewDisposeScope())
            agreement = $"max|managed - libtorch| / max|libtorch| = {Data.RelativeGap(Data.Widen(product), Data.FromTorch(ta.matmul(tb))):E1}";
        return Make(name, "float32", ms, "GFLOP/s >= 0.7x libtorch (ratio <= 1.43)", r => r <= 1 / 0.7, agreement,
            "managed: Kernels.MatMul.AB; libtorch: matmul", flops);
    }

    // ------------------------------------------------------------------ loss

    /// <summary>
    /// The dense sigmoid loss of unnormalised [n, d] embeddings, forward and backward, float32: the
    /// managed backend's <see cref="ManagedLoss.SigmoidDense"/> (what its ops run) against the torch
    /// backend's <see cref="TorchLoss.Compute"/> with autograd. The L2 normalisation and its backward are part of the work on both sides.
    /// </summary>
    public static BenchItem Loss(int n, int d, ItemContext c)
    {
        string name = $"sigmoid loss fwd+bwd n={n} d={d}";
        double logitScale = Math.Log(10), logitBias = -10;
        var options = LossOptions.Default;
        var x = Data.RandomFloats(n * d, 3);
        var y = Data.RandomFloats(n * d, 4);
        ManagedLossResult<float>? managed = null;
        void Managed() => managed = ManagedLoss.SigmoidDense(x, y, n, d, logitScale, logitBias, options.NormEpsilon, c.Threads);
        const string note = "managed: ManagedLoss.SigmoidDense (L2Normalize + SigmoidLossKernels, logits in slabs of <= 2^20 elements); libtorch: TorchLoss.Compute (the dense loss) with autograd";
        if (c.TorchProblem is not null)
            return Make(name, "float32", Timer.Time(Managed, null, c.Settings), null, null, null, $"libtorch unavailable: {c.TorchProblem}; {note}");
        using var tx = torch.tensor(x, [n, d]).requires_grad_();
        using var ty = torch.tensor(y, [n, d]).requires_grad_();
        using var tScale = torch.tensor(new[] { (float)logitScale }).requires_grad_();
        using var tBias = torch.tensor(new[] { (float)logitBias }).requires_grad_();
        double torchLoss = 0;
        void Torch()
        {
            using var scope = torch.NewDisposeScope();
            foreach (var p in new[] { tx, ty, tScale, tBias }) p.grad?.zero_();
            var loss = TorchLoss.Compute(tx, ty, tScale, tBias, options, ScalarType.Float32);
            loss.backward();
            torchLoss = loss.item<float>();
        }
        var ms = Timer.Time(Managed, Torch, c.Settings);
        var m = managed!;
        string agreement = $"loss {m.Loss:G6} vs {torchLoss:G6}; dL/dx max rel gap {Data.RelativeGap(Data.Widen(m.GradImageEmbeds), Data.FromTorch(tx.grad!)):E1}; " +
            $"dL/dt' {m.GradLogitScale:G5} vs {tScale.grad!.item<float>():G5}; dL/db {m.GradLogitBias:G5} vs {tBias.grad!.item<float>():G5}";
        return Make(name, "float32", ms, "time <= 1.5x libtorch", r => r <= 1.5, agreement, note);
    }

    // ------------------------------------------------------------------ encoder layer

    /// <summary>
    /// One pre-LN encoder layer at B/16 width (768 wide, 12 heads, MLP 3072), batch 8 x 196 tokens,
    /// forward and backward of sum(y * dy), in <paramref name="dtype"/> on both sides: the reference's
    /// <see cref="EncoderLayer"/> on the managed backend's <see cref="ManagedOps"/> against the torch
    /// backend's <see cref="SiglipEncoderLayer"/> module with autograd, both built from the same
    /// HF-named parameters.
    /// </summary>
    public static BenchItem Layer(DType dtype, ItemContext c)
    {
        const int batch = 8, tokens = 196, width = 768, heads = 12, intermediate = 3072;
        const double epsilon = 1e-6;
        const string prefix = "layer.";
        string name = $"encoder layer fwd+bwd B/16 width, batch 8x196, {dtype.Name()}";
        int rows = batch * tokens;
        var parameters = Data.EncoderLayerParameters(prefix, width, intermediate, seed: 10);
        var x = Data.Widen(Data.RandomFloats(rows * width, 30));
        var dy = Data.Widen(Data.RandomFloats(rows * width, 31));
        var dx = new double[rows * width];

        var ops = new ManagedOps(dtype, c.Threads);
        var weights = EncoderLayerWeights.From(parameters, prefix.TrimEnd('.'));
        var grads = new EncoderLayerWeights(new NormWeights(new double[width], new double[width]), AttentionWeights.Zeros(width),
            new NormWeights(new double[width], new double[width]), MlpWeights.Zeros(width, intermediate));
        var gradArrays = new[] { grads.Norm1.Weight, grads.Norm1.Bias, grads.Attention.QueryWeight, grads.Attention.QueryBias, grads.Attention.KeyWeight,
            grads.Attention.KeyBias, grads.Attention.ValueWeight, grads.Attention.ValueBias, grads.Attention.OutWeight, grads.Attention.OutBias,
            grads.Norm2.Weight, grads.Norm2.Bias, grads.Mlp.Fc1Weight, grads.Mlp.Fc1Bias, grads.Mlp.Fc2Weight, grads.Mlp.Fc2Bias };
        var saved = new EncoderLayerSaved(batch, tokens, width, heads, intermediate);
        var scratch = new EncoderLayerScratch(rows, width, intermediate);
        void Managed()
        {
            foreach (var g in gradArrays) Array.Clear(g);
            Array.Clear(dx);
            EncoderLayer.Forward(saved, x, weights, batch, tokens, width, heads, intermediate, epsilon, ops);
            EncoderLayer.Backward(dx, grads, dy, saved, x, weights, batch, tokens, width, heads, intermediate, scratch, ops);
        }
        string note = $"managed: the reference's Layers/EncoderLayer on ManagedOps ({ops.Name}), activations and scratch allocated once";
        if (c.TorchProblem is not null)
            return Make(name, dtype.Name(), Timer.Time(Managed, null, c.Settings), null, null, null, $"libtorch unavailable: {c.TorchProblem}; {note}");

        var precision = Precision.For(dtype);
        using var module = new SiglipEncoderLayer(width, intermediate, heads, epsilon, precision);
        module.to(precision.ParameterType);
        ModuleParameters.Load(module, parameters, prefix);
        var named = module.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        using var tx = HostTensors.ToTorch(new HostTensor([batch, tokens, width], x), precision.ParameterType, CPU).requires_grad_();
        using var tdy = HostTensors.ToTorch(new HostTensor([batch, tokens, width], dy), precision.ParameterType, CPU);
        void Torch()
        {
            using var scope = torch.NewDisposeScope();
            module.zero_grad();
            tx.grad?.zero_();
            var output = module.call(tx);
            (output * tdy).sum().backward();
        }
        var ms = Timer.Time(Managed, Torch, c.Settings);
        string agreement = $"dx max rel gap {Data.RelativeGap(dx, Data.FromTorch(tx.grad!)):E1}; " +
            $"dW(fc1) {Data.RelativeGap(grads.Mlp.Fc1Weight, Data.FromTorch(named["mlp.fc1.weight"].grad!)):E1}; " +
            $"dW(q) {Data.RelativeGap(grads.Attention.QueryWeight, Data.FromTorch(named["self_attn.q_proj.weight"].grad!)):E1}";
        return Make(name, dtype.Name(), ms, null, null, agreement,
            note + "; libtorch: the torch backend's SiglipEncoderLayer module (fused QKV, scaled_dot_product_attention) with autograd");
    }

    // ------------------------------------------------------------------ training step

    /// <summary>
    /// One step of `siglip train`'s default recipe (BuiltInRecipe: its config, batch size and AdamW
    /// settings) on one fixed batch, ForwardBackward + OptimizerStep through the backend contract:
    /// the managed backend's model against the torch backend's model, both in <paramref name="dtype"/>.
    /// Also measures the managed step's steady-state allocation (target under 1 MB).
    /// </summary>
    public static BenchItem TrainingStep(DType dtype, ItemContext c)
    {
        string name = $"training step, built-in model, {dtype.Name()}";
        var config = BuiltInRecipe.Config();
        var recipe = BuiltInRecipe.Settings;
        var adamW = recipe.Optimizer ?? new AdamWSettings();
        var parameters = ModelInit.Random(config, recipe.Seed);
        SiglipBatch batch;
        using (var stream = new BatchStream(BuiltInRecipe.TrainData(), BuiltInRecipe.Tokenizer(), recipe.Seed, recipe.BatchSize,
                   config.Text.MaxPositionEmbeddings, config.Vision.NumChannels, config.Vision.ImageSize))
            batch = stream.Next();
        using var managedBackend = new ManagedBackendProvider().Start(new BackendOptions(DType: dtype, Threads: c.Threads));
        using var managed = managedBackend.CreateModel(config, parameters);
        double managedLoss = 0, torchLoss = 0;
        void Managed()
        {
            managedLoss = managed.ForwardBackward(batch, LossOptions.Default, collectOutputs: false).Loss;
            managed.OptimizerStep(adamW, recipe.LearningRate);
        }
        string what = $"batch {recipe.BatchSize}, width {config.Vision.HiddenSize}, {config.Vision.NumHiddenLayers}+{config.Text.NumHiddenLayers} layers, " +
            $"{config.Vision.ImageSize}px/{config.Vision.PatchSize}, text {config.Text.MaxPositionEmbeddings}; managed: the managed backend's model ({managedBackend.Device}); libtorch: the torch backend's model";
        const string target = "time <= 2x libtorch";
        if (c.TorchProblem is not null)
            return WithAllocation(Make(name, dtype.Name(), Timer.Time(Managed, null, c.Settings), null, null, null, $"libtorch unavailable: {c.TorchProblem}; {what}"), Managed);
        using var torchBackend = TorchBackends.Providers().First(p => p.Name == TorchBackends.CpuName).Start(new BackendOptions(DType: dtype));
        using var libtorch = torchBackend.CreateModel(config, parameters);
        void Torch()
        {
            torchLoss = libtorch.ForwardBackward(batch, LossOptions.Default, collectOutputs: false).Loss;
            libtorch.OptimizerStep(adamW, recipe.LearningRate);
        }
        // Agreement first, on the first step from identical parameters.
        Managed();
        Torch();
        string agreement = $"first-step loss {managedLoss:R} vs {torchLoss:R}";
        var ms = Timer.Time(Managed, Torch, c.Settings);
        return WithAllocation(Make(name, dtype.Name(), ms, target, r => r <= 2, agreement, what), Managed);
    }

    /// <summary>
    /// The managed step's allocation: after the timing's warm-up, the quietest of 3 windows of 5 steps,
    /// <c>GC.GetTotalAllocatedBytes(precise: true)</c> (all threads) per step.
    /// </summary>
    private static BenchItem WithAllocation(BenchItem item, Action step)
    {
        for (int i = 0; i < 3; i++) step();
        long perStep = long.MaxValue;
        for (int w = 0; w < 3; w++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < 5; i++) step();
            perStep = Math.Min(perStep, (GC.GetTotalAllocatedBytes(precise: true) - before) / 5);
        }
        return item with
        {
            ManagedAllocatedBytesPerStep = perStep,
            AllocationTarget = $"managed < {AllocationLimitBytes:N0} bytes per step",
            AllocationMet = perStep < AllocationLimitBytes,
        };
    }

    // ------------------------------------------------------------------ results

    private static BenchItem Make(string name, string dtype, Timing ms, string? target, Func<double, bool>? meets,
        string? agreement, string? note, double? flops = null)
    {
        double? ratio = ms.Torch is { } t ? ms.Managed / t : null;
        double? ratioBack = ms.TorchBackToBack is { } tb ? ms.ManagedBackToBack / tb : null;
        return new BenchItem(name, dtype, Round(ms.Managed), ms.Torch is { } tt ? Round(tt) : null, ratio is { } r ? Math.Round(r, 3) : null,
            flops is { } f ? Math.Round(f / ms.Managed / 1e6, 1) : null,
            flops is { } f2 && ms.Torch is { } t2 ? Math.Round(f2 / t2 / 1e6, 1) : null,
            target, ratio is { } r2 && meets is not null ? meets(r2) : null, agreement, note,
            Round(ms.ManagedMean), ms.TorchMean is { } tm ? Round(tm) : null,
            Round(ms.ManagedBackToBack), ms.TorchBackToBack is { } tb2 ? Round(tb2) : null, ratioBack is { } rb ? Math.Round(rb, 3) : null,
            ms.SettleAfterTorch > 0 ? Round(ms.SettleAfterTorch) : null, ms.SettleAfterManaged is { } sm && sm > 0 ? Round(sm) : null);
    }

    private static double Round(double ms) => Math.Round(ms, ms < 10 ? 3 : 1);
}

/// <summary>Seeded bench data and the agreement measure.</summary>
internal static class Data
{
    /// <summary>Uniform in [-scale, scale), float32, from a seeded generator (bench data only: runs stay comparable).</summary>
    public static float[] RandomFloats(int count, int seed, double scale = 1.0)
    {
        var rng = new Random(seed);
        var a = new float[count];
        for (int i = 0; i < count; i++) a[i] = (float)(scale * (2 * rng.NextDouble() - 1));
        return a;
    }

    public static double[] Widen(float[] a) => Array.ConvertAll(a, v => (double)v);

    /// <summary>
    /// One encoder layer's parameters under HF's names (after <paramref name="prefix"/>): LayerNorms at
    /// 1 and 0, projections uniform with scale 1/sqrt(fan-in), biases 0.02. float32 values, so that
    /// both dtypes compute on the same numbers.
    /// </summary>
    public static NamedTensors EncoderLayerParameters(string prefix, int width, int intermediate, int seed)
    {
        double ws = 1 / Math.Sqrt(width), wi = 1 / Math.Sqrt(intermediate);
        var result = new NamedTensors();
        void Add(string name, int[] shape, double scale)
        {
            int count = shape.Aggregate(1, (a, b) => a * b);
            result.Add(prefix + name, new HostTensor(shape, Widen(RandomFloats(count, seed++, scale))));
        }
        void Constant(string name, int count, double value) => result.Add(prefix + name, new HostTensor([count], Enumerable.Repeat(value, count).ToArray()));
        Constant("layer_norm1.weight", width, 1);
        Constant("layer_norm1.bias", width, 0);
        foreach (var p in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
        {
            Add($"self_attn.{p}.weight", [width, width], ws);
            Add($"self_attn.{p}.bias", [width], 0.02);
        }
        Constant("layer_norm2.weight", width, 1);
        Constant("layer_norm2.bias", width, 0);
        Add("mlp.fc1.weight", [intermediate, width], ws);
        Add("mlp.fc1.bias", [intermediate], 0.02);
        Add("mlp.fc2.weight", [width, intermediate], wi);
        Add("mlp.fc2.bias", [width], 0.02);
        return result;
    }

    public static double[] FromTorch(torch.Tensor t)
    {
        using var cpu = t.detach().to(ScalarType.Float64).contiguous();
        return cpu.data<double>().ToArray();
    }

    /// <summary>max |a - b| / max |b|: how far the two sides' results are apart.</summary>
    public static double RelativeGap(double[] a, double[] b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"Comparing {a.Length} values with {b.Length}.");
        double gap = 0, scale = 0;
        for (int i = 0; i < a.Length; i++)
        {
            gap = Math.Max(gap, Math.Abs(a[i] - b[i]));
            scale = Math.Max(scale, Math.Abs(b[i]));
        }
        return scale == 0 ? gap : gap / scale;
    }
}
