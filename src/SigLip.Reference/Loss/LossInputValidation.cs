using System.Globalization;
using System.Numerics;

namespace SigLip.Reference.Loss;

/// <summary>Checks a pairwise loss's inputs and says what is wrong, where, and what would be right.</summary>
internal static class LossInputValidation
{
    public const string ImageName = "image_embeds";
    public const string TextName = "text_embeds";

    /// <summary>Shapes of the two tensors: each must be a matrix [n, d] with the same n and d.</summary>
    public static (int N, int D) CheckShapes(Tensor imageEmbeds, Tensor textEmbeds)
    {
        ArgumentNullException.ThrowIfNull(imageEmbeds);
        ArgumentNullException.ThrowIfNull(textEmbeds);
        string shapes = $"{ImageName} is {Tensor.ShapeToString(imageEmbeds.Shape)}, {TextName} is {Tensor.ShapeToString(textEmbeds.Shape)}";
        if (imageEmbeds.Rank != 2 || textEmbeds.Rank != 2)
            throw new ArgumentException($"The loss takes two matrices [n, d] (n pairs, width d), but {shapes}.");
        int n = imageEmbeds.Shape[0], d = imageEmbeds.Shape[1];
        CheckSameSizes(n, d, textEmbeds.Shape[0], textEmbeds.Shape[1], shapes);
        return (n, d);
    }

    /// <summary>Everything: sizes, emptiness, finiteness, zero rows, t', b, epsilon and D.</summary>
    public static void Check<T>(T[] imageEmbeds, T[] textEmbeds, int n, int d, T logitScale, T logitBias, T normEpsilon, int chunks, bool softmax)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(imageEmbeds);
        ArgumentNullException.ThrowIfNull(textEmbeds);
        if (n < 0 || d < 0)
            throw new ArgumentException($"The batch size n = {n} and width d = {d} must not be negative.");
        long size = (long)n * d;
        if (imageEmbeds.Length != size)
            throw new ArgumentException($"{ImageName} has {imageEmbeds.Length} elements but n * d = {n} * {d} = {size} were expected.");
        if (textEmbeds.Length != size)
            throw new ArgumentException($"{TextName} has {textEmbeds.Length} elements but n * d = {n} * {d} = {size} were expected.");
        string shapes = $"{ImageName} is [{n}, {d}], {TextName} is [{n}, {d}]";
        if (n == 0)
            throw new ArgumentException($"The batch is empty: {shapes}. The loss needs at least one image-text pair (n >= 1).");
        if (d == 0)
            throw new ArgumentException($"The embedding width is 0: {shapes}. Embeddings need at least one dimension (d >= 1).");

        CheckFinite(imageEmbeds, n, d, ImageName);
        CheckFinite(textEmbeds, n, d, TextName);

        if (!T.IsFinite(normEpsilon) || normEpsilon < T.Zero)
            throw new ArgumentException($"NormEpsilon = {Show(normEpsilon)} must be finite and >= 0 (0 matches HF, big_vision uses 1e-8).");
        CheckRowNorms(imageEmbeds, n, d, ImageName, normEpsilon == T.Zero);
        CheckRowNorms(textEmbeds, n, d, TextName, normEpsilon == T.Zero);

        if (!T.IsFinite(logitScale))
            throw new ArgumentException($"logit_scale t' = {Show(logitScale)} is not finite; it must be a finite number (t = exp(t'), the paper starts at t' = ln 10).");
        if (!T.IsFinite(logitBias))
            throw new ArgumentException($"logit_bias b = {Show(logitBias)} is not finite; it must be a finite number (the paper starts at b = -10).");
        T scale = T.Exp(logitScale);
        if (!T.IsFinite(scale + T.Abs(logitBias)))
            throw new ArgumentException(
                $"logit_scale t' = {Show(logitScale)} gives t = exp(t') = {Show(scale)}, and with b = {Show(logitBias)} the logits t<x, y> + b " +
                $"overflow {typeof(T).Name}; t' must stay below ln(max) = {Show(T.Log(MaxValue<T>()))}.");

        if (chunks < 1)
            throw new ArgumentException($"Chunks D = {chunks} must be at least 1 (1 = dense loss).");
        if (softmax && chunks != 1)
            throw new ArgumentException($"Chunks D = {chunks} applies to the sigmoid loss only; the softmax loss normalises over the whole batch and needs D = 1.");
        if (n % chunks != 0)
            throw new ArgumentException(
                $"Chunks D = {chunks} does not divide the batch n = {n}: each of the D devices must hold n / D whole pairs. " +
                $"Divisors of {n}: {string.Join(", ", Divisors(n))}.");
    }

    /// <summary>Both tensors must agree in batch size and width.</summary>
    private static void CheckSameSizes(int imageRows, int imageWidth, int textRows, int textWidth, string shapes)
    {
        if (imageRows != textRows)
            throw new ArgumentException(
                $"The batch sizes differ: {shapes} ({imageRows} images, {textRows} texts). Image i is paired with text i, so both need the same n.");
        if (imageWidth != textWidth)
            throw new ArgumentException(
                $"The embedding widths differ: {shapes} (d = {imageWidth} vs {textWidth}). Both towers must project to the same width d.");
    }

    private static void CheckFinite<T>(T[] values, int n, int d, string name) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int e = 0; e < values.Length; e++)
        {
            if (T.IsFinite(values[e])) continue;
            string what = T.IsNaN(values[e]) ? "NaN" : (values[e] > T.Zero ? "+Infinity" : "-Infinity");
            throw new NonFiniteValueException($"{name}[{e / d}, {e % d}] is {what} ({name} is [{n}, {d}]); embeddings must be finite.");
        }
    }

    // Each row's norm (scaled, so tiny and huge rows are fine) must be finite, and positive unless
    // NormEpsilon > 0 keeps the divisor away from zero.
    private static void CheckRowNorms<T>(T[] values, int n, int d, string name, bool mustBePositive) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < n; r++)
        {
            T norm = Layers.L2Normalize.RowNorm(values, r * d, d);
            if (!T.IsFinite(norm))
                throw new ArgumentException(
                    $"{name} row {r} has an L2 norm of {Show(norm)} ({name} is [{n}, {d}]): beyond {typeof(T).Name}'s range (max {Show(MaxValue<T>())}). " +
                    "Rescale the embeddings (the loss depends only on their directions) or use float64.");
            if (mustBePositive && norm == T.Zero)
                throw new ArgumentException(
                    $"{name} row {r} is all zeros ({name} is [{n}, {d}]): with NormEpsilon 0 (HF) it cannot be L2-normalised. " +
                    "Give a non-zero embedding or set NormEpsilon > 0 (big_vision uses 1e-8).");
        }
    }

    private static T MaxValue<T>() where T : unmanaged, IFloatingPointIeee754<T> => T.BitDecrement(T.PositiveInfinity); // the largest finite value

    private static IEnumerable<int> Divisors(int n) => Enumerable.Range(1, n).Where(k => n % k == 0);

    private static string Show<T>(T value) where T : unmanaged, IFloatingPointIeee754<T> =>
        value.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>
/// A NaN or an infinity where a finite number was needed (e.g. an embedding handed to the loss). An
/// <see cref="ArgumentException"/>, so callers that catch bad input keep working; a trainer catches this
/// type to say at which step its numbers diverged.
/// </summary>
public sealed class NonFiniteValueException(string message) : ArgumentException(message);
