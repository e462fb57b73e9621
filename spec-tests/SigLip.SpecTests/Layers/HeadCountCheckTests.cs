using SigLip.Reference.Layers;

namespace SigLip.SpecTests.Layers;

/// <summary>The public attention entry points refuse a head count that does not divide the width, naming the layer and the sizes.</summary>
public sealed class HeadCountCheckTests
{
    private static double[] Z(int n) => new double[n];

    private static MapHeadWeights MapWeights(int h, int inter) => new(Z(h), Z(3 * h * h), Z(3 * h), Z(h * h), Z(h),
        new NormWeights(Z(h), Z(h)), new MlpWeights(Z(inter * h), Z(inter), Z(h * inter), Z(h)));

    private static void AssertNamed(Action action, string layer)
    {
        var ex = Assert.Throws<ArgumentException>(action);
        Assert.Contains(layer, ex.Message, StringComparison.Ordinal);
        Assert.Contains("width 10 is not divisible by heads 3", ex.Message, StringComparison.Ordinal);
        Assert.Contains("1, 2, 5, 10", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MapHead_refuses_heads_that_do_not_divide_the_width()
    {
        const int b = 2, n = 4, h = 10, heads = 3, inter = 6;
        var saved = new MapHeadSaved(b, n, h, heads, inter);
        AssertNamed(() => MapHead.Forward(Z(b * h), saved, Z(b * n * h), MapWeights(h, inter), b, n, h, heads, inter, 1e-6), "MapHead.Forward");
        AssertNamed(() => MapHead.Backward(Z(b * n * h), MapWeights(h, inter), Z(b * h), saved, Z(b * n * h), MapWeights(h, inter), b, n, h, heads, inter), "MapHead.Backward");
    }

    [Fact]
    public void SelfAttention_refuses_heads_that_do_not_divide_the_width()
    {
        const int b = 2, n = 4, h = 10, heads = 3;
        var saved = new SelfAttentionSaved(b, n, h, heads);
        AssertNamed(() => SelfAttention.Forward(Z(b * n * h), saved, Z(b * n * h), AttentionWeights.Zeros(h), b, n, h, heads), "SelfAttention.Forward");
        AssertNamed(() => SelfAttention.Backward(Z(b * n * h), AttentionWeights.Zeros(h), Z(b * n * h), saved, Z(b * n * h), AttentionWeights.Zeros(h), b, n, h, heads), "SelfAttention.Backward");
    }

    [Fact]
    public void Attention_refuses_zero_heads_and_buffers_of_the_wrong_size()
    {
        var zero = Assert.Throws<ArgumentException>(() => Attention.Forward(Z(0), Z(0), Z(0), Z(0), Z(0), 1, 1, 1, 0, 4));
        Assert.Contains("heads 0", zero.Message, StringComparison.Ordinal);
        // B = 1, Nq = 1, Nk = 2, NH = 2, head width 3: query [1, 1, 6] given as 5 elements.
        var size = Assert.Throws<ArgumentException>(() => Attention.Forward(Z(6), Z(4), Z(5), Z(12), Z(12), 1, 1, 2, 2, 3));
        Assert.Contains("query", size.Message, StringComparison.Ordinal);
        Assert.Contains("expected 6", size.Message, StringComparison.Ordinal);
    }
}
