using SigLip.Reference.Backends;
using SigLip.Reference.Data;

namespace SigLip.Reference.Evaluation;

/// <summary>Recall at one cut-off: the fraction of queries with a right answer among the top K.</summary>
/// <param name="K">The cut-off.</param>
/// <param name="Recall">The fraction of queries with a right answer among their top K.</param>
public sealed record RecallAtK(int K, double Recall);

/// <summary>Retrieval results in both directions.</summary>
/// <param name="Images">Image count (the image-to-text queries and the text-to-image candidates).</param>
/// <param name="Texts">Distinct caption count (the text-to-image queries and the image-to-text candidates).</param>
/// <param name="ImageToText">Recall@K of images as queries.</param>
/// <param name="TextToImage">Recall@K of texts as queries.</param>
public sealed record RetrievalResult(
    int Images,
    int Texts,
    IReadOnlyList<RecallAtK> ImageToText,
    IReadOnlyList<RecallAtK> TextToImage)
{
    /// <summary>Image-to-text recall@<paramref name="k"/>; a K that was not computed throws, listing the computed ones.</summary>
    public double ImageToTextRecallAt(int k) => Find(ImageToText, k, "image-to-text");
    /// <summary>Text-to-image recall@<paramref name="k"/>; a K that was not computed throws, listing the computed ones.</summary>
    public double TextToImageRecallAt(int k) => Find(TextToImage, k, "text-to-image");

    private static double Find(IReadOnlyList<RecallAtK> list, int k, string direction) =>
        list.FirstOrDefault(r => r.K == k)?.Recall
        ?? throw new ArgumentException($"No {direction} recall@{k} was computed; computed: {string.Join(", ", list.Select(r => r.K))}.");
}

/// <summary>The distinct texts among some captions, and each caption's index into them.</summary>
/// <param name="Texts">The distinct texts, in first-seen order.</param>
/// <param name="TextOfCaption">For each caption, the index of its text in <paramref name="Texts"/>.</param>
public sealed record DistinctTextsResult(IReadOnlyList<string> Texts, IReadOnlyList<int> TextOfCaption);

/// <summary>
/// Image-text retrieval recall@K in both directions, by cosine similarity of the normalised
/// embeddings.
/// <para>
/// Duplicate captions: captions whose token ids are identical are one text (the model cannot
/// tell them apart, so they would tie). Image to text: every image is a query; the candidates are
/// the distinct texts; right = the image's own text. Text to image: every distinct text is a query
/// once; the candidates are all images; right = ANY image with that text.
/// </para>
/// <para>
/// Ties count against the model: the rank of the best right candidate is 1 + the number of wrong
/// candidates scoring at least as high. So a model that scores everything equally gets no credit,
/// and a K at or above the number of candidates gives recall 1.
/// </para>
/// </summary>
public static class RetrievalEvaluator
{
    /// <summary>Recall@1, @5 and @10.</summary>
    public static IReadOnlyList<int> DefaultKs { get; } = [1, 5, 10];

    /// <summary>
    /// Embeds the images and the distinct captions of <paramref name="examples"/> with
    /// <paramref name="model"/> and gives recall@K in both directions (rules above).
    /// </summary>
    public static RetrievalResult Evaluate(
        ISiglipModel model,
        ITextTokenizer tokenizer,
        IReadOnlyList<ImageTextExample> examples,
        int maxTextLength,
        IReadOnlyList<int>? ks = null,
        int batchSize = 64)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0) throw new ArgumentException("Retrieval needs at least one image-caption pair.");
        var (texts, textOfImage) = DistinctTexts(tokenizer, examples.Select(e => e.Caption).ToArray(), maxTextLength);
        var textEmbeds = Embeddings.OfTexts(model, tokenizer, texts, maxTextLength, batchSize);
        var imageEmbeds = Embeddings.OfImages(model, examples, batchSize);
        return Score(imageEmbeds, textEmbeds, textOfImage, ks);
    }

    /// <summary>
    /// The distinct texts among <paramref name="captions"/> (first spelling kept, in first-seen
    /// order; two captions are the same text when their token ids are) and each caption's index into them.
    /// </summary>
    public static DistinctTextsResult DistinctTexts(ITextTokenizer tokenizer, IReadOnlyList<string> captions, int maxTextLength)
    {
        var ids = tokenizer.Encode(captions, maxTextLength);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var texts = new List<string>();
        var textOf = new int[captions.Count];
        for (int i = 0; i < captions.Count; i++)
        {
            string key = string.Join(',', ids.Ids.Skip(i * ids.Length).Take(ids.Length));
            if (!seen.TryGetValue(key, out int t))
            {
                t = texts.Count;
                seen[key] = t;
                texts.Add(captions[i]);
            }
            textOf[i] = t;
        }
        return new DistinctTextsResult(texts, textOf);
    }

    /// <summary>
    /// Recall@K from image embeddings [N, D], distinct text embeddings [M, D] and each image's text index.
    /// </summary>
    public static RetrievalResult Score(Tensor imageEmbeds, Tensor textEmbeds, IReadOnlyList<int> textOfImage, IReadOnlyList<int>? ks = null)
    {
        ArgumentNullException.ThrowIfNull(textOfImage);
        ks ??= DefaultKs;
        foreach (int k in ks) if (k < 1) throw new ArgumentException($"Recall@K needs K >= 1, got {k}.");
        int n = textOfImage.Count;
        if (imageEmbeds.Rank != 2 || imageEmbeds.Shape[0] != n)
            throw new ArgumentException($"Image embeddings have shape {Tensor.ShapeToString(imageEmbeds.Shape)} but {n} images have a text index; expected [{n}, D].");
        if (textEmbeds.Rank != 2) throw new ArgumentException($"Text embeddings have shape {Tensor.ShapeToString(textEmbeds.Shape)}; expected [texts, D].");
        int m = textEmbeds.Shape[0];
        for (int i = 0; i < n; i++)
            if (textOfImage[i] < 0 || textOfImage[i] >= m) throw new ArgumentException($"Image {i} has text index {textOfImage[i]}, outside 0..{m - 1}.");
        var s = Embeddings.Similarities(imageEmbeds, textEmbeds); // [N, M]

        // Image -> text: candidates are the M texts; exactly one is right.
        var imageRanks = new int[n];
        for (int i = 0; i < n; i++)
        {
            int right = textOfImage[i];
            int rank = 1;
            for (int t = 0; t < m; t++)
                if (t != right && s[i, t] >= s[i, right]) rank++;
            imageRanks[i] = rank;
        }

        // Text -> image: candidates are the N images; every image with this text is right.
        var textRanks = new List<int>();
        for (int t = 0; t < m; t++)
        {
            var rightImages = Enumerable.Range(0, n).Where(i => textOfImage[i] == t).ToArray();
            if (rightImages.Length == 0) continue; // a text no image has is not a query
            double best = rightImages.Max(i => s[i, t]);
            int rank = 1;
            for (int i = 0; i < n; i++)
                if (textOfImage[i] != t && s[i, t] >= best) rank++;
            textRanks.Add(rank);
        }

        return new RetrievalResult(
            n,
            textRanks.Count,
            ks.Select(k => new RecallAtK(k, Recall(imageRanks, k))).ToArray(),
            ks.Select(k => new RecallAtK(k, Recall(textRanks, k))).ToArray());
    }

    private static double Recall(IReadOnlyList<int> ranks, int k) => ranks.Count == 0 ? double.NaN : ranks.Count(r => r <= k) / (double)ranks.Count;
}
