using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.IO;
using SigLip.Reference.Models;
using SigLip.Reference.Training;
using SigLip.SpecTests.Support;
using SigLip.SpecTests.TorchSharp;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Models;

/// <summary>
/// Issue 15: every size option is checked in <see cref="ModelSize"/> before anything is allocated, and refused in one
/// line with the numbers (what it needs, what there is, which option to change): --steps (the loss history), the built-in
/// evaluation's images per class, the batch-size experiment's --pairs, --seeds, --batch-sizes and --eval-images-per-class,
/// throughput's --batch against a GPU's free memory; and libtorch's own allocation failures become <see cref="ModelSizeException"/>.
/// The CLI cases run the real `siglip` under a time limit: before the checks, some of them trained for days.
/// </summary>
public sealed class SizeOptionTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);

    private string Refused(params string[] args)
    {
        var (code, text) = SiglipProcess.Run(Limit, args);
        output.WriteLine(text);
        Assert.Equal(1, code);
        return SiglipProcess.ErrorLine(text);
    }

    // ----- --steps -----

    [Fact]
    public void Steps_beyond_what_trainer_state_can_record_are_refused_with_the_limit()
    {
        var ex = Assert.Throws<ModelSizeException>(() => ModelSize.CheckSteps(int.MaxValue, maxBytes: null));
        Assert.Contains($"--steps {int.MaxValue:N0}", ex.Message);
        Assert.Contains($"use --steps {ModelSize.MaxSteps:N0} or less", ex.Message);
        ModelSize.CheckSteps(ModelSize.MaxSteps, maxBytes: null, availableBytes: 1L << 40);
    }

    [Fact]
    public void Steps_whose_loss_history_exceeds_the_memory_name_what_fits()
    {
        // 1 MiB holds the history of 8,192 steps at 128 bytes each.
        var ex = Assert.Throws<ModelSizeException>(() => ModelSize.CheckSteps(10_000, maxBytes: 1L << 20, availableBytes: 1L << 30));
        Assert.Contains("--steps 10,000", ex.Message);
        Assert.Contains("the --max-memory given", ex.Message);
        Assert.Contains("use --steps 8,192 or less", ex.Message);
        ModelSize.CheckSteps(8_192, maxBytes: 1L << 20, availableBytes: 1L << 30);
        Assert.Contains("available to this process", Assert.Throws<ModelSizeException>(() => ModelSize.CheckSteps(10_000, null, availableBytes: 1L << 20)).Message);
    }

    [Fact]
    public void Train_with_two_billion_steps_is_refused_at_once_and_creates_no_run_folder()
    {
        // It used to start: the loss history of 2^31 steps cannot even be written to trainer_state.json.
        string run = _temp.File("run");
        string error = Refused("train", "--steps", "2147483647", "--skip-golden-check", "--out", run);
        Assert.Contains("--steps 2,147,483,647", error);
        Assert.Contains($"use --steps {ModelSize.MaxSteps:N0} or less", error);
        Assert.False(Directory.Exists(run));
    }

    [Fact]
    public void Train_steps_over_max_memory_are_refused_naming_max_memory()
    {
        string run = _temp.File("run");
        string error = Refused("train", "--steps", "1000000", "--max-memory", "1M", "--skip-golden-check", "--out", run);
        Assert.Contains("--steps 1,000,000", error);
        Assert.Contains("the --max-memory given", error);
        Assert.False(Directory.Exists(run));
    }

    // ----- the built-in evaluation's images per class -----

    [Fact]
    public void Images_per_class_over_the_memory_are_refused_naming_what_fits()
    {
        // 12 classes of 3x8x8 images: 1,536 bytes of pixels + 1,024 besides, 2,560 a image.
        var ex = Assert.Throws<ModelSizeException>(() => ModelSize.CheckImagesFit(1000, 12, 192, maxBytes: null, "--images-per-class", availableBytes: 2_560 * 12 * 100));
        Assert.Contains("--images-per-class 1,000", ex.Message);
        Assert.Contains("use --images-per-class 100 or less", ex.Message);
        ModelSize.CheckImagesFit(100, 12, 192, maxBytes: null, "--images-per-class", availableBytes: 2_560 * 12 * 100);
    }

    [Fact]
    public void Eval_with_two_billion_images_per_class_is_one_line_naming_the_option()
    {
        // It used to fail with "Arithmetic operation resulted in an overflow".
        string folder = _temp.File("checkpoint");
        var config = BuiltInRecipe.Config();
        HfCheckpoint.Save(folder, config, ModelInit.Random(config, seed: 0), SafeTensorDType.F32);
        string error = Refused("eval", "--checkpoint", folder, "--images-per-class", "2000000000");
        Assert.Contains("--images-per-class 2,000,000,000", error);
        Assert.Contains("or less", error);
    }

    [Fact]
    public void Eval_refuses_images_per_class_over_the_max_memory_given()
    {
        // 1,000 images per class of the built-in data fit in memory here, but not in 1M.
        string folder = _temp.File("checkpoint");
        var config = BuiltInRecipe.Config();
        HfCheckpoint.Save(folder, config, ModelInit.Random(config, seed: 0), SafeTensorDType.F32);
        string error = Refused("eval", "--checkpoint", folder, "--images-per-class", "1000", "--max-memory", "1M");
        Assert.Contains("--images-per-class 1,000", error);
        Assert.Contains("is the --max-memory given", error);
    }

    // ----- the batch-size experiment -----

    [Fact]
    public void Experiment_pairs_that_make_a_billion_steps_are_refused()
    {
        // --pairs 2,147,483,646 at batch 2 is 1,073,741,823 steps per run: it used to start training them.
        string error = Refused("experiment", "batch-size", "--pairs", "2147483646", "--batch-sizes", "2", "--seeds", "1", "--out", _temp.File("e"));
        Assert.Contains("--pairs 2,147,483,646", error);
        Assert.Contains("1,073,741,823 steps per run at batch size 2", error);
        Assert.Contains($"use --pairs {2L * ModelSize.MaxSteps:N0} or less", error);
    }

    [Fact]
    public void Experiment_seeds_that_cannot_be_planned_are_refused()
    {
        // A billion seeds x 2 losses x 2 batch sizes: 4e9 runs overflowed the run count (an int).
        string error = Refused("experiment", "batch-size", "--pairs", "8", "--batch-sizes", "2", "4", "--seeds", "1000000000", "--out", _temp.File("e"));
        Assert.Contains("--seeds 1,000,000,000", error);
        Assert.Contains("4,000,000,000 runs", error);
        Assert.Contains("or less", error);
    }

    [Fact]
    public void Experiment_eval_images_per_class_are_checked_before_any_run_trains()
    {
        // It used to train every run first, then fail with "Arithmetic operation resulted in an overflow".
        string error = Refused("experiment", "batch-size", "--pairs", "8", "--batch-sizes", "4", "--seeds", "1", "--eval-images-per-class", "2000000000", "--out", _temp.File("e"));
        Assert.Contains("--eval-images-per-class 2,000,000,000", error);
        Assert.Contains("parallel run(s) (--parallel)", error);
        Assert.Contains("or less", error);
    }

    [Fact]
    public void Experiment_batch_sizes_over_the_memory_are_refused_before_training()
    {
        string error = Refused("experiment", "batch-size", "--pairs", "2000000000", "--batch-sizes", "2000000000", "--seeds", "1", "--parallel", "1", "--out", _temp.File("e"));
        Assert.Contains("--batch-sizes 2000000000", error);
        Assert.Contains("is the most that fits", error);
    }

    // ----- throughput --backend cuda: the GPU's free memory -----

    [Fact]
    public void A_GPU_batch_is_checked_against_the_free_memory_given()
    {
        var b16 = SiglipConfig.Base16_224;
        // bf16 at batch 256: the anchor run (29 GiB peak in PyTorch) fits in an H100's ~79 GiB free.
        string line = ModelSize.CheckTrainingFitsGpu(b16, 256, DType.BFloat16, freeBytes: 79L << 30, "GPU 0");
        output.WriteLine(line);
        Assert.StartsWith("GPU memory check: --batch 256 needs about", line);
        Assert.Contains("79.0 GiB is free on GPU 0", line);

        var ex = Assert.Throws<ModelSizeException>(() => ModelSize.CheckTrainingFitsGpu(b16, 100_000, DType.BFloat16, freeBytes: 79L << 30, "GPU 0"));
        output.WriteLine(ex.Message);
        Assert.Contains("--batch 100000: training needs about", ex.Message);
        Assert.Contains("4 bytes per parameter number, 2 per activation", ex.Message);
        Assert.Contains("79.0 GiB is free on GPU 0 (NVML)", ex.Message);
        Assert.Contains("is the most that fits", ex.Message);

        // The largest batch it names does fit, and one more does not.
        int most = int.Parse(System.Text.RegularExpressions.Regex.Match(ex.Message, @"--batch (\d+) is the most").Groups[1].Value);
        ModelSize.CheckTrainingFitsGpu(b16, most, DType.BFloat16, 79L << 30, "GPU 0");
        Assert.Throws<ModelSizeException>(() => ModelSize.CheckTrainingFitsGpu(b16, most + 1, DType.BFloat16, 79L << 30, "GPU 0"));
        // float32 activations take twice the room: fewer pairs fit.
        var fp32 = Assert.Throws<ModelSizeException>(() => ModelSize.CheckTrainingFitsGpu(b16, most, DType.Float32, 79L << 30, "GPU 0"));
        Assert.Contains("4 bytes per number", fp32.Message);
    }

    [Fact]
    public void Without_NVML_the_GPU_check_is_skipped_and_says_so()
    {
        string line = ModelSize.CheckTrainingFitsGpu(SiglipConfig.Base16_224, 100_000, DType.BFloat16, freeBytes: null, "GPU 0");
        Assert.StartsWith("GPU memory check skipped: the free memory of GPU 0 is unknown", line);
        Assert.Contains("--batch 100000 needs about", line);
    }

    [Fact]
    public void Throughput_cuda_says_whether_it_checked_the_GPU_memory_before_starting_the_backend()
    {
        var (code, text) = SiglipProcess.Run(Limit, "throughput", "--backend", "cuda", "--config", "tiny", "--batch", "8", "--steps", "1", "--warmup", "0");
        output.WriteLine(text);
        if (global::SigLip.Backends.TorchSharp.GpuInfo.FreeBytes() is null)
            Assert.Contains("GPU memory check skipped: the free memory of GPU 0 is unknown (NVML", text);
        else
            Assert.Contains("GPU memory check: --batch 8 needs about", text);
        Assert.DoesNotContain("   at ", text);
        _ = code; // 0 where CUDA starts, 1 (backend unavailable) where it does not: either way the check came first
    }

    // ----- libtorch's own allocation failures -----

    [SkippableFact]
    public void A_loss_too_large_for_the_memory_is_refused_before_libtorch_allocates()
    {
        using var backend = TorchCpu.Start(output, "float32");
        // 2^22 pairs of width 1: 64 MB on the host, but the n x n logits are 2^44 floats (64 TiB). libtorch's matmul
        // does not pass its allocation failure back to .NET: it used to abort the whole process ("terminate called after
        // throwing an instance of 'c10::Error' ... DefaultCPUAllocator: can't allocate memory").
        const int n = 1 << 22;
        var image = new Tensor([n, 1], Enumerable.Repeat(1.0, n).ToArray());
        var text = new Tensor([n, 1], Enumerable.Repeat(-1.0, n).ToArray());
        var ex = Assert.Throws<ModelSizeException>(() => backend.Loss(image, text, Math.Log(10), -10, LossOptions.Default));
        output.WriteLine(ex.Message);
        Assert.Contains("the batch of 4,194,304 pairs: the loss's 4,194,304 x 4,194,304 logits and their gradients need about", ex.Message);
        Assert.Contains("available to this process; use at most about", ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [SkippableFact]
    public void A_training_step_too_large_for_the_memory_is_refused_before_libtorch_allocates()
    {
        using var backend = TorchCpu.Start(output, "float32");
        // 65,536 patches of width 8: a small model, a 6 MB image, but one image's attention scores alone are 2 x 65,536^2 floats (34 GB).
        var config = new SiglipConfig(
            new TextConfig(VocabSize: 40, HiddenSize: 8, IntermediateSize: 16, NumHiddenLayers: 1, NumAttentionHeads: 2, MaxPositionEmbeddings: 4),
            new VisionConfig(HiddenSize: 8, IntermediateSize: 16, NumHiddenLayers: 1, NumAttentionHeads: 2, ImageSize: 512, PatchSize: 2));
        using var model = backend.CreateModel(config, ModelInit.Random(config, seed: 0));
        var batch = new SiglipBatch(new Tensor([1, 3, 512, 512], new double[3 * 512 * 512]), new TokenIds(1, 4, new int[4]));
        var ex = Assert.Throws<ModelSizeException>(() => model.ForwardBackward(batch, LossOptions.Default, collectOutputs: false));
        output.WriteLine(ex.Message);
        Assert.Contains("torch backend on cpu: --batch-size 1: training needs about", ex.Message);
        Assert.Contains("available to this process; even one pair does not fit; lower --batch-size", ex.Message);
    }

    [SkippableFact]
    public void A_libtorch_allocation_failure_becomes_a_ModelSizeException_naming_what_and_what_to_change()
    {
        using var backend = TorchCpu.Start(output, "float32");
        // 2^50 floats (4 PiB): libtorch's CPU allocator refuses at once, and torch.zeros passes the failure back to .NET.
        var ex = Assert.Throws<ModelSizeException>(() => global::SigLip.Backends.TorchSharp.TorchMemory.Guard(
            () => global::TorchSharp.torch.zeros(new long[] { 1L << 50 }), "torch backend on cpu", "a tensor of 2^50 floats", "use a smaller one"));
        output.WriteLine(ex.Message);
        Assert.StartsWith("torch backend on cpu: libtorch could not allocate memory for a tensor of 2^50 floats (", ex.Message);
        Assert.Contains("can't allocate memory", ex.Message);
        Assert.EndsWith("; use a smaller one.", ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.IsType<System.Runtime.InteropServices.ExternalException>(ex.InnerException);
    }
}
