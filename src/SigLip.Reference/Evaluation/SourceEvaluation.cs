using SigLip.Reference.Backends;
using SigLip.Reference.Data;

namespace SigLip.Reference.Evaluation;

/// <summary>How to evaluate on an arbitrary image-text source.</summary>
/// <param name="Limit">At most this many examples are read (the first ones of the source's order for <paramref name="Seed"/>).</param>
/// <param name="Seed">The source's order.</param>
/// <param name="MaxTextLength">Token length; null: the model's text max_position_embeddings.</param>
/// <param name="PromptTemplates">Zero-shot templates ({} = class name); null: "a photo of a {}".</param>
/// <param name="RecallKs">Recall cut-offs; null: 1, 5, 10.</param>
/// <param name="BatchSize">Images or texts embedded at a time.</param>
public sealed record SourceEvaluationSettings(
    int Limit = 1000,
    int Seed = 0,
    int? MaxTextLength = null,
    IReadOnlyList<string>? PromptTemplates = null,
    IReadOnlyList<int>? RecallKs = null,
    int BatchSize = 64);

/// <summary>
/// Evaluation on any <see cref="IImageTextSource"/> (e.g. a folder of images with captions):
/// retrieval always; zero-shot classification too when the source has class names and every
/// example read carries one of them.
/// </summary>
public static class SourceEvaluation
{
    /// <summary>One template: "a photo of a {}".</summary>
    public static IReadOnlyList<string> DefaultPromptTemplates { get; } = ["a photo of a {}"];

    /// <summary>Reads examples of <paramref name="source"/> (as many as the settings allow) and evaluates <paramref name="model"/> on them.</summary>
    public static EvaluationReport Run(ISiglipModel model, ITextTokenizer tokenizer, IImageTextSource source, SourceEvaluationSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(source);
        settings ??= new SourceEvaluationSettings();
        // One line (an ArgumentOutOfRangeException's message adds the parameter and the value on lines of their own).
        if (settings.Limit < 1) throw new ArgumentException($"The evaluation limit (--limit) must be at least 1 example, got {settings.Limit}.");
        if (source.ImageSize != model.Config.Vision.ImageSize || source.Channels != model.Config.Vision.NumChannels)
            throw new ArgumentException($"{source.Description} gives {source.Channels}x{source.ImageSize}x{source.ImageSize} images but the model takes {model.Config.Vision.NumChannels}x{model.Config.Vision.ImageSize}x{model.Config.Vision.ImageSize}.");
        int textLength = settings.MaxTextLength ?? model.Config.Text.MaxPositionEmbeddings;
        var examples = source.Examples(settings.Seed).Take(settings.Limit).ToArray();
        if (examples.Length == 0) throw new ArgumentException($"{source.Description} gave no usable examples to evaluate on.");

        ZeroShotResult? zeroShot = null;
        var classes = source.ClassNames;
        var known = new HashSet<string>(classes, StringComparer.Ordinal);
        if (classes.Count > 0 && examples.All(e => e.ClassName is { } c && known.Contains(c)))
            zeroShot = ZeroShotEvaluator.Evaluate(model, tokenizer, examples, classes, settings.PromptTemplates ?? DefaultPromptTemplates, textLength, settings.BatchSize);

        var retrieval = RetrievalEvaluator.Evaluate(model, tokenizer, examples, textLength, settings.RecallKs, settings.BatchSize);
        return new EvaluationReport($"{source.Description}, {examples.Length} examples", zeroShot, null, retrieval);
    }
}
