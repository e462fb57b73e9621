using SigLip.Reference;
using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.Evaluation;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Evaluation;

public class ZeroShotEvaluatorTests
{
    private static FakeEmbeddingModel Model(int width, out WordTokenizer tokenizer, params (string Word, double[] Vector)[] words)
    {
        tokenizer = new WordTokenizer(words.Select(w => w.Word));
        return new FakeEmbeddingModel(tokenizer, words.ToDictionary(w => w.Word, w => w.Vector), width);
    }

    [Fact]
    public void Accuracy_per_class_accuracy_chance_and_ties_are_exact()
    {
        var model = Model(3, out var tokenizer,
            ("x", [1, 0, 0]), ("y", [0, 1, 0]), ("z", [0, 0, 1]), ("a", [0, 0, 0]));
        var examples = new[]
        {
            FakeEmbeddingModel.Example([1, 0, 0], "", "x"),     // -> x, right
            FakeEmbeddingModel.Example([0.2, 0.9, 0], "", "x"), // -> y, wrong
            FakeEmbeddingModel.Example([0, 0, 1], "", "z"),     // -> z, right
            FakeEmbeddingModel.Example([1, 1, 0], "", "y"),     // x and y tie: the first class listed (x) wins, wrong
            FakeEmbeddingModel.Example([0, 1, 0.5], "", "y"),   // -> y, right
        };
        var result = ZeroShotEvaluator.Evaluate(model, tokenizer, examples, ["x", "y", "z"], ["a {}"], maxTextLength: 4, batchSize: 2);
        Assert.Equal(5, result.Examples);
        Assert.Equal([0, 1, 2, 0, 1], result.Predictions);
        Assert.Equal(3.0 / 5.0, result.Accuracy);
        Assert.Equal(1.0 / 3.0, result.ChanceAccuracy);
        Assert.Equal([("x", 2, 1), ("y", 2, 1), ("z", 1, 1)], result.PerClass.Select(c => (c.ClassName, c.Examples, c.Correct)));
        Assert.Equal((0.5 + 0.5 + 1.0) / 3.0, result.MeanPerClassAccuracy, 15);
        Assert.Equal(3, model.ImageCalls); // batches of 2, 2, 1
    }

    [Fact]
    public void Class_embeddings_average_the_normalised_prompts_then_renormalise()
    {
        var model = Model(4, out var tokenizer,
            ("x", [1, 0, 0, 0]), ("y", [0, 1, 0, 0]), ("photo", [0, 0, 0, 1]), ("a", [0, 0, 0, 0]));
        var embeds = ZeroShotEvaluator.ClassEmbeddings(model, tokenizer, ["x", "y"], ["a {}", "a photo {}"], maxTextLength: 5);
        // "a x" -> e0; "a photo x" -> (e0 + e3)/sqrt 2; their mean (p/2, 0, 0, q/2), p = 1 + 1/sqrt 2, q = 1/sqrt 2, renormalised.
        double p = 1 + 1 / Math.Sqrt(2), q = 1 / Math.Sqrt(2), norm = Math.Sqrt(p * p + q * q);
        var expected = new Tensor([2, 4], [p / norm, 0, 0, q / norm, 0, p / norm, 0, q / norm]);
        AssertClose.Tensor(embeds, expected, new Tolerance(1e-15, 0), "class embeddings");
    }

    [Fact]
    public void A_class_with_no_examples_is_left_out_of_the_mean_per_class_accuracy()
    {
        var result = ZeroShotEvaluator.Score(new Tensor([2, 2], [1, 0, 0, 1]), [0, 0], new Tensor([3, 2], [1, 0, 0, 1, -1, 0]), ["a", "b", "c"]);
        Assert.Equal(0.5, result.Accuracy);
        Assert.Equal(0.5, result.MeanPerClassAccuracy);
        Assert.True(double.IsNaN(result.PerClass[2].Accuracy));
        Assert.Equal(1.0 / 3.0, result.ChanceAccuracy);
    }

    [Fact]
    public void Bad_inputs_say_what_is_wrong()
    {
        var model = Model(2, out var tokenizer, ("x", [1, 0]), ("y", [0, 1]));
        var labelled = new[] { FakeEmbeddingModel.Example([1, 0], "x", "x") };
        Assert.Contains("slot", Assert.Throws<ArgumentException>(() =>
            ZeroShotEvaluator.Evaluate(model, tokenizer, labelled, ["x", "y"], ["a photo"], 4)).Message);
        Assert.Contains("Example 0", Assert.Throws<ArgumentException>(() =>
            ZeroShotEvaluator.Evaluate(model, tokenizer, [FakeEmbeddingModel.Example([1, 0], "x")], ["x", "y"], ["{}"], 4)).Message);
        Assert.Contains("'z'", Assert.Throws<ArgumentException>(() =>
            ZeroShotEvaluator.Evaluate(model, tokenizer, [FakeEmbeddingModel.Example([1, 0], "z", "z")], ["x", "y"], ["{}"], 4)).Message);
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() =>
            ZeroShotEvaluator.Evaluate(model, tokenizer, labelled, ["x", "x"], ["{}"], 4)).Message);
    }

    [Fact]
    public void A_non_finite_embedding_is_reported_with_where_it_came_from()
    {
        var model = Model(2, out var tokenizer, ("x", [1, 0]), ("y", [0, 1]));
        var examples = new[] { FakeEmbeddingModel.Example([double.NaN, 1], "x", "x") };
        var ex = Assert.Throws<InvalidOperationException>(() => ZeroShotEvaluator.Evaluate(model, tokenizer, examples, ["x", "y"], ["{}"], 4));
        Assert.Contains("non-finite", ex.Message);
        Assert.Contains("image embeddings of examples 0..0", ex.Message);
    }

    /// <summary>
    /// The whole built-in pipeline with a model that embeds every image and text alike: every
    /// score ties, so every prediction is the first class. Test data is balanced, so accuracy is
    /// exactly 1/classes; the unseen split lists all 16 classes and its first ("red circle") is
    /// held out, so exactly 1/4 of the unseen images (one held-out class of four) are right;
    /// retrieval with all ties gets nothing at rank 1.
    /// </summary>
    [Fact]
    public void Built_in_evaluation_of_a_model_that_cannot_tell_anything_apart_is_exactly_at_the_tie_level()
    {
        var tokenizer = WordTokenizer.ForShapes();
        var config = new SigLip.Reference.Models.SiglipConfig(
            new SigLip.Reference.Models.TextConfig(VocabSize: tokenizer.VocabSize, HiddenSize: 8, MaxPositionEmbeddings: ShapesVocabulary.RecommendedTextLength),
            new SigLip.Reference.Models.VisionConfig(HiddenSize: 8, ImageSize: 16, PatchSize: 4));
        var constant = new ConstantModel(config);
        var report = BuiltInEvaluation.Run(constant, new BuiltInEvaluationSettings(ExamplesPerClass: 3));
        Assert.Equal(36, report.ZeroShot!.Examples);
        Assert.Equal(12, report.ZeroShot.ClassNames.Count);
        Assert.Equal(1.0 / 12.0, report.ZeroShot.Accuracy);
        Assert.Equal(1.0 / 12.0, report.ZeroShot.ChanceAccuracy);
        Assert.All(report.ZeroShot.Predictions, p => Assert.Equal(0, p));
        Assert.Equal(12, report.UnseenZeroShot!.Examples);
        Assert.Equal(16, report.UnseenZeroShot.ClassNames.Count);
        Assert.Equal("red circle", report.UnseenZeroShot.ClassNames[0]);
        Assert.Equal(0.25, report.UnseenZeroShot.Accuracy);
        Assert.Equal(1.0 / 16.0, report.UnseenZeroShot.ChanceAccuracy);
        Assert.Equal(36, report.Retrieval.Images);
        Assert.Equal(0.0, report.Retrieval.ImageToTextRecallAt(1));
        Assert.Equal(0.0, report.Retrieval.TextToImageRecallAt(1));

        Assert.Contains("24x24", Assert.Throws<ArgumentException>(() =>
            BuiltInEvaluation.Run(constant, new BuiltInEvaluationSettings(Data: new ShapesDatasetOptions(ImageSize: 24)))).Message);
    }

    private sealed class ConstantModel(SigLip.Reference.Models.SiglipConfig config) : SigLip.Reference.Backends.ISiglipModel
    {
        public SigLip.Reference.Models.SiglipConfig Config => config;
        public SigLip.Reference.Backends.LockedTowers Locked => SigLip.Reference.Backends.LockedTowers.None;
        public Tensor EmbedImages(Tensor pixelValues)
        {
            Assert.Equal([pixelValues.Shape[0], 3, 16, 16], pixelValues.Shape);
            return Constant(pixelValues.Shape[0]);
        }
        public Tensor EmbedTexts(TokenIds inputIds)
        {
            Assert.Equal(config.Text.MaxPositionEmbeddings, inputIds.Length);
            return Constant(inputIds.Batch);
        }
        private Tensor Constant(int rows) => new([rows, 8], Enumerable.Range(0, rows * 8).Select(i => i % 8 == 0 ? 1.0 : 0.0).ToArray());
        public SigLip.Reference.Backends.StepResult Forward(SiglipBatch batch, SigLip.Reference.Backends.LossOptions loss, bool collectOutputs) => throw new NotSupportedException();
        public SigLip.Reference.Backends.StepResult ForwardBackward(SiglipBatch batch, SigLip.Reference.Backends.LossOptions loss, bool collectOutputs) => throw new NotSupportedException();
        public SigLip.Reference.Backends.EncodedBatch EncodeForTraining(SiglipBatch batch) => throw new NotSupportedException();
        public void BackwardFromEmbeddings(Tensor gradImageEmbeds, Tensor gradTextEmbeds, double gradLogitScale, double gradLogitBias) => throw new NotSupportedException();
        public NamedTensors Gradients() => throw new NotSupportedException();
        public void AllReduceGradients(SigLip.Reference.Distributed.ICommunicator communicator) => throw new NotSupportedException();
        public double OptimizerStep(SigLip.Reference.Backends.AdamWSettings settings, double learningRate) => throw new NotSupportedException();
        public NamedTensors GetParameters() => throw new NotSupportedException();
        public void SetParameters(IReadOnlyDictionary<string, Tensor> parameters) => throw new NotSupportedException();
        public NamedTensors GetOptimizerState() => throw new NotSupportedException();
        public void SetOptimizerState(IReadOnlyDictionary<string, Tensor> state) => throw new NotSupportedException();
        public void Dispose() { }
    }
}
