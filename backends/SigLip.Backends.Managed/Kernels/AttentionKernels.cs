using System.Numerics;
using System.Numerics.Tensors;

namespace SigLip.Backends.Managed.Kernels;

/// <summary>
/// Multi-head scaled dot-product attention without a mask (SigLIP uses none), on projected q, k, v.
/// B = batch, Nq = query tokens, Nk = key tokens, A = heads, D = head width, H = A·D.
///   q [B, Nq, H], k [B, Nk, H], v [B, Nk, H]: head a is columns a·D .. a·D+D-1
///   probs [B, A, Nq, Nk] (saved for backward), context [B, Nq, H]
///   probs = softmax(scale · q_a · k_aᵀ) over keys;  context_a = probs · v_a
/// Backward accumulates (+=) into dq, dk, dv (each may be null: not wanted).
/// </summary>
public static class AttentionKernels
{
    /// <summary>The attention forward above: writes <paramref name="probs"/> (kept for backward) and <paramref name="context"/>.</summary>
    public static void Forward<T>(T[] context, T[] probs, T[] q, T[] k, T[] v, int batch, int queryTokens, int keyTokens, int heads, int headWidth, double scale, int threads = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckForward("AttentionKernels.Forward", context, probs, q, k, v, batch, queryTokens, keyTokens, heads, headWidth);
        int nq = queryTokens, nk = keyTokens, d = headWidth, h = heads * headWidth;
        T sc = T.CreateChecked(scale);
        Ranges.For(threads, batch * heads, 4L * nq * nk * d + 16L * nq * nk, (lo, hi) =>
        {
            for (int bh = lo; bh < hi; bh++)
            {
                int b = bh / heads, a = bh % heads;
                var p = probs.AsSpan(bh * nq * nk, nq * nk);
                // scores = q_a · k_aᵀ   [Nq, Nk]
                MatMul.General<T>(p, nk, q.AsSpan(b * nq * h + a * d), h, false, k.AsSpan(b * nk * h + a * d), h, true, nq, nk, d, threads: 1);
                for (int i = 0; i < nq; i++) SoftmaxRow(p.Slice(i * nk, nk), sc);
                // context_a = probs · v_a   [Nq, D]
                MatMul.General<T>(context.AsSpan(b * nq * h + a * d), h, p, nk, false, v.AsSpan(b * nk * h + a * d), h, false, nq, d, nk, threads: 1);
            }
        });
    }

    private static void SoftmaxRow<T>(Span<T> row, T scale) where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Multiply(row, scale, row);
        T max = TensorPrimitives.Max<T>(row);
        TensorPrimitives.Subtract(row, max, row);
        TensorPrimitives.Exp<T>(row, row);
        T sum = TensorPrimitives.Sum<T>(row);
        TensorPrimitives.Divide(row, sum, row);
    }

    /// <summary>
    /// dv_a += probsᵀ·dcontext_a;  dprobs = dcontext_a·v_aᵀ;  dscores = probs ⊙ (dprobs - rowsum(dprobs ⊙ probs)) · scale;
    /// dq_a += dscores·k_a;  dk_a += dscoresᵀ·q_a.
    /// </summary>
    public static void Backward<T>(T[]? dq, T[]? dk, T[]? dv, T[] dContext, T[] q, T[] k, T[] v, T[] probs, int batch, int queryTokens, int keyTokens, int heads, int headWidth, double scale, int threads = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckBackward("AttentionKernels.Backward", dq, dk, dv, dContext, q, k, v, probs, batch, queryTokens, keyTokens, heads, headWidth);
        int nq = queryTokens, nk = keyTokens, d = headWidth, h = heads * headWidth;
        T sc = T.CreateChecked(scale);
        Ranges.For(threads, batch * heads, 8L * nq * nk * d + 16L * nq * nk, (lo, hi) =>
        {
            var dp = Scratch<T>.First(nq * nk).AsSpan(0, nq * nk);   // [Nq, Nk]
            for (int bh = lo; bh < hi; bh++)
            {
                int b = bh / heads, a = bh % heads;
                var p = probs.AsSpan(bh * nq * nk, nq * nk);
                int qOff = b * nq * h + a * d, kOff = b * nk * h + a * d;
                MatMul.General<T>(dp, nk, dContext.AsSpan(qOff), h, false, v.AsSpan(kOff), h, true, nq, nk, d, threads: 1);
                if (dv is not null) MatMul.General<T>(dv.AsSpan(kOff), h, p, nk, true, dContext.AsSpan(qOff), h, false, nk, d, nq, accumulate: true, threads: 1);
                for (int i = 0; i < nq; i++)
                {
                    var dpr = dp.Slice(i * nk, nk);
                    var pr = p.Slice(i * nk, nk);
                    T dot = TensorPrimitives.Dot<T>(dpr, pr);
                    TensorPrimitives.Subtract(dpr, dot, dpr);
                    TensorPrimitives.Multiply(dpr, pr, dpr);
                    TensorPrimitives.Multiply(dpr, sc, dpr);
                }
                if (dq is not null) MatMul.General<T>(dq.AsSpan(qOff), h, dp, nk, false, k.AsSpan(kOff), h, false, nq, d, nk, accumulate: true, threads: 1);
                if (dk is not null) MatMul.General<T>(dk.AsSpan(kOff), h, dp, nk, true, q.AsSpan(qOff), h, false, nk, d, nq, accumulate: true, threads: 1);
            }
        });
    }

    private static void CheckForward<T>(string kernel, T[] context, T[] probs, T[] q, T[] k, T[] v, int batch, int nq, int nk, int heads, int d)
    {
        Check.FloatType<T>(kernel);
        if (batch < 0 || nq < 0 || nk < 1 || heads < 1 || d < 1)
            throw new ArgumentException($"{kernel}: sizes must be positive (batch {batch}, query tokens {nq}, key tokens {nk}, heads {heads}, head width {d}).");
        long h = (long)heads * d;
        Check.Length(kernel, "context", context.Length, batch * nq * h);
        Check.Length(kernel, "probs", probs.Length, (long)batch * heads * nq * nk);
        Check.Length(kernel, "q", q.Length, batch * nq * h);
        Check.Length(kernel, "k", k.Length, batch * nk * h);
        Check.Length(kernel, "v", v.Length, batch * nk * h);
    }

    private static void CheckBackward<T>(string kernel, T[]? dq, T[]? dk, T[]? dv, T[] dContext, T[] q, T[] k, T[] v, T[] probs, int batch, int nq, int nk, int heads, int d)
    {
        CheckForward(kernel, dContext, probs, q, k, v, batch, nq, nk, heads, d);
        long h = (long)heads * d;
        if (dq is not null) Check.Length(kernel, "dq", dq.Length, batch * nq * h);
        if (dk is not null) Check.Length(kernel, "dk", dk.Length, batch * nk * h);
        if (dv is not null) Check.Length(kernel, "dv", dv.Length, batch * nk * h);
    }
}
