using System.Numerics;
using SigLip.Reference.Layers;

namespace SigLip.Reference.Loss;

// CLIP's softmax (InfoNCE) loss, the paper's baseline. Derivation: docs/sigmoid-loss.md, section 5.
// Dimension legend: n = batch (image-text pairs), d = embedding width.
//
//   l_ij   = t <x_i, y_j>                  [n, n] logits, row = image. NO bias: CLIP uses none, and a
//                                          constant b would cancel in every softmax anyway, so
//                                          b is accepted by the entry points but ignored, dL/db = 0.
//   R_i    = log sum_j exp(l_ij)           [n] row log-sum-exp (image -> texts)
//   C_j    = log sum_i exp(l_ij)           [n] column log-sum-exp (text -> images)
//   L      = (1/2n) sum_i [(R_i - l_ii) + (C_i - l_ii)]      (mean CE over rows + over columns, halved)

/// <summary>The softmax (CLIP) loss with hand-written gradients.</summary>
public static class SoftmaxLoss
{
    /// <summary>Forward on L2-normalised embeddings; returns L.</summary>
    /// <param name="logits">[n, n] output, saved: l_ij = t &lt;x_i, y_j&gt;.</param>
    /// <param name="rowLogSumExp">[n] output, saved: R_i.</param>
    /// <param name="columnLogSumExp">[n] output, saved: C_j.</param>
    /// <param name="imageNormed">[n, d].</param>
    /// <param name="textNormed">[n, d].</param>
    /// <param name="scale">t = exp(t').</param>
    public static T Forward<T>(T[] logits, T[] rowLogSumExp, T[] columnLogSumExp, T[] imageNormed, T[] textNormed, int n, int d, T scale)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                logits[i * n + j] = scale * SigmoidLoss.Dot(imageNormed, i, textNormed, j, d);

        for (int i = 0; i < n; i++) rowLogSumExp[i] = LogSumExp(logits, i * n, 1, n);
        for (int j = 0; j < n; j++) columnLogSumExp[j] = LogSumExp(logits, j, n, n);

        T total = T.Zero;
        for (int i = 0; i < n; i++)
        {
            T diagonal = logits[i * n + i];
            total += (rowLogSumExp[i] - diagonal) + (columnLogSumExp[i] - diagonal);
        }
        return total / T.CreateChecked(2 * n);
    }

    /// <summary>
    /// Backward: accumulates dL/dx and dL/dy (w.r.t. the NORMALISED embeddings) and returns dL/dt'
    /// (dL/db is 0: the loss does not use b).
    /// </summary>
    public static LogitParameterGradients<T> Backward<T>(
        T[] dImageNormed, T[] dTextNormed, T[] logits, T[] rowLogSumExp, T[] columnLogSumExp,
        T[] imageNormed, T[] textNormed, int n, int d, T scale)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T half = T.One / T.CreateChecked(2 * n);
        T dLogitScale = T.Zero;
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                T logit = logits[i * n + j];
                // L = (1/2n) sum_i [(R_i - l_ii) + (C_i - l_ii)],  dR_i/dl_ij = softmax_j(l_i.),  dC_j/dl_ij = softmax_i(l_.j)
                // dL/dl_ij = (1/2n) [exp(l_ij - R_i) + exp(l_ij - C_j) - 2 [i == j]]
                T dlogit = half * (T.Exp(logit - rowLogSumExp[i]) + T.Exp(logit - columnLogSumExp[j]));
                if (i == j) dlogit -= half + half;
                // l = t <x, y>:  dL/dt' += dL/dl * t <x, y>  (recomputed dot, same bits as forward)
                dLogitScale += dlogit * scale * SigmoidLoss.Dot(imageNormed, i, textNormed, j, d);
                // dL/dx_i += dL/dl * t y_j ;  dL/dy_j += dL/dl * t x_i
                T g = dlogit * scale;
                int xi = i * d, yj = j * d;
                for (int k = 0; k < d; k++)
                {
                    dImageNormed[xi + k] += g * textNormed[yj + k];
                    dTextNormed[yj + k] += g * imageNormed[xi + k];
                }
            }
        }
        return new LogitParameterGradients<T>(dLogitScale, T.Zero);
    }

    /// <summary>
    /// The softmax loss of UNnormalised embeddings and its gradients (validated). <paramref name="logitBias"/>
    /// is accepted for symmetry with the sigmoid loss but not used; its gradient is 0.
    /// </summary>
    public static PairwiseLossResult<T> Compute<T>(
        T[] imageEmbeds, T[] textEmbeds, int n, int d, T logitScale, T logitBias,
        T normEpsilon = default, bool returnLogits = false)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        LossInputValidation.Check(imageEmbeds, textEmbeds, n, d, logitScale, logitBias, normEpsilon, chunks: 1, softmax: true);
        return ComputeValidated(imageEmbeds, textEmbeds, n, d, logitScale, normEpsilon, returnLogits);
    }

    internal static PairwiseLossResult<T> ComputeValidated<T>(
        T[] imageEmbeds, T[] textEmbeds, int n, int d, T logitScale, T normEpsilon, bool returnLogits)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var imageNormed = new T[n * d];   // [n, d]
        var textNormed = new T[n * d];    // [n, d]
        var imageNorms = new T[n];        // [n]
        var textNorms = new T[n];         // [n]
        L2Normalize.Forward(imageNormed, imageNorms, imageEmbeds, n, d, normEpsilon);
        L2Normalize.Forward(textNormed, textNorms, textEmbeds, n, d, normEpsilon);

        T scale = T.Exp(logitScale);
        var logits = new T[n * n];        // [n, n]
        var rowLogSumExp = new T[n];      // [n]
        var columnLogSumExp = new T[n];   // [n]
        T loss = Forward(logits, rowLogSumExp, columnLogSumExp, imageNormed, textNormed, n, d, scale);

        var dImageNormed = new T[n * d];
        var dTextNormed = new T[n * d];
        var grads = Backward(dImageNormed, dTextNormed, logits, rowLogSumExp, columnLogSumExp, imageNormed, textNormed, n, d, scale);

        var dImage = new T[n * d];
        var dText = new T[n * d];
        L2Normalize.Backward(dImage, dImageNormed, imageNormed, imageNorms, n, d);
        L2Normalize.Backward(dText, dTextNormed, textNormed, textNorms, n, d);
        return new PairwiseLossResult<T>(loss, dImage, dText, grads.LogitScale, grads.LogitBias, returnLogits ? logits : null, logits.Length);
    }

    // log sum_k exp(a[start + k*stride]), k < count, shifted by the maximum so exp never overflows.
    private static T LogSumExp<T>(T[] a, int start, int stride, int count) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T max = T.NegativeInfinity;
        for (int k = 0; k < count; k++) max = T.Max(max, a[start + k * stride]);
        T sum = T.Zero;
        for (int k = 0; k < count; k++) sum += T.Exp(a[start + k * stride] - max);
        return max + T.Log(sum);
    }
}
