namespace SigLip.Reference.Layers;

// Token embedding (nn.Embedding): out[b, t, :] = table[ids[b, t], :]
// Dimensions: B = batch, L = sequence length, V = vocabulary, H = width.

/// <summary>Looks token ids up in an embedding table. Ids must already be checked to lie in [0, V).</summary>
public static class TokenEmbedding
{
    /// <param name="output">[B, L, H], overwritten.</param>
    /// <param name="ids">[B, L], each in [0, V).</param>
    /// <param name="table">[V, H].</param>
    public static void Forward(double[] output, int[] ids, double[] table, int batch, int length, int width)
    {
        for (int i = 0; i < batch * length; i++)
            Array.Copy(table, (long)ids[i] * width, output, (long)i * width, width);
    }

    // forward: out[b, t] = table[ids[b, t]]
    // backward: dtable[ids[b, t]] += dout[b, t]   (a repeated id collects every occurrence's gradient)
    /// <param name="dtable">[V, H] accumulated.</param>
    /// <param name="doutput">[B, L, H].</param>
    /// <param name="ids">[B, L].</param>
    public static void Backward(double[] dtable, double[] doutput, int[] ids, int batch, int length, int width)
    {
        for (int i = 0; i < batch * length; i++)
        {
            long row = (long)ids[i] * width;
            int src = i * width;
            for (int h = 0; h < width; h++) dtable[row + h] += doutput[src + h];
        }
    }
}
