using BenchmarkDotNet.Attributes;
using SigLip.Backends.Managed;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using SigLip.Reference.Training;

namespace SigLip.Bench;

/// <summary>
/// One training step (ForwardBackward + OptimizerStep) of `siglip train`'s built-in recipe: the
/// managed backend (float32, its default, and float64) and the reference backend as the baseline.
/// MemoryDiagnoser's "Allocated" column is the steady-state managed allocation per step (target for
/// the managed backend: under 1 MB; the reference allocates fresh buffers every step by design).
/// </summary>
[MemoryDiagnoser]
public class TrainingStepBenchmarks
{
    [Params("managed float32", "managed float64", "reference")]
    public string Backend { get; set; } = "managed float32";

    private IBackend backend = null!;
    private ISiglipModel model = null!;
    private SiglipBatch batch = null!;
    private TrainingSettings recipe = null!;

    [GlobalSetup]
    public void Setup()
    {
        var config = BuiltInRecipe.Config();
        recipe = BuiltInRecipe.Settings;
        using (var stream = new BatchStream(BuiltInRecipe.TrainData(), BuiltInRecipe.Tokenizer(), recipe.Seed, recipe.BatchSize,
                   config.Text.MaxPositionEmbeddings, config.Vision.NumChannels, config.Vision.ImageSize))
            batch = stream.Next();
        backend = Backend switch
        {
            "managed float32" => new ManagedBackendProvider().Start(new BackendOptions(DType: DType.Float32)),
            "managed float64" => new ManagedBackendProvider().Start(new BackendOptions(DType: DType.Float64)),
            "reference" => new ReferenceBackendProvider().Start(new BackendOptions()),
            _ => throw new ArgumentException($"Unknown backend '{Backend}'."),
        };
        model = backend.CreateModel(config, ModelInit.Random(config, recipe.Seed));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        model.Dispose();
        backend.Dispose();
    }

    [Benchmark]
    public double TrainingStep()
    {
        double loss = model.ForwardBackward(batch, LossOptions.Default, collectOutputs: false).Loss;
        model.OptimizerStep(recipe.Optimizer ?? new AdamWSettings(), recipe.LearningRate);
        return loss;
    }
}
