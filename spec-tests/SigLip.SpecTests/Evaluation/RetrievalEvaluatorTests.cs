using System.Text.Json;
using SigLip.Reference;
using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.Evaluation;

namespace SigLip.SpecTests.Evaluation;

public class RetrievalEvaluatorTests
{
    private static Tensor Rows(params double[][] rows) => new([rows.Length, rows[0].Length], rows.SelectMany(r => r).ToArray());

    /// <summary>
    /// Texts e0, e1, e2; unit image vectors chosen so the ranks are known by hand:
    /// image 0 (1, 0, 0) text 0: rank 1. Image 1 (.8, .6, 0) text 1: text 0 scores .8 > .6, rank 2.
    /// Image 2 (.6, 0, .8) text 1: texts 0 and 2 beat its 0, rank 3. Image 3 (0, .6, .8) text 2: rank 1.
    /// Text to image: text 0 -> image 0 first, rank 1. Text 1 -> best right image scores .6 and
    /// image 3 (wrong) ties it at .6, rank 2 (ties count against). Text 2 -> image 3 scores .8,
    /// image 2 (wrong) ties, rank 2.
    /// </summary>
    [Fact]
    public void Recalls_are_exact_with_ties_counted_against_the_model_and_k_beyond_the_candidates()
    {
        var images = Rows([1, 0, 0], [0.8, 0.6, 0], [0.6, 0, 0.8], [0, 0.6, 0.8]);
        var texts = Rows([1, 0, 0], [0, 1, 0], [0, 0, 1]);
        var result = RetrievalEvaluator.Score(images, texts, [0, 1, 1, 2], [1, 2, 3, 10]);
        Assert.Equal(4, result.Images);
        Assert.Equal(3, result.Texts);
        Assert.Equal([(1, 0.5), (2, 0.75), (3, 1.0), (10, 1.0)], result.ImageToText.Select(r => (r.K, r.Recall)));
        Assert.Equal([(1, 1.0 / 3.0), (2, 1.0), (3, 1.0), (10, 1.0)], result.TextToImage.Select(r => (r.K, r.Recall)));
        Assert.Equal(0.75, result.ImageToTextRecallAt(2));
        Assert.Contains("recall@5", Assert.Throws<ArgumentException>(() => result.TextToImageRecallAt(5)).Message);
    }

    [Fact]
    public void A_model_that_scores_everything_equally_gets_no_credit_at_one()
    {
        var same = Rows([1, 0], [1, 0], [1, 0]);
        var result = RetrievalEvaluator.Score(same, Rows([1, 0], [1, 0], [1, 0]), [0, 1, 2], [1, 3]);
        Assert.Equal(0.0, result.ImageToTextRecallAt(1));
        Assert.Equal(0.0, result.TextToImageRecallAt(1));
        Assert.Equal(1.0, result.ImageToTextRecallAt(3));
        Assert.Equal(1.0, result.TextToImageRecallAt(3));
    }

    /// <summary>
    /// "t0" and "T0!" tokenize alike, so they are one text: two distinct texts, not three.
    /// Images 0 and 1 both carry text 0; image 2 carries text 1.
    /// Image 1 (.6, .8) is nearer text 1 (e1) than its own text 0 (e0): image-to-text rank 2.
    /// Text 0 as a query: image 0 scores 1, the best; right. Text 1: image 2 scores 1; right.
    /// </summary>
    [Fact]
    public void Duplicate_captions_are_one_text_and_any_of_their_images_is_right()
    {
        var tokenizer = new WordTokenizer(["t0", "t1"]);
        var model = new FakeEmbeddingModel(tokenizer, new Dictionary<string, double[]> { ["t0"] = [1, 0], ["t1"] = [0, 1] }, 2);
        var examples = new[]
        {
            FakeEmbeddingModel.Example([1, 0], "t0"),
            FakeEmbeddingModel.Example([0.6, 0.8], "T0!"),
            FakeEmbeddingModel.Example([0, 1], "t1"),
        };
        var (texts, textOf) = RetrievalEvaluator.DistinctTexts(tokenizer, examples.Select(e => e.Caption).ToArray(), 3);
        Assert.Equal(["t0", "t1"], texts);
        Assert.Equal([0, 0, 1], textOf);
        var result = RetrievalEvaluator.Evaluate(model, tokenizer, examples, 3, [1, 2]);
        Assert.Equal(3, result.Images);
        Assert.Equal(2, result.Texts);
        Assert.Equal(2.0 / 3.0, result.ImageToTextRecallAt(1));
        Assert.Equal(1.0, result.ImageToTextRecallAt(2));
        Assert.Equal(1.0, result.TextToImageRecallAt(1));
    }

    [Fact]
    public void Bad_inputs_say_what_is_wrong()
    {
        var images = Rows([1, 0], [0, 1]);
        Assert.Contains("K >= 1", Assert.Throws<ArgumentException>(() => RetrievalEvaluator.Score(images, images, [0, 1], [0])).Message);
        Assert.Contains("Image 1", Assert.Throws<ArgumentException>(() => RetrievalEvaluator.Score(images, images, [0, 2])).Message);
        Assert.Contains("[3, D]", Assert.Throws<ArgumentException>(() => RetrievalEvaluator.Score(images, images, [0, 1, 1])).Message);
    }

    [Fact]
    public void The_report_writes_the_agreed_json_fields_atomically()
    {
        var zeroShot = ZeroShotEvaluator.Score(Rows([1, 0], [0, 1]), [0, 0], Rows([1, 0], [0, 1]), ["a", "b"]);
        var retrieval = RetrievalEvaluator.Score(Rows([1, 0], [0, 1]), Rows([1, 0], [0, 1]), [0, 1]);
        var report = new EvaluationReport("test data", zeroShot, zeroShot, retrieval);
        string folder = Path.Combine(Path.GetTempPath(), "siglip-eval-" + Guid.NewGuid().ToString("N"));
        string path = Path.Combine(folder, "report.json");
        try
        {
            report.WriteJson(path, [new("steps", 7), new("backend", "reference"), new("final_loss", double.NaN)]);
            Assert.Equal(["report.json"], Directory.GetFiles(folder).Select(Path.GetFileName));
            using var json = JsonDocument.Parse(File.ReadAllText(path));
            var root = json.RootElement;
            Assert.Equal(7, root.GetProperty("steps").GetInt32());
            Assert.Equal("reference", root.GetProperty("backend").GetString());
            Assert.Equal(JsonValueKind.Null, root.GetProperty("final_loss").ValueKind);
            Assert.Equal(0.5, root.GetProperty("zero_shot_accuracy").GetDouble());
            Assert.Equal(0.5, root.GetProperty("chance_accuracy").GetDouble());
            Assert.Equal(0.5, root.GetProperty("unseen_zero_shot_accuracy").GetDouble());
            Assert.Equal(1.0, root.GetProperty("zero_shot_per_class_accuracy").GetProperty("a").GetDouble() * 2); // a: 1 of 2 right
            Assert.False(root.GetProperty("zero_shot_per_class_accuracy").TryGetProperty("b", out _)); // no examples
            foreach (var k in new[] { 1, 5, 10 })
            {
                Assert.Equal(1.0, root.GetProperty($"image_to_text_recall_at_{k}").GetDouble());
                Assert.Equal(1.0, root.GetProperty($"text_to_image_recall_at_{k}").GetDouble());
            }
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
