using System.Numerics;
using System.Numerics.Tensors;

namespace SigLip.Reference.Numerics.Kernels;

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
    public static void Forward<T>(T[] context, T[] probs, T[] q, T[] k, T[] v, int batch, int queryTokens, int keyTokens, int heads, int headWidth, double scale)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckForward("AttentionKernels.Forward", context, probs, q, k, v, batch, queryTokens, keyTokens, heads, headWidth);
        int nq = queryTokens, nk = keyTokens, d = headWidth, h = heads * headWidth;
        T sc = T.CreateChecked(scale);
        Ranges.For(batch * heads, 4L * nq * nk * d + 16L * nq * nk, (lo, hi) =>
        {
            for (int bh = lo; bh < hi; bh++)
            {
                int b = bh / heads, a = bh % heads;
                var p = probs.AsSpan(bh * nq * nk, nq * nk);
                // scores = q_a · k_aᵀ   [Nq, Nk]
                MatMul.General<T>(p, nk, q.AsSpan(b * nq * h + a * d), h, false, k.AsSpan(b * nk * h + a * d), h, true, nq, nk, d, parallel: false);
                for (int i = 0; i < nq; i++) SoftmaxRow(p.Slice(i * nk, nk), sc);
                // context_a = probs · v_a   [Nq, D]
                MatMul.General<T>(context.AsSpan(b * nq * h + a * d), h, p, nk, false, v.AsSpan(b * nk * h + a * d), h, false, nq, d, nk, parallel: false);
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

    /// <summary>The readable twin of <see cref="Forward{T}"/>.</summary>
    public static void ForwardNaive<T>(T[] context, T[] probs, T[] q, T[] k, T[] v, int batch, int queryTokens, int keyTokens, int heads, int headWidth, double scale)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckForward("AttentionKernels.ForwardNaive", context, probs, q, k, v, batch, queryTokens, keyTokens, heads, headWidth);
        int nq = queryTokens, nk = keyTokens, d = headWidth, h = heads * headWidth;
        T sc = T.CreateChecked(scale);
        for (int b = 0; b < batch; b++)
        for (int a = 0; a < heads; a++)
        {
            int pBase = (b * heads + a) * nq * nk;
            for (int i = 0; i < nq; i++)
            {
                // scores and a numerically safe softmax over the keys
                T max = T.NegativeInfinity;
                for (int j = 0; j < nk; j++)
                {
                    T dot = T.Zero;
                    for (int c = 0; c < d; c++) dot += q[(b * nq + i) * h + a * d + c] * k[(b * nk + j) * h + a * d + c];
                    T s = dot * sc;
                    probs[pBase + i * nk + j] = s;
                    if (s > max) max = s;
                }
                T sum = T.Zero;
                for (int j = 0; j < nk; j++)
                {
                    T e = T.Exp(probs[pBase + i * nk + j] - max);
                    probs[pBase + i * nk + j] = e;
                    sum += e;
                }
                for (int j = 0; j < nk; j++) probs[pBase + i * nk + j] /= sum;
                for (int c = 0; c < d; c++)
                {
                    T acc = T.Zero;
                    for (int j = 0; j < nk; j++) acc += probs[pBase + i * nk + j] * v[(b * nk + j) * h + a * d + c];
                    context[(b * nq + i) * h + a * d + c] = acc;
                }
            }
        }
    }

    /// <summary>
    /// dv_a += probsᵀ·dcontext_a;  dprobs = dcontext_a·v_aᵀ;  dscores = probs ⊙ (dprobs - rowsum(dprobs ⊙ probs)) · scale;
    /// dq_a += dscores·k_a;  dk_a += dscoresᵀ·q_a.
    /// </summary>
    public static void Backward<T>(T[]? dq, T[]? dk, T[]? dv, T[] dContext, T[] q, T[] k, T[] v, T[] probs, int batch, int queryTokens, int keyTokens, int heads, int headWidth, double scale)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckBackward("AttentionKernels.Backward", dq, dk, dv, dContext, q, k, v, probs, batch, queryTokens, keyTokens, heads, headWidth);
        int nq = queryTokens, nk = keyTokens, d = headWidth, h = heads * headWidth;
        T sc = T.CreateChecked(scale);
        Ranges.For(batch * heads, 8L * nq * nk * d + 16L * nq * nk, (lo, hi) =>
        {
            var dp = Scratch<T>.First(nq * nk).AsSpan(0, nq * nk);   // [Nq, Nk]
            for (int bh = lo; bh < hi; bh++)
            {
                int b = bh / heads, a = bh % heads;
                var p = probs.AsSpan(bh * nq * nk, nq * nk);
                int qOff = b * nq * h + a * d, kOff = b * nk * h + a * d;
                MatMul.General<T>(dp, nk, dContext.AsSpan(qOff), h, false, v.AsSpan(kOff), h, true, nq, nk, d, parallel: false);
                if (dv is not null) MatMul.General<T>(dv.AsSpan(kOff), h, p, nk, true, dContext.AsSpan(qOff), h, false, nk, d, nq, accumulate: true, parallel: false);
                for (int i = 0; i < nq; i++)
                {
                    var dpr = dp.Slice(i * nk, nk);
                    var pr = p.Slice(i * nk, nk);
                    T dot = TensorPrimitives.Dot<T>(dpr, pr);
                    TensorPrimitives.Subtract(dpr, dot, dpr);
                    TensorPrimitives.Multiply(dpr, pr, dpr);
                    TensorPrimitives.Multiply(dpr, sc, dpr);
                }
                if (dq is not null) MatMul.General<T>(dq.AsSpan(qOff), h, dp, nk, false, k.AsSpan(kOff), h, false, nq, d, nk, accumulate: true, parallel: false);
                if (dk is not null) MatMul.General<T>(dk.AsSpan(kOff), h, dp, nk, true, q.AsSpan(qOff), h, false, nk, d, nq, accumulate: true, parallel: false);
            }
        });
    }

    /// <summary>The readable twin of <see cref="Backward{T}"/>.</summary>
    public static void BackwardNaive<T>(T[]? dq, T[]? dk, T[]? dv, T[] dContext, T[] q, T[] k, T[] v, T[] probs, int batch, int queryTokens, int keyTokens, int heads, int headWidth, double scale)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckBackward("AttentionKernels.BackwardNaive", dq, dk, dv, dContext, q, k, v, probs, batch, queryTokens, keyTokens, heads, headWidth);
        int nq = queryTokens, nk = keyTokens, d = headWidth, h = heads * headWidth;
        T sc = T.CreateChecked(scale);
        var dScores = new T[nk];
        for (int b = 0; b < batch; b++)
        for (int a = 0; a < heads; a++)
        {
            int pBase = (b * heads + a) * nq * nk;
            for (int i = 0; i < nq; i++)
            {
                int qRow = (b * nq + i) * h + a * d;
                // dprobs[j] = Σ_c dcontext[i,c]·v[j,c];  dv[j,c] += probs[i,j]·dcontext[i,c]
                T rowDot = T.Zero;
                for (int j = 0; j < nk; j++)
                {
                    int kRow = (b * nk + j) * h + a * d;
                    T dpj = T.Zero;
                    for (int c = 0; c < d; c++)
                    {
                        dpj += dContext[qRow + c] * v[kRow + c];
                        if (dv is not null) dv[kRow + c] += probs[pBase + i * nk + j] * dContext[qRow + c];
                    }
                    dScores[j] = dpj;
                    rowDot += dpj * probs[pBase + i * nk + j];
                }
                // softmax backward, then the scale
                for (int j = 0; j < nk; j++) dScores[j] = probs[pBase + i * nk + j] * (dScores[j] - rowDot) * sc;
                for (int j = 0; j < nk; j++)
                {
                    int kRow = (b * nk + j) * h + a * d;
                    for (int c = 0; c < d; c++)
                    {
                        if (dq is not null) dq[qRow + c] += dScores[j] * k[kRow + c];
                        if (dk is not null) dk[kRow + c] += dScores[j] * q[qRow + c];
                    }
                }
            }
        }
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
