namespace SigLip.Reference.Layers;

// Last-token pooling (HF SiglipTextTransformer: last_hidden_state[:, -1, :]). SigLIP pads every
// text to a fixed length with the end token, so the last position is always end-of-text.
//   out[b, :] = input[b, L-1, :]
// Dimensions: B = batch, L = sequence length, H = width.

/// <summary>Takes each sequence's last token.</summary>
public static class LastTokenPooling
{
    /// <param name="output">[B, H], overwritten.</param>
    /// <param name="input">[B, L, H].</param>
    public static void Forward(double[] output, double[] input, int batch, int length, int width)
    {
        for (int b = 0; b < batch; b++)
            Array.Copy(input, ((long)b * length + length - 1) * width, output, (long)b * width, width);
    }

    // forward: out[b] = input[b, L-1]
    // backward: dinput[b, L-1] += dout[b]; every other position gets nothing
    /// <param name="dinput">[B, L, H] accumulated.</param>
    /// <param name="doutput">[B, H].</param>
    public static void Backward(double[] dinput, double[] doutput, int batch, int length, int width)
    {
        for (int b = 0; b < batch; b++)
        {
            int dst = (b * length + length - 1) * width;
            for (int h = 0; h < width; h++) dinput[dst + h] += doutput[b * width + h];
        }
    }
}
