using System.Numerics;
using SigLip.Reference.Layers;

namespace SigLip.Reference.Loss;

// SigLIP's pairwise sigmoid loss (Zhai et al. 2023, Algorithm 1). Derivation: docs/sigmoid-loss.md.
// Dimension legend: n = batch (image-text pairs), d = embedding width,
//                   r, c = rows (images) and columns (texts) of one block of the logits matrix.
//
//   x_i, y_j     L2-normalised image and text embeddings          [n, d]
//   t = exp(t')  temperature, learned in log space (HF logit_scale = t')
//   l_ij         = t <x_i, y_j> + b                                [n, n] logits, row = image
//   z_ij         = +1 if i == j else -1
//   L            = -(1/n) sum_i sum_j log sigma(z_ij l_ij)         (divided by n, not n^2)
//
// The dense Forward/Backward are the block kernels applied to the one n x n block whose diagonal
// holds the positives; ChunkedSigmoidLoss applies the same kernels to (n/D) x (n/D) blocks.

/// <summary>The sigmoid (SigLIP) loss: dense forward and backward on normalised embeddings, and a validated entry point.</summary>
public static class SigmoidLoss
{
    /// <summary>The paper's initial t' = ln 10 (so t = 10). A literal because Math.Log is not a constant expression.</summary>
    public const double PaperInitialLogitScale = 2.302585092994046;

    /// <summary>The paper's initial b = -10 (a prior that most pairs are negatives).</summary>
    public const double PaperInitialLogitBias = -10.0;

    /// <summary>
    /// Dense forward on L2-normalised embeddings; fills <paramref name="logits"/> and returns L.
    /// </summary>
    /// <param name="logits">[n, n] output, saved for backward: l_ij = t &lt;x_i, y_j&gt; + b.</param>
    /// <param name="imageNormed">[n, d] x, normalised.</param>
    /// <param name="textNormed">[n, d] y, normalised.</param>
    /// <param name="scale">t = exp(t') (not t').</param>
    /// <param name="bias">b.</param>
    public static T Forward<T>(T[] logits, T[] imageNormed, T[] textNormed, int n, int d, T scale, T bias)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T negativeLogLikelihood = BlockForward(logits, imageNormed, textNormed, n, n, d, scale, bias, diagonalIsPositive: true);
        return negativeLogLikelihood / T.CreateChecked(n);
    }

    /// <summary>
    /// Dense backward of L: accumulates dL/dx into <paramref name="dImageNormed"/> and dL/dy into
    /// <paramref name="dTextNormed"/> (gradients w.r.t. the NORMALISED embeddings; run
    /// L2Normalize.Backward after) and returns dL/dt' and dL/db.
    /// </summary>
    /// <param name="dImageNormed">[n, d] accumulated into.</param>
    /// <param name="dTextNormed">[n, d] accumulated into.</param>
    /// <param name="logits">[n, n] saved by Forward.</param>
    public static LogitParameterGradients<T> Backward<T>(
        T[] dImageNormed, T[] dTextNormed, T[] logits, T[] imageNormed, T[] textNormed, int n, int d, T scale)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T lossScale = T.One / T.CreateChecked(n);
        return BlockBackward(dImageNormed, dTextNormed, logits, imageNormed, textNormed, n, n, d, scale, lossScale, diagonalIsPositive: true);
    }

    /// <summary>
    /// The loss of UNnormalised embeddings and its gradients: L2-normalise, then the dense
    /// (<paramref name="chunks"/> = 1) or chunked (<paramref name="chunks"/> = D simulated devices)
    /// sigmoid loss. Works in float and double. Inputs are validated (sizes, NaN/Inf, D | n).
    /// </summary>
    /// <param name="imageEmbeds">[n, d] row-major, unnormalised.</param>
    /// <param name="textEmbeds">[n, d] row-major, unnormalised.</param>
    /// <param name="logitScale">t' (t = exp(t')).</param>
    /// <param name="logitBias">b.</param>
    /// <param name="normEpsilon">Added to each L2 norm (0 = HF, big_vision 1e-8).</param>
    /// <param name="chunks">D: 1 = dense, else the chunked ring form of paper section 3.1.</param>
    /// <param name="returnLogits">Also return the [n, n] logits (row = image).</param>
    public static PairwiseLossResult<T> Compute<T>(
        T[] imageEmbeds, T[] textEmbeds, int n, int d, T logitScale, T logitBias,
        T normEpsilon = default, int chunks = 1, bool returnLogits = false)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        LossInputValidation.Check(imageEmbeds, textEmbeds, n, d, logitScale, logitBias, normEpsilon, chunks, softmax: false);
        return ComputeValidated(imageEmbeds, textEmbeds, n, d, logitScale, logitBias, normEpsilon, chunks, returnLogits);
    }

    internal static PairwiseLossResult<T> ComputeValidated<T>(
        T[] imageEmbeds, T[] textEmbeds, int n, int d, T logitScale, T logitBias, T normEpsilon, int chunks, bool returnLogits)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // Normalisation is row-local, so normalising the whole batch here is the same as each
        // simulated device normalising its own rows.
        var imageNormed = new T[n * d];   // [n, d]
        var textNormed = new T[n * d];    // [n, d]
        var imageNorms = new T[n];        // [n] ||x_i|| + eps
        var textNorms = new T[n];         // [n]
        L2Normalize.Forward(imageNormed, imageNorms, imageEmbeds, n, d, normEpsilon);
        L2Normalize.Forward(textNormed, textNorms, textEmbeds, n, d, normEpsilon);

        T scale = T.Exp(logitScale);
        var dImageNormed = new T[n * d];  // [n, d]
        var dTextNormed = new T[n * d];   // [n, d]
        T loss;
        LogitParameterGradients<T> logitGrads;
        T[]? logitsOut;
        long held;
        if (chunks == 1)
        {
            var logits = new T[n * n];    // [n, n]
            loss = Forward(logits, imageNormed, textNormed, n, d, scale, logitBias);
            logitGrads = Backward(dImageNormed, dTextNormed, logits, imageNormed, textNormed, n, d, scale);
            logitsOut = returnLogits ? logits : null;
            held = logits.Length;
        }
        else
        {
            logitsOut = returnLogits ? new T[n * n] : null;
            var ring = ChunkedSigmoidLoss.ForwardBackward(dImageNormed, dTextNormed, logitsOut, imageNormed, textNormed, n, d, scale, logitBias, chunks);
            loss = ring.Loss;
            logitGrads = ring.Gradients;
            held = ring.LogitsHeldPerDevice;
        }

        var dImage = new T[n * d];
        var dText = new T[n * d];
        L2Normalize.Backward(dImage, dImageNormed, imageNormed, imageNorms, n, d);
        L2Normalize.Backward(dText, dTextNormed, textNormed, textNorms, n, d);
        return new PairwiseLossResult<T>(loss, dImage, dText, logitGrads.LogitScale, logitGrads.LogitBias, logitsOut, held);
    }

    /// <summary>
    /// One block of the logits matrix: images x (r rows) against texts y (c rows).
    /// Returns -sum log sigma(z l) over the block (not yet divided by n).
    /// Positives (z = +1) are the diagonal when <paramref name="diagonalIsPositive"/> (a device's
    /// own block, r = c); every other block holds negatives only.
    /// </summary>
    /// <param name="logits">[r, c] output (saved for backward).</param>
    /// <param name="images">[r, d].</param>
    /// <param name="texts">[c, d].</param>
    internal static T BlockForward<T>(T[] logits, T[] images, T[] texts, int r, int c, int d, T scale, T bias, bool diagonalIsPositive)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T total = T.Zero;
        for (int i = 0; i < r; i++)
        {
            T rowSum = T.Zero;
            for (int j = 0; j < c; j++)
            {
                // l_ij = t <x_i, y_j> + b
                T logit = scale * Dot(images, i, texts, j, d) + bias;
                logits[i * c + j] = logit;
                // log sigma(z_ij l_ij), z_ij = +1 on the positive diagonal, -1 elsewhere
                bool positive = diagonalIsPositive && i == j;
                rowSum += LogSigmoid.Value(positive ? logit : -logit);
            }
            total += rowSum;
        }
        return -total;
    }

    /// <summary>
    /// Backward of one block, scaled by <paramref name="lossScale"/> (1/n): accumulates into
    /// dimages [r, d] and dtexts [c, d], returns this block's share of dL/dt' and dL/db.
    /// </summary>
    internal static LogitParameterGradients<T> BlockBackward<T>(
        T[] dimages, T[] dtexts, T[] logits, T[] images, T[] texts, int r, int c, int d, T scale, T lossScale, bool diagonalIsPositive)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T dLogitScale = T.Zero, dBias = T.Zero;
        for (int i = 0; i < r; i++)
        {
            for (int j = 0; j < c; j++)
            {
                T logit = logits[i * c + j];
                bool positive = diagonalIsPositive && i == j;
                // L = -(1/n) sum log sigma(z l)
                // dL/dl = -(1/n) z sigma(-z l)           [d/du log sigma(u) = sigma(-u)]
                T dlogit = positive
                    ? -lossScale * LogSigmoid.Derivative(logit)
                    : lossScale * LogSigmoid.Derivative(-logit);
                // l = t <x, y> + b
                // dL/db += dL/dl
                dBias += dlogit;
                // dL/dt' += dL/dl * t <x, y>             [dt/dt' = t]; <x, y> recomputed: same bits as forward
                dLogitScale += dlogit * scale * Dot(images, i, texts, j, d);
                // dL/dx_i += dL/dl * t y_j ;  dL/dy_j += dL/dl * t x_i
                T g = dlogit * scale;
                int xi = i * d, yj = j * d;
                for (int k = 0; k < d; k++)
                {
                    dimages[xi + k] += g * texts[yj + k];
                    dtexts[yj + k] += g * images[xi + k];
                }
            }
        }
        return new LogitParameterGradients<T>(dLogitScale, dBias);
    }

    internal static T Dot<T>(T[] a, int rowA, T[] b, int rowB, int d) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T sum = T.Zero;
        int ia = rowA * d, ib = rowB * d;
        for (int k = 0; k < d; k++) sum += a[ia + k] * b[ib + k];
        return sum;
    }
}
