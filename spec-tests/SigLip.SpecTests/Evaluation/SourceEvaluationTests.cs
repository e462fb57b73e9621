using SigLip.Reference.Data;
using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.Evaluation;

namespace SigLip.SpecTests.Evaluation;

public class SourceEvaluationTests
{
    private sealed class ListSource(IReadOnlyList<ImageTextExample> examples, IReadOnlyList<string> classNames, int width) : IImageTextSource
    {
        public string Description => "a list";
        public int ImageSize => 1;
        public int Channels => width;
        public IEnumerable<ImageTextExample> Examples(int seed) => examples;
        public IReadOnlyList<string> ClassNames => classNames;
    }

    private static FakeEmbeddingModel Model(out WordTokenizer tokenizer)
    {
        tokenizer = new WordTokenizer(["x", "y", "a", "photo", "of"]);
        return new FakeEmbeddingModel(tokenizer, new Dictionary<string, double[]> { ["x"] = [1, 0], ["y"] = [0, 1] }, 2);
    }

    [Fact]
    public void Labelled_sources_get_zero_shot_and_retrieval_within_the_limit()
    {
        var model = Model(out var tokenizer);
        var examples = new[]
        {
            FakeEmbeddingModel.Example([1, 0], "x", "x"),
            FakeEmbeddingModel.Example([0.1, 1], "y", "x"), // looks like y: zero-shot wrong, its own caption "y" ranks first
            FakeEmbeddingModel.Example([0, 1], "y", "y"),
            FakeEmbeddingModel.Example([1, 0], "x", "x"),   // beyond the limit
        };
        var report = SourceEvaluation.Run(model, tokenizer, new ListSource(examples, ["x", "y"], 2), new SourceEvaluationSettings(Limit: 3, RecallKs: [1]));
        Assert.Equal(3, report.ZeroShot!.Examples);
        Assert.Equal(2.0 / 3.0, report.ZeroShot.Accuracy);
        Assert.Null(report.UnseenZeroShot);
        Assert.Equal(3, report.Retrieval.Images);
        Assert.Equal(2, report.Retrieval.Texts);
        Assert.Equal(1.0, report.Retrieval.ImageToTextRecallAt(1));
    }

    [Fact]
    public void Sources_without_classes_get_retrieval_only()
    {
        var model = Model(out var tokenizer);
        var examples = new[] { FakeEmbeddingModel.Example([1, 0], "x"), FakeEmbeddingModel.Example([0, 1], "y") };
        var report = SourceEvaluation.Run(model, tokenizer, new ListSource(examples, [], 2));
        Assert.Null(report.ZeroShot);
        Assert.Equal(1.0, report.Retrieval.TextToImageRecallAt(1));
        Assert.Contains("3x1x1", Assert.Throws<ArgumentException>(() => SourceEvaluation.Run(model, tokenizer, new ListSource(examples, [], 3))).Message);
    }
}
