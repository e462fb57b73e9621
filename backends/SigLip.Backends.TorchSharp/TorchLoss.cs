// The pairwise losses on libtorch tensors, differentiable by autograd. Same semantics as the
// reference's PairwiseLoss (see ../../shared/notes/siglip-numerics.md):
//   x = X / (|X| + eps), y = Y / (|Y| + eps)     (eps = LossOptions.NormEpsilon; 0 is HF's form)
//   logits_ij = exp(t') <x_i, y_j> + b           (row i = image)
//   sigmoid:  L = -(1/n) sum_ij log sigmoid(z_ij logits_ij), z = +1 on the diagonal, -1 elsewhere
//   softmax:  L = (CE over rows + CE over columns) / 2 of exp(t') x y^T (CLIP; no bias)
// Dimension legend: n = pairs in the batch, d = embedding width, D = chunks (simulated devices), c = n / D.
using SigLip.Reference.Backends;
using static TorchSharp.torch;

namespace SigLip.Backends.TorchSharp;

/// <summary>The sigmoid and softmax losses on libtorch tensors (formulas above), differentiable by autograd.</summary>
public static class TorchLoss
{
    /// <summary>Each row divided by its L2 norm plus <paramref name="epsilon"/>. [n, d] -> [n, d].</summary>
    public static Tensor Normalize(Tensor embeds, double epsilon)
    {
        var norms = embeds.norm(1, keepdim: true);                               // [n, 1]
        return embeds / (epsilon == 0 ? norms : norms + epsilon);
    }

    /// <summary>
    /// The loss of UNnormalised embeddings [n, d] (in any float dtype; computed in
    /// <paramref name="lossType"/>). <paramref name="logitScale"/> is t' (log space), shape [1].
    /// </summary>
    public static Tensor Compute(Tensor imageEmbeds, Tensor textEmbeds, Tensor logitScale, Tensor logitBias, LossOptions options, ScalarType lossType)
    {
        Check(imageEmbeds, textEmbeds, options);
        var x = Normalize(imageEmbeds.to(lossType), options.NormEpsilon);       // [n, d]
        var y = Normalize(textEmbeds.to(lossType), options.NormEpsilon);        // [n, d]
        var scale = logitScale.to(lossType).exp();                               // [1]
        return options.Kind switch
        {
            LossKind.Sigmoid when options.Chunks <= 1 => SigmoidDense(x, y, scale, logitBias.to(lossType)),
            LossKind.Sigmoid => SigmoidChunked(x, y, scale, logitBias.to(lossType), options.Chunks),
            LossKind.Softmax => Softmax(x, y, scale),
            _ => throw new ArgumentException($"Unknown loss kind {options.Kind}."),
        };
    }

    /// <summary>logits_per_image [n_img, n_txt] = exp(t') x y^T + b, of NORMALISED embeddings (no b: the softmax loss's logits).</summary>
    public static Tensor LogitsPerImage(Tensor x, Tensor y, Tensor logitScale, Tensor? logitBias)
    {
        var logits = x.matmul(y.t()) * logitScale.exp();
        return logitBias is null ? logits : logits + logitBias;
    }

    private static Tensor SigmoidDense(Tensor x, Tensor y, Tensor scale, Tensor bias)
    {
        long n = x.shape[0];
        var logits = x.matmul(y.t()) * scale + bias;                            // [n, n]
        var signs = 2 * eye(n, dtype: logits.dtype, device: logits.device) - 1; // z: +1 diagonal, -1 elsewhere
        return -nn.functional.logsigmoid(signs * logits).sum() / n;
    }

    /// <summary>
    /// Paper section 3.1: device k holds images and texts of chunk k; its texts visit every other device
    /// in a ring. Only the block of a device's own texts holds positives. Sum of blocks / n == dense loss.
    /// </summary>
    private static Tensor SigmoidChunked(Tensor x, Tensor y, Tensor scale, Tensor bias, int devices)
    {
        long n = x.shape[0], chunk = n / devices;
        var images = x.split(chunk);                                             // D x [c, d]
        var texts = y.split(chunk);                                              // D x [c, d]
        var positives = 2 * eye(chunk, dtype: x.dtype, device: x.device) - 1;    // [c, c]
        Tensor? total = null;
        for (int shift = 0; shift < devices; shift++)
        {
            for (int device = 0; device < devices; device++)
            {
                var visiting = texts[(device + shift) % devices];
                var logits = images[device].matmul(visiting.t()) * scale + bias; // [c, c]
                var blockLoss = shift == 0
                    ? -nn.functional.logsigmoid(positives * logits).sum()
                    : -nn.functional.logsigmoid(-logits).sum();                  // negatives only
                total = total is null ? blockLoss : total + blockLoss;
            }
        }
        return total! / n;
    }

    private static Tensor Softmax(Tensor x, Tensor y, Tensor scale)
    {
        long n = x.shape[0];
        var logits = x.matmul(y.t()) * scale;                                    // [n, n], row = image
        var targets = arange(n, dtype: ScalarType.Int64, device: x.device);
        return (nn.functional.cross_entropy(logits, targets) + nn.functional.cross_entropy(logits.t(), targets)) / 2;
    }

    private static void Check(Tensor imageEmbeds, Tensor textEmbeds, LossOptions options)
    {
        if (imageEmbeds.dim() != 2 || textEmbeds.dim() != 2 || imageEmbeds.shape[0] != textEmbeds.shape[0] || imageEmbeds.shape[1] != textEmbeds.shape[1])
            throw new ArgumentException($"Loss: image embeddings [{string.Join(", ", imageEmbeds.shape)}] and text embeddings [{string.Join(", ", textEmbeds.shape)}] must both be [n, d] with the same n and d.");
        long n = imageEmbeds.shape[0];
        if (n == 0) throw new ArgumentException("Loss: the batch is empty (n = 0).");
        if (options.Chunks < 1) throw new ArgumentException($"Loss: Chunks D = {options.Chunks} must be at least 1 (1 = dense loss).");
        if (options.Kind == LossKind.Softmax && options.Chunks != 1)
            throw new ArgumentException($"Loss: Chunks D = {options.Chunks} applies to the sigmoid loss only; the softmax loss normalises over the whole batch and needs D = 1.");
        if (options.Kind == LossKind.Sigmoid && options.Chunks > 1 && n % options.Chunks != 0)
            throw new ArgumentException($"Loss: the chunked sigmoid loss splits the batch of {n} over {options.Chunks} devices; {n} is not divisible by {options.Chunks}.");
        if (!(options.NormEpsilon >= 0)) throw new ArgumentException($"Loss: NormEpsilon must be non-negative, got {options.NormEpsilon}.");
    }
}
