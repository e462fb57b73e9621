using System.Numerics;

namespace SigLip.Reference.Layers;

// Row-wise L2 normalisation of embeddings.
// Dimension legend: R = rows (batch), W = width (embedding size).
//
// Forward:  norms[r]  = ||x_r|| + epsilon          (the divisor; epsilon 0 = HF, big_vision 1e-8;
//                                                   ||x_r|| by power-of-two scaling, see RowNorm)
//           y[r, k]   = x[r, k] / norms[r]
// Backward (derivation in docs/sigmoid-loss.md, section 1):
//           dx[r, m] += (dy[r, m] - y[r, m] * <dy_r, y_r> / ||y_r||) / norms[r]
// With epsilon = 0, ||y_r|| = 1 and this is the familiar (dy - y <dy, y>) / ||x||. The ||y_r||
// form lets the backward work from the saved divisor alone, whatever epsilon was.

/// <summary>Row-wise L2 normalisation: forward and hand-written backward (llm.c style, accumulating).</summary>
public static class L2Normalize
{
    /// <summary>
    /// output[r, :] = input[r, :] / (||input[r, :]|| + epsilon); norms[r] receives that divisor.
    /// A zero row with epsilon 0 gives NaN (as HF does); callers that must not, validate first.
    /// </summary>
    /// <param name="output">[rows, width] normalised rows.</param>
    /// <param name="norms">[rows] saved for backward: ||input_r|| + epsilon.</param>
    /// <param name="input">[rows, width].</param>
    public static void Forward(double[] output, double[] norms, double[] input, int rows, int width, double epsilon) =>
        Forward<double>(output, norms, input, rows, width, epsilon);

    /// <summary>dinput += d loss / d input, given d loss / d output (accumulates, llm.c style).</summary>
    /// <param name="dinput">[rows, width], accumulated into.</param>
    /// <param name="doutput">[rows, width].</param>
    /// <param name="output">[rows, width] the forward's output.</param>
    /// <param name="norms">[rows] the forward's saved divisors.</param>
    public static void Backward(double[] dinput, double[] doutput, double[] output, double[] norms, int rows, int width) =>
        Backward<double>(dinput, doutput, output, norms, rows, width);

    /// <inheritdoc cref="Forward(double[], double[], double[], int, int, double)"/>
    public static void Forward<T>(T[] output, T[] norms, T[] input, int rows, int width, T epsilon)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckSizes(output.Length, norms.Length, input.Length, rows, width);
        for (int r = 0; r < rows; r++)
        {
            int row = r * width;
            T norm = RowNorm(input, row, width);
            if (!T.IsFinite(norm))
                throw new ArgumentException($"L2Normalize: row {r} of the input has a norm beyond {typeof(T).Name}'s range ({Show(norm)}); rescale the rows so that their norms stay finite.");
            T divisor = norm + epsilon;
            norms[r] = divisor;
            for (int k = 0; k < width; k++) output[row + k] = input[row + k] / divisor;
        }
    }

    /// <inheritdoc cref="Backward(double[], double[], double[], double[], int, int)"/>
    public static void Backward<T>(T[] dinput, T[] doutput, T[] output, T[] norms, int rows, int width)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckSizes(dinput.Length, norms.Length, output.Length, rows, width);
        if (doutput.Length != rows * width)
            throw new ArgumentException($"L2Normalize.Backward: doutput has {doutput.Length} elements, expected rows*width = {rows}*{width} = {rows * width}.");
        for (int r = 0; r < rows; r++)
        {
            int row = r * width;
            // y = x / (||x|| + eps)
            // dx_m = dy_m / (||x|| + eps) - y_m <dy, y> / ||x||,   and ||x|| = ||y|| (||x|| + eps)
            T dyDotY = T.Zero, ySquared = T.Zero;
            for (int k = 0; k < width; k++)
            {
                dyDotY += doutput[row + k] * output[row + k];
                ySquared += output[row + k] * output[row + k];
            }
            // A zero row (possible only with eps > 0) has y = 0: the radial term vanishes.
            T radial = ySquared == T.Zero ? T.Zero : dyDotY / T.Sqrt(ySquared);
            T divisor = norms[r];
            for (int k = 0; k < width; k++)
                dinput[row + k] += (doutput[row + k] - output[row + k] * radial) / divisor;
        }
    }

    /// <summary>
    /// ||values[start .. start + width)||, scaled by a power of two near the largest magnitude (as
    /// hypot and BLAS nrm2 scale) so that the squares neither underflow (float 1e-23) nor overflow
    /// (float 1e20). Power-of-two scaling is exact, so wherever the plain sum of squares neither
    /// under- nor overflows, the result is bit for bit the plain sqrt(sum x^2). Infinity only when
    /// the norm itself exceeds the type's range; 0 only for an all-zero row.
    /// </summary>
    public static T RowNorm<T>(T[] values, int start, int width) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(values);
        T maxAbs = T.Zero;
        for (int k = 0; k < width; k++) maxAbs = T.Max(maxAbs, T.Abs(values[start + k]));
        if (maxAbs == T.Zero || !T.IsFinite(maxAbs)) return maxAbs; // zero row, or Inf/NaN passes through
        int exponent = T.ILogB(maxAbs);
        T sumSquares = T.Zero;
        for (int k = 0; k < width; k++)
        {
            T scaled = T.ScaleB(values[start + k], -exponent); // |scaled| < 2
            sumSquares += scaled * scaled;
        }
        return T.ScaleB(T.Sqrt(sumSquares), exponent);
    }

    private static string Show<T>(T value) where T : unmanaged, IFloatingPointIeee754<T> =>
        value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);

    private static void CheckSizes(int outputLength, int normsLength, int inputLength, int rows, int width)
    {
        if (rows < 0 || width < 0)
            throw new ArgumentException($"L2Normalize: rows ({rows}) and width ({width}) must not be negative.");
        long size = (long)rows * width;
        if (outputLength != size || inputLength != size)
            throw new ArgumentException($"L2Normalize: arrays of {outputLength} and {inputLength} elements do not match rows*width = {rows}*{width} = {size}.");
        if (normsLength != rows)
            throw new ArgumentException($"L2Normalize: norms has {normsLength} elements, expected one per row ({rows}).");
    }
}
