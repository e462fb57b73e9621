using System.Numerics;

namespace SigLip.Reference.Loss;

/// <summary>
/// A pairwise loss with its gradients, in the working dtype <typeparamref name="T"/>.
/// Embedding gradients are with respect to the UNnormalised embeddings.
/// </summary>
/// <param name="Loss">L (sigmoid: divided by n, not n^2).</param>
/// <param name="GradImageEmbeds">[n, d] dL / d image_embeds (unnormalised).</param>
/// <param name="GradTextEmbeds">[n, d] dL / d text_embeds (unnormalised).</param>
/// <param name="GradLogitScale">dL / dt', where t = exp(t').</param>
/// <param name="GradLogitBias">dL / db (0 for the softmax loss, which does not use b).</param>
/// <param name="LogitsPerImage">[n, n] logits, row = image, when asked for; else null.</param>
/// <param name="LogitsHeldAtOnce">
/// The most logits any one (simulated) device held in its buffer at once: n^2 for the dense and
/// softmax forms, (n/D)^2 for the chunked form. The returned <paramref name="LogitsPerImage"/>
/// is an output the caller asked for, not working memory, and does not count.
/// </param>
public sealed record PairwiseLossResult<T>(
    T Loss,
    T[] GradImageEmbeds,
    T[] GradTextEmbeds,
    T GradLogitScale,
    T GradLogitBias,
    T[]? LogitsPerImage,
    long LogitsHeldAtOnce)
    where T : unmanaged, IFloatingPointIeee754<T>;

/// <summary>dL/dt' and dL/db, what a loss backward returns besides the embedding gradients.</summary>
/// <param name="LogitScale">dL / dt'.</param>
/// <param name="LogitBias">dL / db.</param>
public readonly record struct LogitParameterGradients<T>(T LogitScale, T LogitBias)
    where T : unmanaged, IFloatingPointIeee754<T>;
