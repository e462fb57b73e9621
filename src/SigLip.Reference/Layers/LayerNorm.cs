namespace SigLip.Reference.Layers;

// LayerNorm over the last dimension (nn.LayerNorm): y = (x - mean) * rstd * weight + bias,
// rstd = 1 / sqrt(var + eps), var the biased (divide by C) variance, as PyTorch computes it.
// Dimensions: R = rows (batch x tokens), C = width (the normalised dimension).

/// <summary>A LayerNorm's scale (weight) and shift (bias), each [C].</summary>
/// <param name="Weight">[C] the scale (gamma).</param>
/// <param name="Bias">[C] the shift (beta).</param>
public sealed record NormWeights(double[] Weight, double[] Bias);

/// <summary>LayerNorm with saved mean and reciprocal standard deviation per row.</summary>
public static class LayerNorm
{
    /// <param name="output">[R, C], overwritten.</param>
    /// <param name="mean">[R] saved for backward.</param>
    /// <param name="rstd">[R] saved for backward: 1 / sqrt(var + eps).</param>
    /// <param name="input">[R, C].</param>
    /// <param name="weight">[C].</param>
    /// <param name="bias">[C].</param>
    public static void Forward(double[] output, double[] mean, double[] rstd, double[] input, double[] weight, double[] bias, int rows, int width, double epsilon)
    {
        for (int r = 0; r < rows; r++)
        {
            int row = r * width;
            double m = 0;
            for (int c = 0; c < width; c++) m += input[row + c];
            m /= width;
            double v = 0;
            for (int c = 0; c < width; c++)
            {
                double xm = input[row + c] - m;
                v += xm * xm;
            }
            v /= width;
            double s = 1.0 / Math.Sqrt(v + epsilon);
            for (int c = 0; c < width; c++)
                output[row + c] = (input[row + c] - m) * s * weight[c] + bias[c];
            mean[r] = m;
            rstd[r] = s;
        }
    }

    // forward: xhat = (x - mean) * rstd;  y = xhat * weight + bias
    // backward (accumulates), with g = dy * weight:
    //   dbias   += sum_r dy
    //   dweight += sum_r dy * xhat
    //   dx      += rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))
    /// <param name="dinput">[R, C] or null.</param>
    /// <param name="dweight">[C] or null.</param>
    /// <param name="dbias">[C] or null.</param>
    /// <param name="doutput">[R, C].</param>
    /// <param name="input">[R, C], the forward input.</param>
    /// <param name="weight">[C].</param>
    /// <param name="mean">[R] from forward.</param>
    /// <param name="rstd">[R] from forward.</param>
    public static void Backward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, double[] mean, double[] rstd, int rows, int width)
    {
        for (int r = 0; r < rows; r++)
        {
            int row = r * width;
            double m = mean[r], s = rstd[r];
            double meanG = 0, meanGXhat = 0;
            for (int c = 0; c < width; c++)
            {
                double xhat = (input[row + c] - m) * s;
                double g = doutput[row + c] * weight[c];
                meanG += g;
                meanGXhat += g * xhat;
            }
            meanG /= width;
            meanGXhat /= width;
            for (int c = 0; c < width; c++)
            {
                double xhat = (input[row + c] - m) * s;
                double dy = doutput[row + c];
                if (dbias is not null) dbias[c] += dy;
                if (dweight is not null) dweight[c] += dy * xhat;
                if (dinput is not null) dinput[row + c] += s * (dy * weight[c] - meanG - xhat * meanGXhat);
            }
        }
    }
}
