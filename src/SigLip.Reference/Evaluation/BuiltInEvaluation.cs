using SigLip.Reference.Backends;
using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.Models;

namespace SigLip.Reference.Evaluation;

/// <summary>How to evaluate on the built-in data.</summary>
/// <param name="ExamplesPerClass">Test images per class (the splits are balanced in blocks, so every class gets exactly this many).</param>
/// <param name="Seed">Seed of the test and unseen streams (any seed: the test split never repeats training images).</param>
/// <param name="Data">Dataset options (image size, colours, shapes, noise); null: defaults with the model's image size. The split is set here.</param>
/// <param name="MaxTextLength">Token length; null: the model's text max_position_embeddings (SigLIP pads to it, as in training).</param>
/// <param name="RecallKs">Recall cut-offs; null: 1, 5, 10.</param>
/// <param name="BatchSize">Images or texts embedded at a time.</param>
public sealed record BuiltInEvaluationSettings(
    int ExamplesPerClass = 20,
    int Seed = 1000,
    ShapesDatasetOptions? Data = null,
    int? MaxTextLength = null,
    IReadOnlyList<int>? RecallKs = null,
    int BatchSize = 64);

/// <summary>
/// The built-in evaluation: zero-shot classification of fresh test images (training's
/// combinations, new positions, sizes, jitter and noise) into the seen classes; zero-shot
/// classification of held-out combinations among ALL combinations; and retrieval on the test images.
/// </summary>
public static class BuiltInEvaluation
{
    /// <summary>Runs the three evaluations above on <paramref name="model"/> (default settings when null).</summary>
    public static EvaluationReport Run(ISiglipModel model, BuiltInEvaluationSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        settings ??= new BuiltInEvaluationSettings();
        if (settings.ExamplesPerClass < 1) throw new ArgumentException($"Images per class (--images-per-class) must be at least 1, got {settings.ExamplesPerClass}.");
        var data = settings.Data ?? new ShapesDatasetOptions(ImageSize: model.Config.Vision.ImageSize);
        CheckFits(settings.ExamplesPerClass, data, maxBytes: null, option: "ExamplesPerClass");
        if (data.ImageSize != model.Config.Vision.ImageSize)
            throw new ArgumentException($"The built-in data is {data.ImageSize}x{data.ImageSize} but the model takes {model.Config.Vision.ImageSize}x{model.Config.Vision.ImageSize} images; evaluate with the image size it was trained on.");
        int textLength = settings.MaxTextLength ?? model.Config.Text.MaxPositionEmbeddings;
        var tokenizer = WordTokenizer.ForShapes();
        if (tokenizer.VocabSize > model.Config.Text.VocabSize)
            throw new ArgumentException($"The built-in tokenizer has {tokenizer.VocabSize} tokens but the model's text vocabulary has {model.Config.Text.VocabSize}; this checkpoint was not trained on the built-in data.");

        var test = new ShapesDataset(data with { Split = ShapesSplit.Test });
        var testExamples = test.Take(settings.Seed, settings.ExamplesPerClass * test.ClassNames.Count);
        var zeroShot = ZeroShotEvaluator.Evaluate(model, tokenizer, testExamples, test.ClassNames, ShapesDataset.PromptTemplates, textLength, settings.BatchSize);

        ZeroShotResult? unseen = null;
        if (data.HoldOutCombinations)
        {
            var held = new ShapesDataset(data with { Split = ShapesSplit.Unseen });
            var heldExamples = held.Take(settings.Seed, settings.ExamplesPerClass * held.HeldOutClassNames.Count);
            unseen = ZeroShotEvaluator.Evaluate(model, tokenizer, heldExamples, held.ClassNames, ShapesDataset.PromptTemplates, textLength, settings.BatchSize);
        }

        var retrieval = RetrievalEvaluator.Evaluate(model, tokenizer, testExamples, textLength, settings.RecallKs, settings.BatchSize);
        return new EvaluationReport(test.Description, zeroShot, unseen, retrieval);
    }

    /// <summary>
    /// Refuses <paramref name="examplesPerClass"/> before any image is drawn when the test images of every class
    /// and, while they are still held, those of the held-out classes would not fit in memory (<see cref="ModelSize.CheckImagesFit"/>);
    /// the message names <paramref name="option"/> (the CLI's <c>--images-per-class</c> or <c>--eval-images-per-class</c>).
    /// </summary>
    /// <param name="availableBytes">The memory to plan with; null: what is available to this process.</param>
    /// <param name="availableName">What <paramref name="availableBytes"/> is, in words.</param>
    public static void CheckFits(int examplesPerClass, ShapesDatasetOptions data, long? maxBytes, string option, long? availableBytes = null,
        string availableName = "available to this process")
    {
        ArgumentNullException.ThrowIfNull(data);
        var test = new ShapesDataset(data with { Split = ShapesSplit.Test });
        long classes = test.ClassNames.Count + (data.HoldOutCombinations ? test.HeldOutClassNames.Count : 0);
        ModelSize.CheckImagesFit(examplesPerClass, classes, 3L * data.ImageSize * data.ImageSize, maxBytes, option, availableBytes, availableName);
    }
}
