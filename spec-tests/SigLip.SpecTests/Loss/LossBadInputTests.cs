using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Loss;

namespace SigLip.SpecTests.Loss;

/// <summary>Bad input gets an ArgumentException whose message names the sizes (and the place) involved.</summary>
public sealed class LossBadInputTests
{
    // Non-zero, finite rows 1, 2, 3, ... so only the defect under test is wrong.
    private static Tensor Rows(int n, int d) => new([n, d], Enumerable.Repeat(1.0, n * d).Select((v, i) => v + i).ToArray());

    private static string Fails(Tensor images, Tensor texts, LossOptions? options = null, double t = 1, double b = -10) =>
        Fails<ArgumentException>(images, texts, options, t, b);

    /// <summary>The loss refuses with exactly <typeparamref name="TException"/>; its message.</summary>
    private static string Fails<TException>(Tensor images, Tensor texts, LossOptions? options = null, double t = 1, double b = -10) where TException : Exception
    {
        var ex = Assert.Throws<TException>(() => PairwiseLoss.Compute(images, texts, t, b, options ?? LossOptions.Default));
        return ex.Message;
    }

    [Fact]
    public void MismatchedBatchSizesNameBothShapes()
    {
        var message = Fails(Rows(3, 8), Rows(4, 8));
        Assert.Contains("image_embeds is [3, 8]", message);
        Assert.Contains("text_embeds is [4, 8]", message);
        Assert.Contains("3 images, 4 texts", message);
    }

    [Fact]
    public void MismatchedWidthsNameBothWidths()
    {
        var message = Fails(Rows(3, 8), Rows(3, 6));
        Assert.Contains("widths differ", message);
        Assert.Contains("d = 8 vs 6", message);
    }

    [Fact]
    public void NotAMatrixIsRejected()
    {
        var message = Fails(new Tensor([24], new double[24]), Rows(3, 8));
        Assert.Contains("image_embeds is [24]", message);
        Assert.Contains("[n, d]", message);
    }

    [Fact]
    public void EmptyBatchIsRejected()
    {
        var message = Fails(Rows(0, 8), Rows(0, 8));
        Assert.Contains("empty", message);
        Assert.Contains("[0, 8]", message);
        Assert.Contains("n >= 1", message);
    }

    [Fact]
    public void ZeroWidthIsRejected()
    {
        var message = Fails(Rows(3, 0), Rows(3, 0));
        Assert.Contains("width is 0", message);
        Assert.Contains("[3, 0]", message);
    }

    [Theory]
    [InlineData(double.NaN, "NaN")]
    [InlineData(double.PositiveInfinity, "+Infinity")]
    [InlineData(double.NegativeInfinity, "-Infinity")]
    public void NonFiniteEmbeddingNamesTensorRowAndColumn(double bad, string word)
    {
        var texts = Rows(3, 4);
        texts.Data[2 * 4 + 1] = bad;
        // Its own type (an ArgumentException), so that a trainer can say at which step the numbers diverged.
        var message = Fails<NonFiniteValueException>(Rows(3, 4), texts);
        Assert.Contains($"text_embeds[2, 1] is {word}", message);
        Assert.Contains("[3, 4]", message);

        var images = Rows(3, 4);
        images.Data[5] = bad;
        Assert.Contains($"image_embeds[1, 1] is {word}", Fails<NonFiniteValueException>(images, Rows(3, 4)));
    }

    [Fact]
    public void ChunksThatDoNotDivideTheBatchNameBoth()
    {
        var message = Fails(Rows(6, 2), Rows(6, 2), new LossOptions(Chunks: 4));
        Assert.Contains("D = 4", message);
        Assert.Contains("n = 6", message);
        Assert.Contains("Divisors of 6: 1, 2, 3, 6", message);

        Assert.Contains("D = 0", Fails(Rows(6, 2), Rows(6, 2), new LossOptions(Chunks: 0)));
        Assert.Contains("sigmoid loss only", Fails(Rows(6, 2), Rows(6, 2), new LossOptions(LossKind.Softmax, Chunks: 2)));
    }

    [Theory]
    [InlineData(double.NaN, 0.0, "logit_scale t' = NaN")]
    [InlineData(double.PositiveInfinity, 0.0, "logit_scale t' = ")]
    [InlineData(0.0, double.NaN, "logit_bias b = NaN")]
    [InlineData(800.0, 0.0, "overflow")]
    public void NonFiniteLogitParametersAreRejected(double t, double b, string expected)
    {
        var message = Fails(Rows(2, 2), Rows(2, 2), t: t, b: b);
        Assert.Contains(expected, message);
    }

    [Fact]
    public void ZeroRowWithoutEpsilonIsRejected()
    {
        var images = Rows(3, 2);
        images.Data[2] = images.Data[3] = 0;
        var message = Fails(images, Rows(3, 2));
        Assert.Contains("image_embeds row 1 is all zeros", message);
        Assert.Contains("NormEpsilon", message);
        // ...but with an epsilon it is fine (and finite).
        var result = PairwiseLoss.Compute(images, Rows(3, 2), 1, -10, new LossOptions(NormEpsilon: 1e-8));
        Assert.True(double.IsFinite(result.Loss));

        Assert.Contains("NormEpsilon = -1", Fails(Rows(2, 2), Rows(2, 2), new LossOptions(NormEpsilon: -1)));
    }

    [Fact]
    public void ArrayEntryPointChecksLengths()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            SigmoidLoss.Compute(new float[10], new float[12], 3, 4, 1f, -10f));
        Assert.Contains("image_embeds has 10 elements but n * d = 3 * 4 = 12", ex.Message);
    }
}
