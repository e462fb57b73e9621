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

/// <summary>The recipe rules `siglip train` applies (they live in <see cref="BuiltInRecipe"/>, not in the CLI).</summary>
public sealed class BuiltInRecipeRuleTests
{
    [Theory]
    [InlineData(null, 200)]     // the recipe's own warmup
    [InlineData(100000, 200)]   // a longer run keeps it
    [InlineData(1000, 100)]     // a shorter run: a tenth of its steps
    [InlineData(2000, 200)]
    [InlineData(25, 2)]
    [InlineData(5, 1)]          // at least one step
    public void AShorterRunWarmsUpForAtMostATenthOfItsSteps(int? steps, int expected)
    {
        Assert.Equal(200, BuiltInRecipe.Settings.WarmupSteps);
        Assert.Equal(expected, BuiltInRecipe.WarmupSteps(steps));
    }

    [Fact]
    public void FolderCaptionsGetTheirTextLengthAndVocabulary()
    {
        var builtIn = BuiltInRecipe.Config();
        Assert.Equal(builtIn, BuiltInRecipe.ConfigFor(CaptionText.BuiltInWords));

        var sentencePiece = BuiltInRecipe.ConfigFor(CaptionText.SentencePiece);
        Assert.Equal(64, sentencePiece.Text.MaxPositionEmbeddings);
        Assert.Equal(builtIn.Text.VocabSize, sentencePiece.Text.VocabSize); // the tokenizer's vocabulary replaces it when the run starts

        var hashed = BuiltInRecipe.ConfigFor(CaptionText.HashedWords);
        Assert.Equal(16, hashed.Text.MaxPositionEmbeddings);
        Assert.Equal(4096, hashed.Text.VocabSize);

        foreach (var config in new[] { sentencePiece, hashed })
        {
            Assert.Equal(builtIn.Vision, config.Vision);
            Assert.Equal(builtIn.Text with { MaxPositionEmbeddings = 0, VocabSize = 0 }, config.Text with { MaxPositionEmbeddings = 0, VocabSize = 0 });
        }
    }
}
