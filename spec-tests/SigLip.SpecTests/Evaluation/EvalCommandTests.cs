using System.CommandLine;
using System.Text.Json;
using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.IO;
using SigLip.Reference.Models;

namespace SigLip.SpecTests.Evaluation;

/// <summary>`siglip eval` end to end: a checkpoint folder in, tables out, the JSON report written.</summary>
public class EvalCommandTests
{
    /// <summary>The verb is internal to the CLI; build a root command with it as Program does.</summary>
    private static int RunEval(params string[] args)
    {
        var type = typeof(SigLip.Cli.Cli).Assembly.GetType("SigLip.Cli.Commands.EvalCommand", throwOnError: true)!;
        var command = (Command)type.GetMethod("Create")!.Invoke(null, null)!;
        var root = new RootCommand("test");
        root.Subcommands.Add(command);
        return SigLip.Cli.Cli.Run(root, ["eval", .. args]);
    }

    [Fact]
    public void A_checkpoint_of_a_built_in_model_is_evaluated_and_reported()
    {
        var tokenizer = WordTokenizer.ForShapes();
        var config = new SiglipConfig(
            new TextConfig(VocabSize: tokenizer.VocabSize, HiddenSize: 8, IntermediateSize: 16, NumHiddenLayers: 1, NumAttentionHeads: 2,
                MaxPositionEmbeddings: ShapesVocabulary.RecommendedTextLength),
            new VisionConfig(HiddenSize: 8, IntermediateSize: 16, NumHiddenLayers: 1, NumAttentionHeads: 2, ImageSize: 8, PatchSize: 4));
        string folder = Path.Combine(Path.GetTempPath(), "siglip-eval-cmd-" + Guid.NewGuid().ToString("N"));
        try
        {
            HfCheckpoint.Save(folder, config, ModelInit.Random(config, 3), SafeTensorDType.F64);
            string report = Path.Combine(folder, "eval.json");
            Assert.Equal(0, RunEval("--checkpoint", folder, "--images-per-class", "2", "--report", report));
            using var json = JsonDocument.Parse(File.ReadAllText(report));
            var root = json.RootElement;
            Assert.Equal("managed", root.GetProperty("backend").GetString()); // the default backend
            Assert.Equal("float32", root.GetProperty("dtype").GetString());
            Assert.Equal(24, root.GetProperty("zero_shot_examples").GetInt32());
            Assert.Equal(1.0 / 12.0, root.GetProperty("chance_accuracy").GetDouble());
            Assert.Equal(1.0 / 16.0, root.GetProperty("unseen_chance_accuracy").GetDouble());
            Assert.InRange(root.GetProperty("zero_shot_accuracy").GetDouble(), 0, 1);
            foreach (var k in new[] { 1, 5, 10 })
            {
                Assert.InRange(root.GetProperty($"image_to_text_recall_at_{k}").GetDouble(), 0, 1);
                Assert.InRange(root.GetProperty($"text_to_image_recall_at_{k}").GetDouble(), 0, 1);
            }

            Assert.Equal(1, RunEval("--checkpoint", Path.Combine(folder, "missing")));

            // trainer_state.json only hints at the tokenizer: one that cannot be read is no hint (it used to end
            // in System.Text.Json's InvalidOperationException when it was not an object or held an unpaired surrogate).
            foreach (var state in new[] { "[]", "{\"data_description\": \"\\ud800\"}", "{" })
            {
                File.WriteAllText(Path.Combine(folder, "trainer_state.json"), state);
                Assert.Equal(0, RunEval("--checkpoint", folder, "--images-per-class", "1"));
            }
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
