using SigLip.Reference.Backends;
using SigLip.Reference.Evaluation;
using SigLip.Reference.Training;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Training;

public sealed class BuiltInRecipeTests(ITestOutputHelper output)
{
    /// <summary>
    /// A shortened `siglip train`: the default model, data and optimizer, fewer steps. It must learn:
    /// the loss falls well below where it started, and zero-shot accuracy on fresh test images is
    /// far above chance (the full run reaches much more; see docs/training.md).
    /// </summary>
    [Fact]
    public void AShortenedDefaultRunLearns()
    {
        const int steps = ShortenedSteps;
        var settings = BuiltInRecipe.Settings with { Steps = steps, WarmupSteps = steps / 10, CheckpointEvery = 0 };
        using var trainer = Trainer.Start(new ReferenceBackend(), BuiltInRecipe.Config(), BuiltInRecipe.TrainData(), BuiltInRecipe.Tokenizer(), settings);
        var result = trainer.Run();
        var report = BuiltInEvaluation.Run(trainer.Model, new BuiltInEvaluationSettings(ExamplesPerClass: 10));
        var zeroShot = report.ZeroShot!;

        double first = result.Losses.Take(10).Average();
        double last = result.Losses.TakeLast(10).Average();
        output.WriteLine($"{steps} steps: loss {first:F3} -> {last:F3}; zero-shot {zeroShot.Accuracy:P1} on {zeroShot.Examples} test images " +
            $"({zeroShot.ClassNames.Count} classes, chance {zeroShot.ChanceAccuracy:P1}); unseen {report.UnseenZeroShot!.Accuracy:P1}");
        Assert.True(last < 0.6 * first, $"loss should fall well below its start: first 10 steps {first:F3}, last 10 {last:F3}");
        Assert.True(zeroShot.Accuracy >= 3 * zeroShot.ChanceAccuracy,
            $"zero-shot accuracy {zeroShot.Accuracy:P1} should be at least 3x chance ({zeroShot.ChanceAccuracy:P1})");
        Assert.Equal(12, zeroShot.ClassNames.Count);
    }

    private const int ShortenedSteps = 300;

    [Fact]
    public void TheRecipeIsConsistent()
    {
        var config = BuiltInRecipe.Config();
        config.Validate();
        BuiltInRecipe.Settings.Validate();
        Assert.Equal(BuiltInRecipe.TrainData().ImageSize, config.Vision.ImageSize);
        Assert.Equal(BuiltInRecipe.Tokenizer().VocabSize, config.Text.VocabSize);
        Assert.Equal(LockedTowers.None, BuiltInRecipe.Settings.Locked);
        Assert.Equal(Math.Log(10), BuiltInRecipe.Settings.InitialLogitScale);
        Assert.Equal(-10.0, BuiltInRecipe.Settings.InitialLogitBias);
    }
}
