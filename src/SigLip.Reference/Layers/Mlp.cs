namespace SigLip.Reference.Layers;

// HF SiglipMLP: y = fc2(gelu_tanh(fc1(x))).
// Dimensions: R = rows (batch x tokens), H = width, I = intermediate (MLP) width.

/// <summary>The MLP's weights: fc1 [I, H] + [I], fc2 [H, I] + [H].</summary>
/// <param name="Fc1Weight">[I, H] fc1.weight.</param>
/// <param name="Fc1Bias">[I] fc1.bias.</param>
/// <param name="Fc2Weight">[H, I] fc2.weight.</param>
/// <param name="Fc2Bias">[H] fc2.bias.</param>
public sealed record MlpWeights(double[] Fc1Weight, double[] Fc1Bias, double[] Fc2Weight, double[] Fc2Bias)
{
    /// <summary>Zero-filled weights for these sizes (used as gradient accumulators).</summary>
    public static MlpWeights Zeros(int width, int intermediate) => new(
        new double[intermediate * width], new double[intermediate], new double[width * intermediate], new double[width]);
}

/// <summary>What the MLP's forward keeps for its backward.</summary>
public sealed class MlpSaved(int rows, int intermediate)
{
    /// <summary>[R, I] fc1 output, before GELU</summary>
    public double[] Hidden { get; } = new double[rows * intermediate];     // [R, I] fc1 output, before GELU
    /// <summary>[R, I] gelu_tanh(Hidden)</summary>
    public double[] Activated { get; } = new double[rows * intermediate];  // [R, I] gelu_tanh(Hidden)
}

/// <summary>fc1 -> gelu_tanh -> fc2.</summary>
public static class Mlp
{
    /// <param name="output">[R, H], overwritten.</param>
    /// <param name="input">[R, H].</param>
    public static void Forward(double[] output, MlpSaved saved, double[] input, MlpWeights weights, int rows, int width, int intermediate, ILayerOps? ops = null)
    {
        ops ??= ReferenceOps.Instance;
        ops.LinearForward(saved.Hidden, input, weights.Fc1Weight, weights.Fc1Bias, rows, width, intermediate);
        ops.GeluForward(saved.Activated, saved.Hidden, rows * intermediate);
        ops.LinearForward(output, saved.Activated, weights.Fc2Weight, weights.Fc2Bias, rows, intermediate, width);
    }

    // forward: h = x W1^T + b1;  a = gelu(h);  y = a W2^T + b2
    // backward: da from fc2, dh = gelu'(h) da, dx from fc1.
    /// <param name="dinput">[R, H] accumulated, or null.</param>
    public static void Backward(double[]? dinput, MlpWeights grads, double[] doutput, MlpSaved saved, double[] input, MlpWeights weights, int rows, int width, int intermediate, ILayerOps? ops = null)
    {
        ops ??= ReferenceOps.Instance;
        Backward(dinput, grads, doutput, saved, input, weights, rows, width, intermediate, new double[rows * intermediate], new double[rows * intermediate], ops);
    }

    /// <summary>As above, with caller-owned scratch dactivated, dhidden (each [R, I]; cleared here, so they may be reused).</summary>
    internal static void Backward(double[]? dinput, MlpWeights grads, double[] doutput, MlpSaved saved, double[] input, MlpWeights weights, int rows, int width, int intermediate,
        double[] dactivated, double[] dhidden, ILayerOps? ops = null)
    {
        ops ??= ReferenceOps.Instance;
        Array.Clear(dactivated, 0, rows * intermediate);
        Array.Clear(dhidden, 0, rows * intermediate);
        ops.LinearBackward(dactivated, grads.Fc2Weight, grads.Fc2Bias, doutput, saved.Activated, weights.Fc2Weight, rows, intermediate, width);
        ops.GeluBackward(dhidden, dactivated, saved.Hidden, rows * intermediate);
        ops.LinearBackward(dinput, grads.Fc1Weight, grads.Fc1Bias, dhidden, input, weights.Fc1Weight, rows, width, intermediate);
    }
}
