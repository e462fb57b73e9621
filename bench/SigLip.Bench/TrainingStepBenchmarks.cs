using BenchmarkDotNet.Attributes;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using SigLip.Reference.Training;

namespace SigLip.Bench;

/// <summary>
/// One training step (ForwardBackward + OptimizerStep) of `siglip train`'s built-in recipe on the
/// reference backend. MemoryDiagnoser's "Allocated" column is the steady-state managed allocation per
/// step (target: under 1 MB).
/// </summary>
[MemoryDiagnoser]
public class TrainingStepBenchmarks
{
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
        model = new ReferenceBackendProvider().Start(new BackendOptions()).CreateModel(config, ModelInit.Random(config, recipe.Seed));
    }

    [GlobalCleanup]
    public void Cleanup() => model.Dispose();

    [Benchmark]
    public double TrainingStep_reference()
    {
        double loss = model.ForwardBackward(batch, LossOptions.Default, collectOutputs: false).Loss;
        model.OptimizerStep(recipe.Optimizer ?? new AdamWSettings(), recipe.LearningRate);
        return loss;
    }
}
