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
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(examples);
        CheckBatchSize(batchSize);
        var rows = new List<Tensor>();
        for (int start = 0; start < examples.Count; start += batchSize)
        {
            var chunk = examples.Skip(start).Take(batchSize).ToArray();
            var embeds = model.EmbedImages(ExampleBatch.StackPixels(chunk));
            rows.Add(Check(embeds, chunk.Length, $"image embeddings of examples {start}..{start + chunk.Length - 1}"));
        }
        return Concatenate(rows, examples.Count);
    }

    /// <summary>L2-normalised text embeddings [texts.Count, D], each text tokenized to <paramref name="maxTextLength"/> ids.</summary>
    public static Tensor OfTexts(ISiglipModel model, ITextTokenizer tokenizer, IReadOnlyList<string> texts, int maxTextLength, int batchSize = 64)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(texts);
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
