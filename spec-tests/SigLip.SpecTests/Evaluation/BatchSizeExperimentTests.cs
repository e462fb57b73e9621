using SigLip.Reference.Backends;
using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.Evaluation;
using SigLip.Reference.Models;

namespace SigLip.SpecTests.Evaluation;

public class BatchSizeExperimentTests
{
    private static SiglipConfig TinyConfig()
    {
        var tokenizer = WordTokenizer.ForShapes();
        return new SiglipConfig(
            new TextConfig(VocabSize: tokenizer.VocabSize, HiddenSize: 8, IntermediateSize: 16, NumHiddenLayers: 1, NumAttentionHeads: 2,
                MaxPositionEmbeddings: ShapesVocabulary.RecommendedTextLength, PadTokenId: WordTokenizer.PadId, BosTokenId: WordTokenizer.EndId, EosTokenId: WordTokenizer.EndId),
            new VisionConfig(HiddenSize: 8, IntermediateSize: 16, NumHiddenLayers: 1, NumAttentionHeads: 2, ImageSize: 8, PatchSize: 4));
    }

    [Fact]
    public void Every_loss_batch_size_and_seed_is_run_on_the_same_pairs_and_parallel_runs_change_nothing()
    {
        using var backend = new ReferenceBackendProvider().Start(new BackendOptions());
        var settings = new BatchSizeExperimentSettings(BatchSizes: [2, 4], Seeds: 2, PairsPerRun: 8, Config: TinyConfig(), EvalImagesPerClass: 1);
        var serial = BatchSizeExperiment.Run(backend, settings);
        var parallel = BatchSizeExperiment.Run(backend, settings with { Parallel = 2 });

        Assert.Equal(8, serial.Runs.Count);
        Assert.Equal(1.0 / 12.0, serial.ChanceAccuracy);
        foreach (var run in serial.Runs)
        {
            Assert.Equal(8, run.Steps * run.BatchSize);
            Assert.InRange(run.ZeroShotAccuracy, 0, 1);
            Assert.True(double.IsFinite(run.FinalLoss));
        }
        Assert.Equal(
            serial.Runs.Select(r => (r.Loss, r.BatchSize, r.Seed)).OrderBy(x => x),
            new[] { LossKind.Sigmoid, LossKind.Softmax }.SelectMany(l => new[] { 2, 4 }.SelectMany(b => new[] { 0, 1 }.Select(s => (l, b, s)))).OrderBy(x => x));
        // Sigmoid and softmax runs differ (the loss is really switched).
        Assert.NotEqual(serial.Runs.First(r => r.Loss == LossKind.Sigmoid).FinalLoss, serial.Runs.First(r => r.Loss == LossKind.Softmax).FinalLoss);
        Assert.Equal(serial.Runs.Select(r => (r.Loss, r.BatchSize, r.Seed, r.FinalLoss, r.ZeroShotAccuracy)),
                     parallel.Runs.Select(r => (r.Loss, r.BatchSize, r.Seed, r.FinalLoss, r.ZeroShotAccuracy)));

        Assert.All(serial.Summaries, s => Assert.Equal(2, s.Runs));
        Assert.Equal(9, serial.ToCsv().TrimEnd('\n').Split('\n').Length);
        var markdown = serial.ToMarkdown();
        Assert.Contains("| 2 | 4 |", markdown);
        Assert.Contains("| 4 | 2 |", markdown);
    }

    [Fact]
    public void Summaries_use_the_sample_standard_deviation()
    {
        Assert.Equal(0, BatchSizeExperimentResult.Std([0.5]));
        Assert.Equal(Math.Sqrt(0.02), BatchSizeExperimentResult.Std([0.4, 0.6]), 14); // 0.1 from the mean each: sqrt((0.01 + 0.01) / 1)
    }

    [Fact]
    public void Settings_that_cannot_give_equal_pairs_are_refused()
    {
        Assert.Contains("multiple of batch size 3", Assert.Throws<ArgumentException>(() => new BatchSizeExperimentSettings(BatchSizes: [3], PairsPerRun: 8).Validate()).Message);
        Assert.Contains("at least 2", Assert.Throws<ArgumentException>(() => new BatchSizeExperimentSettings(BatchSizes: [1], PairsPerRun: 8).Validate()).Message);
    }
}
