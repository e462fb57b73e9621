using System.Numerics;
using SigLip.Reference.Layers;
using SigLip.Reference.Loss;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Loss;

/// <summary>
/// Embedding rows far from unit size: their squares under- or overflow (float 1e-23 / 1e20,
/// double 1e-170 / 1e170), but their norms do not. The loss depends only on directions, so
/// L(s u) = L(u) and s * dL/dx at x = s u equals dL/du at u; both are checked against a float64
/// loss and central finite differences of the unit-size rows.
/// </summary>
public sealed class ExtremeNormTests
{
    // Directions (n = 2, d = 2); image row 0 is s * [1, 1].
    private static readonly double[] ImageDirections = [1, 1, 0.3, -0.8];
    private static readonly double[] TextDirections = [0.5, 0.2, -0.1, 0.9];
    private const int N = 2, D = 2;
    private static readonly double LogitScale = Math.Log(10), LogitBias = -10;

    public static TheoryData<double, double> FloatScales => new() { { 1e-23, 1e20 }, { 1e20, 1e-23 }, { 1e-23, 1e-23 }, { 1e20, 1e20 } };
    public static TheoryData<double, double> DoubleScales => new() { { 1e-170, 1e170 }, { 1e170, 1e-170 }, { 1e-170, 1e-170 }, { 1e170, 1e170 } };

    [Theory]
    [MemberData(nameof(FloatScales))]
    public void Float32_rows_of_extreme_size_give_the_unit_size_loss_and_gradients(double imageScale, double textScale) =>
        Check<float>(imageScale, textScale, new Tolerance(2e-6, 2e-6), new Tolerance(2e-5, 1e-4));

    [Theory]
    [MemberData(nameof(DoubleScales))]
    public void Float64_rows_of_extreme_size_give_the_unit_size_loss_and_gradients(double imageScale, double textScale) =>
        Check<double>(imageScale, textScale, new Tolerance(1e-15, 1e-14), new Tolerance(1e-8, 1e-7));

    private static void Check<T>(double imageScale, double textScale, Tolerance lossTolerance, Tolerance gradTolerance)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T[] image = ImageDirections.Select(u => T.CreateChecked(u * imageScale)).ToArray();
        T[] text = TextDirections.Select(u => T.CreateChecked(u * textScale)).ToArray();
        Assert.All(image.Concat(text), v => Assert.True(T.IsFinite(v) && v != T.Zero, "the scaled inputs themselves are representable"));
        var result = SigmoidLoss.Compute(image, text, N, D, T.CreateChecked(LogitScale), T.CreateChecked(LogitBias));

        double expected = UnitLoss(ImageDirections, TextDirections);
        AssertClose.Scalar(double.CreateChecked(result.Loss), expected, lossTolerance, $"{typeof(T).Name} loss, image x {imageScale:G3}, text x {textScale:G3}");

        // s * dL/dx (in double, so the product does not overflow) against finite differences of L(u).
        var (fdImage, fdText) = FiniteDifferences();
        double[] gradImage = result.GradImageEmbeds.Select(g => double.CreateChecked(g)).ToArray();
        double[] gradText = result.GradTextEmbeds.Select(g => double.CreateChecked(g)).ToArray();
        Assert.All(gradImage.Concat(gradText), g => Assert.True(double.IsFinite(g), "gradient not finite"));
        AssertClose.Array(gradImage.Select(g => g * imageScale).ToArray(), fdImage, gradTolerance, "s * dL/d image_embeds");
        AssertClose.Array(gradText.Select(g => g * textScale).ToArray(), fdText, gradTolerance, "s * dL/d text_embeds");
    }

    private static double UnitLoss(double[] image, double[] text) =>
        SigmoidLoss.Compute(image, text, N, D, LogitScale, LogitBias).Loss;

    private static (double[] Image, double[] Text) FiniteDifferences()
    {
        const double h = 1e-5;
        double[] Along(bool imageSide)
        {
            var grad = new double[N * D];
            for (int e = 0; e < grad.Length; e++)
            {
                var image = (double[])ImageDirections.Clone();
                var text = (double[])TextDirections.Clone();
                var x = imageSide ? image : text;
                double x0 = x[e];
                x[e] = x0 + h;
                double plus = UnitLoss(image, text);
                x[e] = x0 - h;
                double minus = UnitLoss(image, text);
                grad[e] = (plus - minus) / (2 * h);
            }
            return grad;
        }
        return (Along(true), Along(false));
    }

    [Fact]
    public void RowNorm_is_exact_where_the_plain_sum_is_and_right_where_it_under_or_overflows()
    {
        double[] plain = [3, -4, 12];
        Assert.Equal(Math.Sqrt(9 + 16 + 144), L2Normalize.RowNorm(plain, 0, 3));
        float[] tiny = [1e-23f, 1e-23f];
        float[] huge = [1e20f, 1e20f];
        AssertClose.Scalar(L2Normalize.RowNorm(tiny, 0, 2), Math.Sqrt(2) * 1e-23f, new Tolerance(0, 1e-6), "float norm of [1e-23, 1e-23]");
        AssertClose.Scalar(L2Normalize.RowNorm(huge, 0, 2), Math.Sqrt(2) * 1e20f, new Tolerance(0, 1e-6), "float norm of [1e20, 1e20]");
        AssertClose.Scalar(L2Normalize.RowNorm([1e-170, 1e-170], 0, 2) / 1e-170, Math.Sqrt(2), new Tolerance(0, 1e-15), "double norm of 1e-170 rows");
        AssertClose.Scalar(L2Normalize.RowNorm([1e170, 1e170], 0, 2) / 1e170, Math.Sqrt(2), new Tolerance(0, 1e-15), "double norm of 1e170 rows");
    }

    [Fact]
    public void Row_whose_norm_overflows_is_named()
    {
        float[] image = [1, 0, 3e38f, 3e38f]; // row 1's norm 4.2e38 exceeds float's 3.4e38
        float[] text = [1, 0, 0, 1];
        var ex = Assert.Throws<ArgumentException>(() => SigmoidLoss.Compute(image, text, N, D, 1f, -1f));
        Assert.Contains("image_embeds row 1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("norm", ex.Message, StringComparison.Ordinal);
    }
}
