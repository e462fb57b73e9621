namespace SigLip.Reference.Layers;

// GELU, tanh form (PyTorch gelu(approximate="tanh"), HF "gelu_pytorch_tanh"):
//   y = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
// Dimensions: N = number of elements (any shape, element-wise).

/// <summary>The tanh approximation of GELU, element by element.</summary>
public static class Gelu
{
    private static readonly double Sqrt2OverPi = Math.Sqrt(2.0 / Math.PI);
    private const double Cubic = 0.044715;

    /// <param name="output">[N], overwritten.</param>
    /// <param name="input">[N].</param>
    public static void Forward(double[] output, double[] input, int count)
    {
        for (int i = 0; i < count; i++)
        {
            double x = input[i];
            double u = Sqrt2OverPi * (x + Cubic * x * x * x);
            output[i] = 0.5 * x * (1.0 + Math.Tanh(u));
        }
    }

    // forward: y = 0.5 x (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3)
    // backward: dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    /// <param name="dinput">[N], accumulated.</param>
    /// <param name="doutput">[N].</param>
    /// <param name="input">[N], the forward input.</param>
    public static void Backward(double[] dinput, double[] doutput, double[] input, int count)
    {
        for (int i = 0; i < count; i++)
        {
            double x = input[i];
            double u = Sqrt2OverPi * (x + Cubic * x * x * x);
            double t = Math.Tanh(u);
            double du = Sqrt2OverPi * (1.0 + 3.0 * Cubic * x * x);
            double local = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
            dinput[i] += local * doutput[i];
        }
    }
}
