using FsCheck.Fluent;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Distributed;
using SigLip.Reference.Loss;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Loss;

/// <summary>
/// The ring (paper section 3.1) and the all-gather baseline, run on an in-process group of W ranks,
/// equal the dense loss of the whole global batch, and hold (n/W)^2 and (n/W) n logits per rank.
/// </summary>
public sealed class RingSigmoidLossTests(ITestOutputHelper output)
{
    // float64: the same terms as the dense form, summed in another order (per block, then over the
    // ranks): the loss, every embedding gradient element, dL/dt' and dL/db to rtol 1e-12, no atol,
    // as ChunkedSigmoidLossTests holds the simulated ring.
    private static readonly Tolerance Float64 = new(Atol: 0, Rtol: 1e-12);

    private static readonly int[] Sizes = [1, 2, 3, 4, 6];

    /// <summary>Runs the distributed loss on W ranks, each holding its rows; gathers the rows' gradients back.</summary>
    private static (T Loss, T[] GradImage, T[] GradText, T GradScale, T GradBias, long[] Held) OnGroup<T>(
        int ranks, T[] images, T[] texts, int n, int d, T logitScale, T logitBias, SigmoidExchange exchange)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var gradImage = new T[n * d];
        var gradText = new T[n * d];
        var results = InProcessGroup.Run(ranks, comm =>
        {
            var (start, c) = RingSigmoidLoss.RowsOf(n, comm.Size, comm.Rank);
            var r = RingSigmoidLoss.Compute(comm, images.AsSpan(start * d, c * d).ToArray(), texts.AsSpan(start * d, c * d).ToArray(),
                c, d, logitScale, logitBias, exchange: exchange);
            Array.Copy(r.GradImageEmbeds, 0, gradImage, start * d, c * d);
            Array.Copy(r.GradTextEmbeds, 0, gradText, start * d, c * d);
            return r;
        });
        // Every rank must report the same global L, dL/dt', dL/db (they were all-reduced).
        foreach (var r in results)
        {
            Assert.Equal(results[0].Loss, r.Loss);
            Assert.Equal(results[0].GradLogitScale, r.GradLogitScale);
            Assert.Equal(results[0].GradLogitBias, r.GradLogitBias);
        }
        return (results[0].Loss, gradImage, gradText, results[0].GradLogitScale, results[0].GradLogitBias, results.Select(r => r.LogitsHeldAtOnce).ToArray());
    }

    [Theory]
    [InlineData(SigmoidExchange.Ring)]
    [InlineData(SigmoidExchange.AllGather)]
    public void Float64_equals_the_dense_loss_of_the_global_batch(SigmoidExchange exchange)
    {
        var gen = from ranks in Gen.Elements(Sizes)
                  from perRank in Gen.Choose(1, 3)
                  from d in Gen.Choose(1, 4)
                  from t in LossCase.Uniform(-1, 4)
                  from b in LossCase.Uniform(-12, 4)
                  from seed in Gen.Choose(0, 1_000_000)
                  select (ranks, Case: new LossCase(ranks * perRank, d, t, b, seed));
        Props.Check(gen, x =>
        {
            var c = x.Case;
            string where = $"{exchange} W={x.ranks} {c}";
            var dense = PairwiseLoss.Compute(new Tensor([c.N, c.D], c.Images), new Tensor([c.N, c.D], c.Texts), c.LogitScale, c.LogitBias);
            var ring = OnGroup(x.ranks, c.Images, c.Texts, c.N, c.D, c.LogitScale, c.LogitBias, exchange);
            AssertClose.Scalar(ring.Loss, dense.Loss, Float64, $"loss ({where})");
            AssertClose.Array(ring.GradImage, dense.GradImageEmbeds.Data, Float64, $"dL/d image_embeds ({where})");
            AssertClose.Array(ring.GradText, dense.GradTextEmbeds.Data, Float64, $"dL/d text_embeds ({where})");
            AssertClose.Scalar(ring.GradScale, dense.GradLogitScale, Float64, $"dL/dt' ({where})");
            AssertClose.Scalar(ring.GradBias, dense.GradLogitBias, Float64, $"dL/db ({where})");
            return true;
        }, exchange == SigmoidExchange.Ring ? 20260310UL : 20260311UL, output, maxTest: 60);
    }

    [Theory]
    [InlineData(SigmoidExchange.Ring)]
    [InlineData(SigmoidExchange.AllGather)]
    public void Float32_equals_the_dense_float32_loss(SigmoidExchange exchange)
    {
        // float32 against float32 dense (same kernels, other sum order). Reordering sums of <= n = 12
        // terms moves a float32 result by <= ~n u (u = 6e-8) of the terms' size, 7e-7: 1e-5 of the
        // loss, and of the largest gradient element, leaves a margin of over 10.
        const int n = 12, d = 5;
        var images = LossCase.Embeddings(n, d, 3).Select(v => (float)v).ToArray();
        var texts = LossCase.Embeddings(n, d, 4).Select(v => (float)v).ToArray();
        var dense = SigmoidLoss.Compute(images, texts, n, d, 2f, -6f);
        foreach (int ranks in Sizes)
        {
            var ring = OnGroup(ranks, images, texts, n, d, 2f, -6f, exchange);
            string where = $"float32 {exchange} W={ranks}";
            AssertClose.Scalar(ring.Loss, dense.Loss, new Tolerance(0, 1e-5), $"loss ({where})");
            foreach (var (actual, expected, name) in new[] { (ring.GradImage, dense.GradImageEmbeds, "image"), (ring.GradText, dense.GradTextEmbeds, "text") })
                AssertClose.Array(actual.Select(v => (double)v).ToArray(), expected.Select(v => (double)v).ToArray(),
                    new Tolerance(1e-5 * expected.Max(MathF.Abs), 1e-5), $"dL/d {name}_embeds ({where})");
            AssertClose.Scalar(ring.GradScale, dense.GradLogitScale, new Tolerance(1e-5 * Math.Abs(dense.GradLogitScale), 1e-5), $"dL/dt' ({where})");
            AssertClose.Scalar(ring.GradBias, dense.GradLogitBias, new Tolerance(0, 1e-5), $"dL/db ({where})");
        }
    }

    [Fact]
    public void Each_rank_holds_n_over_W_squared_logits_on_the_ring_and_n_squared_over_W_with_all_gather()
    {
        const int n = 12, d = 3;
        var images = LossCase.Embeddings(n, d, 7);
        var texts = LossCase.Embeddings(n, d, 8);
        foreach (int ranks in Sizes)
        {
            int c = n / ranks;
            var ring = OnGroup(ranks, images, texts, n, d, 1.0, -5.0, SigmoidExchange.Ring);
            var gather = OnGroup(ranks, images, texts, n, d, 1.0, -5.0, SigmoidExchange.AllGather);
            output.WriteLine($"n={n} W={ranks}: ring {ring.Held[0]} logits per rank, all-gather {gather.Held[0]}");
            Assert.All(ring.Held, h => Assert.Equal((long)c * c, h));           // (n/W)^2
            Assert.All(gather.Held, h => Assert.Equal((long)n * n / ranks, h)); // n n / W
            Assert.Equal((long)c * c, RingSigmoidLoss.LogitsPerRank(n, ranks));
            Assert.Equal((long)n * n / ranks, AllGatherSigmoidLoss.LogitsPerRank(n, ranks));
        }
    }

    [Fact]
    public void Bad_input_gives_a_clear_message_on_every_rank()
    {
        var notDividing = Assert.Throws<ArgumentException>(() => RingSigmoidLoss.RowsOf(10, 4, 0));
        Assert.Contains("W = 4 ranks do not divide the global batch n = 10", notDividing.Message);
        Assert.Contains("1, 2, 5, 10", notDividing.Message);

        // Rank 1 holds 2 rows, the others 1: every rank throws, rank 1 saying why.
        var messages = new string[3];
        var e = Assert.Throws<RankFailedException>(() => InProcessGroup.Run(3, comm =>
        {
            int c = comm.Rank == 1 ? 2 : 1;
            try
            {
                RingSigmoidLoss.Compute(comm, LossCase.Embeddings(c, 2, 1), LossCase.Embeddings(c, 2, 2), c, 2, 1.0, -5.0);
            }
            catch (ArgumentException ex)
            {
                messages[comm.Rank] = ex.Message;
                throw;
            }
        }));
        Assert.All(messages, m => Assert.NotNull(m));
        Assert.Contains("rank 1 of 3: rows c = 2 but rank 0 has 1", messages[1]);
        Assert.Contains("bad input on rank(s) 1 of 3", messages[0]);
        Assert.IsType<ArgumentException>(e.InnerException);

        // A NaN on rank 2 only.
        var nan = Assert.Throws<RankFailedException>(() => InProcessGroup.Run(3, comm =>
        {
            var images = LossCase.Embeddings(2, 2, 1);
            if (comm.Rank == 2) images[1] = double.NaN;
            RingSigmoidLoss.Compute(comm, images, LossCase.Embeddings(2, 2, 2), 2, 2, 1.0, -5.0);
        }));
        Assert.Contains("2 of 3", nan.InnerException!.Message);   // "rank 2 of 3: ..." or "bad input on rank(s) 2 of 3", whichever rank threw first
    }
}
