using SigLip.Reference.Backends;
using SigLip.Reference.Data;
using SigLip.Reference.Data.BuiltIn;

namespace SigLip.Reference.Evaluation;

/// <summary>
/// Embeds images and texts with any backend's model, a batch at a time, and checks what comes
/// back: [count, D] rows, finite. D = the model's embedding width.
/// </summary>
public static class Embeddings
{
    /// <summary>L2-normalised image embeddings [examples.Count, D].</summary>
    public static Tensor OfImages(ISiglipModel model, IReadOnlyList<ImageTextExample> examples, int batchSize = 64)
    {
        ArgumentNullException.ThrowIfNull(examples);
        return OfImages(model, examples.Count, (start, count) => ExampleBatch.StackPixels(examples.Skip(start).Take(count).ToArray()), batchSize, "examples");
    }

    /// <summary>
    /// L2-normalised image embeddings [count, D] of images that <paramref name="pixels"/> loads a batch at a
    /// time: pixels(start, n) gives the pixel values [n, C, S, S] of images start..start+n-1 (e.g. decoded
    /// files, so that only one batch is in memory at once).
    /// </summary>
    public static Tensor OfImages(ISiglipModel model, int count, Func<int, int, Tensor> pixels, int batchSize = 64) =>
        OfImages(model, count, pixels, batchSize, "images");

    private static Tensor OfImages(ISiglipModel model, int count, Func<int, int, Tensor> pixels, int batchSize, string what)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(pixels);
        if (count < 1) throw new ArgumentException("No images given: at least one image is needed.");
        CheckBatchSize(batchSize);
        var rows = new List<Tensor>();
        for (int start = 0; start < count; start += batchSize)
        {
            int n = Math.Min(batchSize, count - start);
            var embeds = model.EmbedImages(pixels(start, n));
            rows.Add(Check(embeds, n, $"image embeddings of {what} {start}..{start + n - 1}"));
        }
        return Concatenate(rows, count);
    }

    /// <summary>L2-normalised text embeddings [texts.Count, D], each text tokenized to <paramref name="maxTextLength"/> ids.</summary>
    public static Tensor OfTexts(ISiglipModel model, ITextTokenizer tokenizer, IReadOnlyList<string> texts, int maxTextLength, int batchSize = 64)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count == 0) throw new ArgumentException("No texts given: at least one text is needed.");
        if (tokenizer.VocabSize > model.Config.Text.VocabSize)
            throw new ArgumentException($"The tokenizer has {tokenizer.VocabSize} ids but the model's text_config.vocab_size is {model.Config.Text.VocabSize}: its ids would not all have an embedding.");
        CheckBatchSize(batchSize);
        var rows = new List<Tensor>();
        for (int start = 0; start < texts.Count; start += batchSize)
        {
            var chunk = texts.Skip(start).Take(batchSize).ToArray();
            var embeds = model.EmbedTexts(tokenizer.Encode(chunk, maxTextLength));
            rows.Add(Check(embeds, chunk.Length, $"text embeddings of texts {start}..{start + chunk.Length - 1} (first: '{chunk[0]}')"));
        }
        return Concatenate(rows, texts.Count);
    }

    /// <summary>Row-by-row dot products a @ b^T: [a rows, b rows] (cosine similarities of normalised rows).</summary>
    public static double[,] Similarities(Tensor a, Tensor b)
    {
        if (a.Rank != 2 || b.Rank != 2 || a.Shape[1] != b.Shape[1])
            throw new ArgumentException($"Similarities need two [rows, D] tensors of the same D; got {Tensor.ShapeToString(a.Shape)} and {Tensor.ShapeToString(b.Shape)}.");
        int n = a.Shape[0], m = b.Shape[0], d = a.Shape[1];
        var s = new double[n, m];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
            {
                double dot = 0;
                for (int k = 0; k < d; k++) dot += a.Data[i * d + k] * b.Data[j * d + k];
                s[i, j] = dot;
            }
        return s;
    }

    /// <summary>
    /// SigLIP's match probabilities [images, texts]: sigmoid(exp(t') * &lt;x_i, y_j&gt; + b) of normalised
    /// embeddings, t' = logit_scale and b = logit_bias as stored in the checkpoint (HF: sigmoid(logits_per_image)).
    /// </summary>
    public static Tensor SigmoidProbabilities(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias)
    {
        ArgumentNullException.ThrowIfNull(imageEmbeds);
        ArgumentNullException.ThrowIfNull(textEmbeds);
        var s = Similarities(imageEmbeds, textEmbeds);
        int n = s.GetLength(0), m = s.GetLength(1);
        double scale = Math.Exp(logitScale);
        var p = new double[n * m];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
            {
                double z = scale * s[i, j] + logitBias;
                p[i * m + j] = z >= 0 ? 1 / (1 + Math.Exp(-z)) : Math.Exp(z) / (1 + Math.Exp(z));
            }
        return new Tensor([n, m], p);
    }

    private static void CheckBatchSize(int batchSize)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Evaluation batch size must be at least 1.");
    }

    private static Tensor Check(Tensor embeds, int rows, string what)
    {
        if (embeds.Rank != 2 || embeds.Shape[0] != rows)
            throw new InvalidOperationException($"The model returned {what} of shape {Tensor.ShapeToString(embeds.Shape)}; expected [{rows}, D].");
        for (int i = 0; i < embeds.Size; i++)
            if (!double.IsFinite(embeds.Data[i]))
                throw new InvalidOperationException($"The model returned a non-finite value ({embeds.Data[i]}) in {what}, at [{i / embeds.Shape[1]}, {i % embeds.Shape[1]}]; the checkpoint or the computation has diverged.");
        return embeds;
    }

    private static Tensor Concatenate(List<Tensor> parts, int rows)
    {
        if (parts.Count == 0) return Tensor.Zeros(0, 0);
        int d = parts[0].Shape[1];
        var data = new double[rows * d];
        int offset = 0;
        foreach (var p in parts)
        {
            if (p.Shape[1] != d) throw new InvalidOperationException($"The model returned embeddings of width {p.Shape[1]} after width {d}.");
            Array.Copy(p.Data, 0, data, offset, p.Size);
            offset += p.Size;
        }
        return new Tensor([rows, d], data);
    }
}
