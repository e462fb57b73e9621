using System.Numerics;
using System.Numerics.Tensors;

namespace SigLip.Backends.Managed.Kernels;

/// <summary>Loss value and the scalar gradients of <see cref="SigmoidLossKernels"/>.</summary>
/// <param name="Loss">-(1/n) Σ_ij log σ(z_ij · logits_ij).</param>
/// <param name="DLogitScale">dL/dt' where t = exp(t') (the log-space parameter HF calls logit_scale).</param>
/// <param name="DLogitBias">dL/db.</param>
public sealed record SigmoidLossValue(double Loss, double DLogitScale, double DLogitBias);

/// <summary>
/// The SigLIP sigmoid loss on L2-NORMALISED embeddings, forward and backward in one pass.
/// n = pairs, D = width; x [n, D] images, y [n, D] texts (row i of each is a positive pair).
///   logits_ij = t·⟨x_i, y_j⟩ + b,  t = exp(t'),  z_ij = +1 if i == j else -1
///   L = (1/n) Σ_ij softplus(-z_ij·logits_ij)
///   g_ij = dL/dlogits_ij = -(z_ij/n)·σ(-z_ij·logits_ij)
///   dx += t·G·y,  dy += t·Gᵀ·x,  dL/dt' = t·Σ g_ij⟨x_i, y_j⟩,  dL/db = Σ g_ij
/// The fast kernel never holds more than a [rows-block, n] slab of logits.
/// Sums of the scalar results are accumulated in float64 for both dtypes.
/// </summary>
public static class SigmoidLossKernels
{
    private static class Slab<T>
    {
        [ThreadStatic] internal static T[]? Logits;
        [ThreadStatic] internal static double[]? RowSums;
    }

    /// <summary>Logits held at once: a slab of max(16, SlabElements / n) rows by n columns.</summary>
    public const int SlabElements = 1 << 20;

    /// <summary>Loss and gradients; dx and dy are accumulated (+=), pass null for a forward pass only.</summary>
    public static SigmoidLossValue ForwardBackward<T>(T[]? dx, T[]? dy, T[] x, T[] y, int n, int width, double logitScale, double logitBias, int threads = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckSizes("SigmoidLossKernels.ForwardBackward", dx, dy, x, y, n, width);
        if (n == 0) return new SigmoidLossValue(0, 0, 0);
        double tD = Math.Exp(logitScale);
        T t = T.CreateChecked(tD), b = T.CreateChecked(logitBias), invN = T.One / T.CreateChecked(n);
        int block = Math.Min(n, Math.Max(16, SlabElements / n));
        var logits = Slab<T>.Logits is { } l && l.Length >= (long)block * n ? l : (Slab<T>.Logits = GC.AllocateUninitializedArray<T>(block * n));
        var rowSums = Slab<T>.RowSums is { } rs && rs.Length >= 3L * n ? rs : (Slab<T>.RowSums = new double[3 * n]);
        bool grads = dx is not null || dy is not null;
        for (int r0 = 0; r0 < n; r0 += block)
        {
            int rows = Math.Min(block, n - r0);
            var slab = logits.AsSpan(0, rows * n);
            // s = x_block · yᵀ   [rows, n]
            MatMul.General<T>(slab, n, x.AsSpan(r0 * width), width, false, y, width, true, rows, n, width, threads: threads);
            Ranges.For(threads, rows, 40L * n, (lo, hi) =>
            {
                var lg = Scratch<T>.First(n).AsSpan(0, n);
                var e = Scratch<T>.Second(n).AsSpan(0, n);
                for (int r = lo; r < hi; r++)
                {
                    int i = r0 + r;
                    var s = logits.AsSpan(r * n, n);
                    // every pair as a negative first, then the diagonal corrected
                    TensorPrimitives.Multiply(s, t, lg);
                    TensorPrimitives.Add(lg, b, lg);                     // logits
                    TensorPrimitives.Abs<T>(lg, e);
                    TensorPrimitives.Negate<T>(e, e);
                    TensorPrimitives.Exp<T>(e, e);
                    TensorPrimitives.Add(e, T.One, e);
                    TensorPrimitives.Log<T>(e, e);                       // log(1 + exp(-|l|))
                    double loss = double.CreateChecked(TensorPrimitives.Sum<T>(e));
                    TensorPrimitives.Max(lg, T.Zero, e);
                    loss += double.CreateChecked(TensorPrimitives.Sum<T>(e)); // softplus(l) summed
                    loss -= double.CreateChecked(lg[i]);                 // diagonal: softplus(-l) = softplus(l) - l
                    TensorPrimitives.Sigmoid<T>(lg, e);
                    TensorPrimitives.Multiply(e, invN, e);               // g = σ(l)/n off the diagonal
                    e[i] -= invN;                                        // diagonal: -σ(-l)/n = (σ(l) - 1)/n
                    rowSums[i] = loss;
                    rowSums[n + i] = double.CreateChecked(TensorPrimitives.Dot<T>(e, s));
                    rowSums[2 * n + i] = double.CreateChecked(TensorPrimitives.Sum<T>(e));
                    if (grads) TensorPrimitives.Multiply(e, t, s);       // slab row := t·g
                }
            });
            if (dx is not null)
                MatMul.General<T>(dx.AsSpan(r0 * width), width, slab, n, false, y, width, false, rows, width, n, accumulate: true, threads: threads);
            if (dy is not null)
                MatMul.General<T>(dy, width, slab, n, true, x.AsSpan(r0 * width), width, false, n, width, rows, accumulate: true, threads: threads);
        }
        double total = 0, dScale = 0, dBias = 0;
        for (int i = 0; i < n; i++)
        {
            total += rowSums[i];
            dScale += rowSums[n + i];
            dBias += rowSums[2 * n + i];
        }
        return new SigmoidLossValue(total / n, tD * dScale, dBias);
    }

    private static void CheckSizes<T>(string kernel, T[]? dx, T[]? dy, T[] x, T[] y, int n, int width)
    {
        Check.FloatType<T>(kernel);
        if (n < 0 || width < 1) throw new ArgumentException($"{kernel}: need n >= 0 pairs and width >= 1, got n={n}, width={width}.");
        long size = (long)n * width;
        Check.Length(kernel, "x (image embeddings)", x.Length, size);
        Check.Length(kernel, "y (text embeddings)", y.Length, size);
        if (dx is not null) Check.Length(kernel, "dx", dx.Length, size);
        if (dy is not null) Check.Length(kernel, "dy", dy.Length, size);
    }
}
