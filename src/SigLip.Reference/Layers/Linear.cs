namespace SigLip.Reference.Layers;

// Linear (nn.Linear): y = x W^T + b.
// Dimensions: R = rows (batch x tokens, flattened), I = in features, O = out features.
// Weight layout as PyTorch: W [O, I] row-major, so output o reads row o of W.

/// <summary>A fully connected layer, y = x W^T + b (PyTorch's weight layout [out, in]).</summary>
public static class Linear
{
    /// <summary>output[r, o] = bias[o] + sum_i input[r, i] * weight[o, i].</summary>
    /// <param name="output">[R, O], overwritten.</param>
    /// <param name="input">[R, I].</param>
    /// <param name="weight">[O, I].</param>
    /// <param name="bias">[O], or null for none.</param>
    public static void Forward(double[] output, double[] input, double[] weight, double[]? bias, int rows, int inFeatures, int outFeatures)
    {
        for (int r = 0; r < rows; r++)
        {
            int inRow = r * inFeatures;
            int outRow = r * outFeatures;
            for (int o = 0; o < outFeatures; o++)
            {
                int wRow = o * inFeatures;
                double sum = bias is null ? 0.0 : bias[o];
                for (int i = 0; i < inFeatures; i++) sum += input[inRow + i] * weight[wRow + i];
                output[outRow + o] = sum;
            }
        }
    }

    // forward: output[r, o] = bias[o] + sum_i input[r, i] * weight[o, i]
    // backward (accumulates):
    //   dinput[r, i]  += sum_o doutput[r, o] * weight[o, i]
    //   dweight[o, i] += sum_r doutput[r, o] * input[r, i]
    //   dbias[o]      += sum_r doutput[r, o]
    /// <summary>Accumulates the gradients; any of <paramref name="dinput"/>, <paramref name="dweight"/>, <paramref name="dbias"/> may be null (not wanted).</summary>
    /// <param name="dinput">[R, I] or null.</param>
    /// <param name="dweight">[O, I] or null.</param>
    /// <param name="dbias">[O] or null.</param>
    /// <param name="doutput">[R, O].</param>
    /// <param name="input">[R, I], the forward input.</param>
    /// <param name="weight">[O, I].</param>
    public static void Backward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, int rows, int inFeatures, int outFeatures)
    {
        for (int r = 0; r < rows; r++)
        {
            int inRow = r * inFeatures;
            int outRow = r * outFeatures;
            for (int o = 0; o < outFeatures; o++)
            {
                double d = doutput[outRow + o];
                int wRow = o * inFeatures;
                if (dinput is not null)
                    for (int i = 0; i < inFeatures; i++) dinput[inRow + i] += d * weight[wRow + i];
                if (dweight is not null)
                    for (int i = 0; i < inFeatures; i++) dweight[wRow + i] += d * input[inRow + i];
                if (dbias is not null) dbias[o] += d;
            }
        }
    }
}
