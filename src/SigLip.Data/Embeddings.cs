using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Data;

namespace SigLip.Data;

/// <summary>What a user of a pretrained model asks first: embeddings of images and texts, and how well they match.</summary>
public static class Embeddings
{
    /// <summary>L2-normalised image embeddings [N, D] of image files, in batches (an unreadable file is an error naming it).</summary>
    public static Tensor EmbedImages(ISiglipModel model, ImageLoader loader, IReadOnlyList<string> paths, int batchSize = 16)
    {
        if (paths.Count == 0) throw new ArgumentException("No images given.");
        if (loader.ImageSize != model.Config.Vision.ImageSize)
            throw new ArgumentException($"The image loader makes {loader.ImageSize}x{loader.ImageSize} images but the model's vision_config.image_size is {model.Config.Vision.ImageSize}.");
        var parts = new List<Tensor>();
        for (int start = 0; start < paths.Count; start += batchSize)
        {
            var chunk = paths.Skip(start).Take(batchSize).ToList();
            parts.Add(model.EmbedImages(loader.LoadBatch(chunk)));
        }
        return ConcatRows(parts);
    }

    /// <summary>L2-normalised text embeddings [N, D], the texts tokenized to <paramref name="maxLength"/> ids.</summary>
    public static Tensor EmbedTexts(ISiglipModel model, ITextTokenizer tokenizer, IReadOnlyList<string> texts, int maxLength, int batchSize = 64)
    {
        if (texts.Count == 0) throw new ArgumentException("No texts given.");
        if (tokenizer.VocabSize > model.Config.Text.VocabSize)
            throw new ArgumentException($"The tokenizer has {tokenizer.VocabSize} ids but the model's text_config.vocab_size is {model.Config.Text.VocabSize}.");
        var parts = new List<Tensor>();
        for (int start = 0; start < texts.Count; start += batchSize)
            parts.Add(model.EmbedTexts(tokenizer.Encode(texts.Skip(start).Take(batchSize).ToList(), maxLength)));
        return ConcatRows(parts);
    }

    /// <summary>
    /// SigLIP's match probabilities [images, texts]: sigmoid(exp(t') * &lt;x_i, y_j&gt; + b) of normalised
    /// embeddings, t' = logit_scale and b = logit_bias as stored in the checkpoint (HF: sigmoid(logits_per_image)).
    /// </summary>
    public static Tensor SigmoidProbabilities(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias)
    {
        if (imageEmbeds.Rank != 2 || textEmbeds.Rank != 2 || imageEmbeds.Shape[1] != textEmbeds.Shape[1])
            throw new ArgumentException($"Embeddings must be [N, D] and [M, D] with the same D; got {Tensor.ShapeToString(imageEmbeds.Shape)} and {Tensor.ShapeToString(textEmbeds.Shape)}.");
        int n = imageEmbeds.Shape[0], m = textEmbeds.Shape[0], d = imageEmbeds.Shape[1];
        double scale = Math.Exp(logitScale);
        var p = new double[n * m];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
            {
                double dot = 0;
                for (int k = 0; k < d; k++) dot += imageEmbeds.Data[i * d + k] * textEmbeds.Data[j * d + k];
                double z = scale * dot + logitBias;
                p[i * m + j] = z >= 0 ? 1 / (1 + Math.Exp(-z)) : Math.Exp(z) / (1 + Math.Exp(z));
            }
        return new Tensor([n, m], p);
    }

    private static Tensor ConcatRows(IReadOnlyList<Tensor> parts)
    {
        int d = parts[0].Shape[1];
        var data = parts.SelectMany(t => t.Data).ToArray();
        return new Tensor([data.Length / d, d], data);
    }
}
