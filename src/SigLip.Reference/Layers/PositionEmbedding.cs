namespace SigLip.Reference.Layers;

// Learned position embedding added to every sequence of the batch (positions 0..N-1):
//   out[b, n, :] = input[b, n, :] + table[n, :]
// Dimensions: B = batch, N = tokens, H = width. The table may have more rows than N (text:
// max_position_embeddings); only its first N rows are used.

/// <summary>Adds learned position embeddings (position n gets row n of the table).</summary>
public static class PositionEmbedding
{
    /// <param name="output">[B, N, H], overwritten (may be the same array as <paramref name="input"/>).</param>
    /// <param name="input">[B, N, H].</param>
    /// <param name="table">[>= N, H].</param>
    public static void Forward(double[] output, double[] input, double[] table, int batch, int tokens, int width)
    {
        for (int b = 0; b < batch; b++)
        for (int n = 0; n < tokens; n++)
        {
            int row = (b * tokens + n) * width;
            int pos = n * width;
            for (int h = 0; h < width; h++) output[row + h] = input[row + h] + table[pos + h];
        }
    }

    // forward: out[b, n] = input[b, n] + table[n]
    // backward: dinput += dout;  dtable[n] += sum_b dout[b, n]
    /// <param name="dinput">[B, N, H] accumulated, or null.</param>
    /// <param name="dtable">[>= N, H] accumulated, or null.</param>
    /// <param name="doutput">[B, N, H].</param>
    public static void Backward(double[]? dinput, double[]? dtable, double[] doutput, int batch, int tokens, int width)
    {
        for (int b = 0; b < batch; b++)
        for (int n = 0; n < tokens; n++)
        {
            int row = (b * tokens + n) * width;
            int pos = n * width;
            for (int h = 0; h < width; h++)
            {
                double d = doutput[row + h];
                if (dinput is not null) dinput[row + h] += d;
                if (dtable is not null) dtable[pos + h] += d;
            }
        }
    }
}
