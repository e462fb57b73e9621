using FsCheck.Fluent;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Loss;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Loss;

/// <summary>The chunked ring form (paper section 3.1) equals the dense form for every D dividing n.</summary>
public sealed class ChunkedSigmoidLossTests(ITestOutputHelper output)
{
    // Same terms, summed in another order: everything (loss, both embedding gradients, dL/dt', dL/db)
    // is held to rtol 1e-12 with no atol, as the issue asks, element by element.
    private static readonly Tolerance Strict = new(Atol: 0, Rtol: 1e-12);

    [Fact]
    public void ChunkedEqualsDenseForEveryDivisor()
    {
        var gen = from n in Gen.Choose(1, 12)
                  from d in Gen.Choose(1, 4)
                  from t in LossCase.Uniform(-1, 4)
                  from b in LossCase.Uniform(-12, 4)
                  from seed in Gen.Choose(0, 1_000_000)
                  select new LossCase(n, d, t, b, seed);
        Props.Check(gen, c =>
        {
            var images = new Tensor([c.N, c.D], c.Images);
            var texts = new Tensor([c.N, c.D], c.Texts);
            var dense = PairwiseLoss.Compute(images, texts, c.LogitScale, c.LogitBias, LossOptions.Default, returnLogits: true);
            foreach (int chunks in Enumerable.Range(1, c.N).Where(k => c.N % k == 0))
            {
                string where = $"D={chunks} {c}";
                var chunked = PairwiseLoss.Compute(images, texts, c.LogitScale, c.LogitBias, new LossOptions(Chunks: chunks), returnLogits: true);
                AssertClose.Scalar(chunked.Loss, dense.Loss, Strict, $"loss ({where})");
                AssertClose.Tensor(chunked.GradImageEmbeds, dense.GradImageEmbeds, Strict, $"dL/d image_embeds ({where})");
                AssertClose.Tensor(chunked.GradTextEmbeds, dense.GradTextEmbeds, Strict, $"dL/d text_embeds ({where})");
                AssertClose.Scalar(chunked.GradLogitScale, dense.GradLogitScale, Strict, $"dL/dt' ({where})");
                AssertClose.Scalar(chunked.GradLogitBias, dense.GradLogitBias, Strict, $"dL/db ({where})");
                // Logits are computed element by element the same way: bit-identical.
                Assert.Equal(dense.LogitsPerImage!.Data, chunked.LogitsPerImage!.Data);
            }
            return true;
        }, 20260201UL, output, maxTest: 60);
    }

    [Fact]
    public void NoDeviceHoldsMoreThanAChunkSquaredOfLogits()
    {
        foreach (int n in new[] { 1, 6, 12, 30 })
        {
            var images = LossCase.Embeddings(n, 3, n);
            var texts = LossCase.Embeddings(n, 3, n + 1);
            foreach (int chunks in Enumerable.Range(1, n).Where(k => n % k == 0))
            {
                var result = SigmoidLoss.Compute(images, texts, n, 3, 1.0, -5.0, chunks: chunks);
                long perDevice = (long)(n / chunks) * (n / chunks);
                Assert.Equal(perDevice, ChunkedSigmoidLoss.LogitsPerDevice(n, chunks));
                Assert.True(result.LogitsHeldAtOnce <= perDevice, $"n={n} D={chunks}: a device held {result.LogitsHeldAtOnce} logits > (n/D)^2 = {perDevice}");
                Assert.Null(result.LogitsPerImage); // not asked for: the full matrix never exists
            }
        }
    }

    [Fact]
    public void ChunkedFloat32EqualsDenseFloat32()
    {
        // The ring is generic too: float32 chunked against float32 dense (same kernels, other sum order).
        // Reordering sums of <= n = 8 terms moves a float32 result by <= ~n u (u = 6e-8) of the terms'
        // size: 1e-5 of the loss, and of the largest gradient element, leaves a 20x margin.
        var images = LossCase.Embeddings(8, 5, 3).Select(v => (float)v).ToArray();
        var texts = LossCase.Embeddings(8, 5, 4).Select(v => (float)v).ToArray();
        var dense = SigmoidLoss.Compute(images, texts, 8, 5, 2f, -6f);
        foreach (int chunks in new[] { 2, 4, 8 })
        {
            var chunked = SigmoidLoss.Compute(images, texts, 8, 5, 2f, -6f, chunks: chunks);
            AssertClose.Scalar(chunked.Loss, dense.Loss, new Tolerance(0, 1e-5), $"float32 loss D={chunks}");
            AssertClose.Array(chunked.GradTextEmbeds.Select(v => (double)v).ToArray(), dense.GradTextEmbeds.Select(v => (double)v).ToArray(),
                new Tolerance(1e-5 * dense.GradTextEmbeds.Max(Math.Abs), 1e-5), $"float32 dL/d text_embeds D={chunks}");
        }
    }
}
