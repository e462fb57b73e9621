using SigLip.Data;
using SigLip.Reference.Backends;
using SigLip.Reference.Evaluation;
using SigLip.Reference.Models;
using SigLip.Reference.Training;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Data;

/// <summary>The issue's end-to-end check: a generated folder with a corrupt and a missing image trains and evaluates.</summary>
public sealed class FolderTrainingTests(ITestOutputHelper output)
{
    // Sizes chosen unlike the HF fixture's: text width 12 != vision width 16, 3 text heads.
    private static readonly SiglipConfig Tiny = new(
        new TextConfig(VocabSize: 97, HiddenSize: 12, IntermediateSize: 24, NumHiddenLayers: 1, NumAttentionHeads: 3, MaxPositionEmbeddings: 8, ProjectionSize: 16),
        new VisionConfig(HiddenSize: 16, IntermediateSize: 32, NumHiddenLayers: 1, NumAttentionHeads: 2, ImageSize: 16, PatchSize: 8));

    [Fact]
    public void A_folder_with_a_corrupt_and_a_missing_image_trains_and_evaluates()
    {
        using var folder = new TestFolder(goodImages: 8);
        var data = new ImageCaptionFolder(folder.Root, Tiny.Vision.ImageSize);
        var tokenizer = TokenizerChoice.Resolve(spieceModel: null, checkpointFolder: null, Tiny.Text.VocabSize);
        Assert.IsType<HashingWordTokenizer>(tokenizer);

        using var backend = new ReferenceBackendProvider().Start(new BackendOptions());
        var settings = new TrainingSettings(Steps: 3, BatchSize: 4, LearningRate: 1e-2, WarmupSteps: 0, Seed: 3);
        using var trainer = Trainer.Start(backend, Tiny, data, tokenizer, settings);
        var before = trainer.Model.GetParameters();
        var result = trainer.Run();
        var after = trainer.Model.GetParameters();
        output.WriteLine($"losses {string.Join(", ", trainer.Losses)}; {data.SkipSummary()}");
        Assert.Equal(3, trainer.Losses.Count);
        Assert.All(trainer.Losses, l => Assert.True(double.IsFinite(l) && l > 0));
        Assert.Contains(before.Keys, name => !before[name].Data.SequenceEqual(after[name].Data)); // a step changed the weights

        // 3 steps of 4 need 12 examples, more than the 8 good ones: the stream went through the whole
        // folder, so both bad files were met, skipped and counted (a second pass may have begun).
        Assert.True(data.Skipped >= 2, $"skipped {data.Skipped}");
        Assert.Contains(data.SkipReasons, r => r.Reason.Contains("corrupt.jpg"));
        Assert.Contains(data.SkipReasons, r => r.Reason.Contains("missing.png"));

        var examples = data.Examples(0).ToList();
        Assert.Equal(8, examples.Count);
        var retrieval = RetrievalEvaluator.Evaluate(trainer.Model, tokenizer, examples, Tiny.Text.MaxPositionEmbeddings, ks: [1, 5]);
        output.WriteLine($"recall@1 image->text {retrieval.ImageToTextRecallAt(1)}, text->image {retrieval.TextToImageRecallAt(1)}");
        Assert.Equal(8, retrieval.Images);
        Assert.Equal(8, retrieval.Texts); // captions are distinct ("number i")
        foreach (var r in retrieval.ImageToText.Concat(retrieval.TextToImage)) Assert.InRange(r.Recall, 0.0, 1.0);
        Assert.True(retrieval.ImageToTextRecallAt(5) >= retrieval.ImageToTextRecallAt(1));
    }
}
