namespace SigLip.Reference.Layers;

// Scaled dot-product attention over several heads, no mask (SigLIP masks nothing):
//   probs[b, h, i, :] = softmax_j( scale * q[b, i, head h] . k[b, j, head h] ),  scale = headDim^-0.5
//   out[b, i, head h] = sum_j probs[b, h, i, j] * v[b, j, head h]
// Dimensions: B = batch, Nq = query tokens, Nk = key/value tokens, NH = heads, D = head width,
// H = NH * D (width). Head h owns columns [h*D, (h+1)*D) of each token's H-vector, as in HF's
// view(B, N, NH, D).

/// <summary>The multi-head attention core on already projected queries, keys and values.</summary>
public static class Attention
{
    /// <param name="output">[B, Nq, H], overwritten: the per-head contexts, heads concatenated.</param>
    /// <param name="probs">[B, NH, Nq, Nk] saved for backward: the attention probabilities.</param>
    /// <param name="query">[B, Nq, H].</param>
    /// <param name="key">[B, Nk, H].</param>
    /// <param name="value">[B, Nk, H].</param>
    public static void Forward(double[] output, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim)
    {
        CheckSizes("Attention.Forward", output, probs, query, key, value, batch, queryTokens, keyTokens, heads, headDim);
        int width = heads * headDim;
        double scale = 1.0 / Math.Sqrt(headDim);
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        for (int i = 0; i < queryTokens; i++)
        {
            int q = (b * queryTokens + i) * width + h * headDim;
            int p = ((b * heads + h) * queryTokens + i) * keyTokens;
            double max = double.NegativeInfinity;
            for (int j = 0; j < keyTokens; j++)
            {
                int k = (b * keyTokens + j) * width + h * headDim;
                double dot = 0;
                for (int d = 0; d < headDim; d++) dot += query[q + d] * key[k + d];
                double score = dot * scale;
                probs[p + j] = score;
                if (score > max) max = score;
            }
            // softmax, shifted by the row's maximum so exp never overflows
            double sum = 0;
            for (int j = 0; j < keyTokens; j++)
            {
                double e = Math.Exp(probs[p + j] - max);
                probs[p + j] = e;
                sum += e;
            }
            for (int j = 0; j < keyTokens; j++) probs[p + j] /= sum;

            int o = (b * queryTokens + i) * width + h * headDim;
            for (int d = 0; d < headDim; d++) output[o + d] = 0;
            for (int j = 0; j < keyTokens; j++)
            {
                int v = (b * keyTokens + j) * width + h * headDim;
                double pj = probs[p + j];
                for (int d = 0; d < headDim; d++) output[o + d] += pj * value[v + d];
            }
        }
    }

    // forward: s_ij = scale q_i.k_j;  p_i = softmax(s_i);  out_i = sum_j p_ij v_j   (per batch and head)
    // backward (accumulates):
    //   dp_ij  = dout_i . v_j
    //   dv_j  += sum_i p_ij dout_i
    //   ds_ij  = p_ij (dp_ij - sum_k p_ik dp_ik)        (softmax Jacobian)
    //   dq_i  += scale sum_j ds_ij k_j
    //   dk_j  += scale sum_i ds_ij q_i
    /// <param name="dquery">[B, Nq, H] or null.</param>
    /// <param name="dkey">[B, Nk, H] or null.</param>
    /// <param name="dvalue">[B, Nk, H] or null.</param>
    /// <param name="doutput">[B, Nq, H].</param>
    /// <param name="probs">[B, NH, Nq, Nk] from forward.</param>
    public static void Backward(double[]? dquery, double[]? dkey, double[]? dvalue, double[] doutput, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim)
    {
        CheckSizes("Attention.Backward", doutput, probs, query, key, value, batch, queryTokens, keyTokens, heads, headDim);
        int width = heads * headDim;
        double scale = 1.0 / Math.Sqrt(headDim);
        var dprobs = new double[keyTokens]; // [Nk] one query row's dp
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        for (int i = 0; i < queryTokens; i++)
        {
            int q = (b * queryTokens + i) * width + h * headDim;
            int p = ((b * heads + h) * queryTokens + i) * keyTokens;
            double weighted = 0; // sum_k p_ik dp_ik
            for (int j = 0; j < keyTokens; j++)
            {
                int v = (b * keyTokens + j) * width + h * headDim;
                double dot = 0;
                for (int d = 0; d < headDim; d++) dot += doutput[q + d] * value[v + d];
                dprobs[j] = dot;
                weighted += probs[p + j] * dot;
                if (dvalue is not null)
                {
                    double pj = probs[p + j];
                    for (int d = 0; d < headDim; d++) dvalue[v + d] += pj * doutput[q + d];
                }
            }
            for (int j = 0; j < keyTokens; j++)
            {
                double dscore = probs[p + j] * (dprobs[j] - weighted) * scale;
                int k = (b * keyTokens + j) * width + h * headDim;
                if (dquery is not null)
                    for (int d = 0; d < headDim; d++) dquery[q + d] += dscore * key[k + d];
                if (dkey is not null)
                    for (int d = 0; d < headDim; d++) dkey[k + d] += dscore * query[q + d];
            }
        }
    }

    /// <summary>
    /// H / NH for a layer of width H split into NH heads; throws, naming the layer, unless NH >= 1 and
    /// NH divides H (HF's attention asserts the same: embed_dim must be divisible by num_heads).
    /// </summary>
    internal static int HeadDim(string layer, int width, int heads)
    {
        if (heads < 1)
            throw new ArgumentException($"{layer}: heads = {heads}; the number of attention heads must be at least 1.");
        if (width < 1)
            throw new ArgumentException($"{layer}: width = {width}; the width must be at least 1.");
        if (width % heads != 0)
            throw new ArgumentException(
                $"{layer}: width {width} is not divisible by heads {heads}; each head takes width / heads channels, so heads must divide the width " +
                $"(divisors of {width}: {string.Join(", ", Enumerable.Range(1, width).Where(d => width % d == 0))}).");
        return width / heads;
    }

    /// <summary>Throws an <see cref="ArgumentException"/> naming <paramref name="layer"/> and the buffer when a buffer does not have the length the sizes need.</summary>
    public static void CheckSizes(string layer, double[] output, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim)
    {
        if (batch < 0 || queryTokens < 0 || keyTokens < 0 || heads < 1 || headDim < 1)
            throw new ArgumentException($"{layer}: batch {batch}, query tokens {queryTokens}, key tokens {keyTokens}, heads {heads}, head width {headDim}; heads and head width must be at least 1, the others not negative.");
        long width = (long)heads * headDim;
        void Expect(string name, double[] a, long size)
        {
            if (a.Length != size) throw new ArgumentException($"{layer}: {name} has {a.Length} elements, expected {size} for B = {batch}, Nq = {queryTokens}, Nk = {keyTokens}, NH = {heads}, head width {headDim}.");
        }
        Expect("query/output [B, Nq, H]", query, batch * queryTokens * width);
        Expect("output/doutput [B, Nq, H]", output, batch * queryTokens * width);
        Expect("key [B, Nk, H]", key, batch * keyTokens * width);
        Expect("value [B, Nk, H]", value, batch * keyTokens * width);
        Expect("probs [B, NH, Nq, Nk]", probs, (long)batch * heads * queryTokens * keyTokens);
    }
}
