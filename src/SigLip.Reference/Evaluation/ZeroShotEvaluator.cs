using SigLip.Reference.Backends;
using SigLip.Reference.Data;

namespace SigLip.Reference.Evaluation;

/// <summary>How one class fared.</summary>
/// <param name="ClassName">The class.</param>
/// <param name="Examples">Its examples.</param>
/// <param name="Correct">How many were classified as it.</param>
public sealed record ClassAccuracy(string ClassName, int Examples, int Correct)
{
    /// <summary>Correct / Examples; NaN for a class with no examples.</summary>
    public double Accuracy => Examples == 0 ? double.NaN : Correct / (double)Examples;
}

/// <summary>Zero-shot classification results.</summary>
/// <param name="ClassNames">The classes, in the order prediction indices refer to.</param>
/// <param name="Accuracy">Fraction of examples whose predicted class is their class.</param>
/// <param name="ChanceAccuracy">1 / number of classes: what guessing gets on balanced data.</param>
/// <param name="MeanPerClassAccuracy">Mean of the per-class accuracies over classes that have examples.</param>
/// <param name="Predictions">Predicted class index per example.</param>
/// <param name="Examples">The number of images classified.</param>
/// <param name="PerClass">Each class's accuracy.</param>
public sealed record ZeroShotResult(
    int Examples,
    IReadOnlyList<string> ClassNames,
    double Accuracy,
    double ChanceAccuracy,
    double MeanPerClassAccuracy,
    IReadOnlyList<ClassAccuracy> PerClass,
    IReadOnlyList<int> Predictions);

/// <summary>
/// Zero-shot classification (CLIP/SigLIP style): each class name is put into every prompt
/// template, the normalised text embeddings are averaged per class and renormalised, and an
/// image is given the class whose embedding is most similar to its own. The learned scale and
/// bias are monotone, so they cannot change the argmax and are not used. Ties go to the class
/// listed first.
/// </summary>
public static class ZeroShotEvaluator
{
    /// <summary>The slot in a template where the class name goes, e.g. "a photo of a {}".</summary>
    public const string Slot = "{}";

    /// <summary>Classifies the images of <paramref name="examples"/> among <paramref name="classNames"/> as described above; accuracy against each example's class.</summary>
    public static ZeroShotResult Evaluate(
        ISiglipModel model,
        ITextTokenizer tokenizer,
        IReadOnlyList<ImageTextExample> examples,
        IReadOnlyList<string> classNames,
        IReadOnlyList<string> templates,
        int maxTextLength,
        int batchSize = 64)
    {
        ArgumentNullException.ThrowIfNull(examples);
        var labels = Labels(examples, classNames);
        var classEmbeds = ClassEmbeddings(model, tokenizer, classNames, templates, maxTextLength, batchSize);
        var imageEmbeds = Embeddings.OfImages(model, examples, batchSize);
        return Score(imageEmbeds, labels, classEmbeds, classNames);
    }

    /// <summary>
    /// One embedding per class [K, D]: the mean over templates of the normalised prompt
    /// embeddings, renormalised to unit length (left at zero if the mean is exactly zero).
    /// </summary>
    public static Tensor ClassEmbeddings(ISiglipModel model, ITextTokenizer tokenizer, IReadOnlyList<string> classNames,
        IReadOnlyList<string> templates, int maxTextLength, int batchSize = 64)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(templates);
        if (classNames.Count == 0) throw new ArgumentException("Zero-shot classification needs at least one class name.");
        if (templates.Count == 0) throw new ArgumentException($"Zero-shot classification needs at least one prompt template (e.g. \"a photo of a {Slot}\").");
        foreach (var t in templates)
            if (t is null || !t.Contains(Slot, StringComparison.Ordinal))
                throw new ArgumentException($"Prompt template '{t}' has no '{Slot}' slot for the class name; write e.g. \"a photo of a {Slot}\".");
        var prompts = classNames.SelectMany(c => templates.Select(t => t.Replace(Slot, c, StringComparison.Ordinal))).ToArray();
        var embeds = Embeddings.OfTexts(model, tokenizer, prompts, maxTextLength, batchSize); // [K * T, D], class-major
        int k = classNames.Count, tCount = templates.Count, d = embeds.Shape[1];
        var result = new double[k * d];
        for (int c = 0; c < k; c++)
        {
            for (int t = 0; t < tCount; t++)
                for (int j = 0; j < d; j++) result[c * d + j] += embeds.Data[(c * tCount + t) * d + j] / tCount;
            double norm = 0;
            for (int j = 0; j < d; j++) norm += result[c * d + j] * result[c * d + j];
            norm = Math.Sqrt(norm);
            if (norm > 0) for (int j = 0; j < d; j++) result[c * d + j] /= norm;
        }
        return new Tensor([k, d], result);
    }

    /// <summary>Scores image embeddings [N, D] against class embeddings [K, D]; labels are class indices.</summary>
    public static ZeroShotResult Score(Tensor imageEmbeds, IReadOnlyList<int> labels, Tensor classEmbeds, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        int n = labels.Count, k = classNames.Count;
        if (imageEmbeds.Rank != 2 || imageEmbeds.Shape[0] != n)
            throw new ArgumentException($"Image embeddings have shape {Tensor.ShapeToString(imageEmbeds.Shape)} but there are {n} labels; expected [{n}, D].");
        if (classEmbeds.Rank != 2 || classEmbeds.Shape[0] != k)
            throw new ArgumentException($"Class embeddings have shape {Tensor.ShapeToString(classEmbeds.Shape)} but there are {k} class names; expected [{k}, D].");
        for (int i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= k) throw new ArgumentException($"Label {labels[i]} of example {i} is not a class index 0..{k - 1}.");
        var similarity = Embeddings.Similarities(imageEmbeds, classEmbeds);
        var predictions = new int[n];
        var counts = new int[k];
        var correct = new int[k];
        int totalCorrect = 0;
        for (int i = 0; i < n; i++)
        {
            int best = 0;
            for (int c = 1; c < k; c++)
                if (similarity[i, c] > similarity[i, best]) best = c; // strict: ties keep the first class
            predictions[i] = best;
            counts[labels[i]]++;
            if (best == labels[i]) { correct[best]++; totalCorrect++; }
        }
        var perClass = Enumerable.Range(0, k).Select(c => new ClassAccuracy(classNames[c], counts[c], correct[c])).ToArray();
        var present = perClass.Where(p => p.Examples > 0).ToArray();
        return new ZeroShotResult(
            n,
            classNames.ToArray(),
            n == 0 ? double.NaN : totalCorrect / (double)n,
            1.0 / k,
            present.Length == 0 ? double.NaN : present.Average(p => p.Accuracy),
            perClass,
            predictions);
    }

    /// <summary>Class index of each example from its <see cref="ImageTextExample.ClassName"/>.</summary>
    public static IReadOnlyList<int> Labels(IReadOnlyList<ImageTextExample> examples, IReadOnlyList<string> classNames)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int c = 0; c < classNames.Count; c++)
            if (!index.TryAdd(classNames[c], c)) throw new ArgumentException($"Class name '{classNames[c]}' is listed twice.");
        var labels = new int[examples.Count];
        for (int i = 0; i < examples.Count; i++)
        {
            string? name = examples[i].ClassName;
            if (name is null) throw new ArgumentException($"Example {i} ('{examples[i].Caption}') has no class name; zero-shot classification needs labelled examples.");
            if (!index.TryGetValue(name, out labels[i]))
                throw new ArgumentException($"Example {i} has class '{name}', which is not among the {classNames.Count} class names ({string.Join(", ", classNames.Take(8))}{(classNames.Count > 8 ? ", ..." : "")}).");
        }
        return labels;
    }
}
