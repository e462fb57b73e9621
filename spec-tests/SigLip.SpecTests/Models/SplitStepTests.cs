using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Distributed;
using SigLip.Reference.Loss;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using SigLip.SpecTests.TorchSharp;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Models;

/// <summary>
/// A training step split in three (encode, the loss by the caller, backward from the embedding
/// gradients) gives what ForwardBackward gives, on every backend that starts; and split over W ranks
/// of an in-process group with the ring loss, the summed gradients are those of the whole batch.
/// </summary>
public sealed class SplitStepTests(ITestOutputHelper output)
{
    public static TheoryData<string> Backends => ["reference", "managed-float64", "torch-float64"];

    private static readonly SiglipConfig Config =
        TinyModels.Config(vWidth: 6, vHeads: 2, vMlp: 5, vLayers: 2, channels: 2, patch: 2, grid: 2,
                          tWidth: 4, tHeads: 2, tMlp: 3, tLayers: 1, vocab: 9, positions: 4);

    private IBackend Start(string name) => name switch
    {
        "reference" => new ReferenceBackend(),
        "managed-float64" => new SigLip.Backends.Managed.ManagedBackendProvider().Start(new BackendOptions(DType.Float64, Threads: 1)),
        "torch-float64" => TorchCpu.Start(output, "float64"),
        _ => throw new ArgumentException(name),
    };

    // float64, every element: rtol 1e-12, plus an atol of 1e-12 of the largest gradient element of
    // the whole model. The atol is for elements that are (mathematically) sums cancelling to ~0,
    // e.g. the key bias, whose true gradient is 0 (softmax ignores a shift): they come out as
    // rounding noise of the terms, ~1e-16 of the large gradients, in either order of summation.
    private static void AssertSameGradients(NamedTensors actual, NamedTensors expected, string where)
    {
        Assert.Equal(expected.Keys, actual.Keys);
        double largest = expected.Values.Max(t => t.Data.Max(Math.Abs));
        var tolerance = new Tolerance(1e-12 * largest, 1e-12);
        foreach (var (name, e) in expected)
            AssertClose.Tensor(actual[name], e, tolerance, $"{name} ({where})");
    }

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void Encode_loss_and_backward_from_embeddings_give_the_gradients_of_forward_backward(string backendName)
    {
        using var backend = Start(backendName);
        foreach (var locked in new[] { LockedTowers.None, LockedTowers.Image, LockedTowers.Text })
        {
            var parameters = TinyModels.Parameters(Config, 11);
            var batch = TinyModels.Batch(Config, 5, 12);
            using var whole = backend.CreateModel(Config, parameters, locked);
            using var split = backend.CreateModel(Config, parameters, locked);
            for (int step = 0; step < 2; step++)  // twice: a reused workspace must give the same again
            {
                var expected = whole.ForwardBackward(batch, LossOptions.Default, collectOutputs: false);
                var encoded = split.EncodeForTraining(batch);
                Assert.Equal([5, Config.EmbedDim], encoded.ImageEmbeds.Shape);
                var loss = PairwiseLoss.Compute(encoded.ImageEmbeds, encoded.TextEmbeds, encoded.LogitScale, encoded.LogitBias);
                split.BackwardFromEmbeddings(loss.GradImageEmbeds, loss.GradTextEmbeds, loss.GradLogitScale, loss.GradLogitBias);
                string where = $"{backendName}, locked {locked}, step {step}";
                AssertClose.Scalar(loss.Loss, expected.Loss, new Tolerance(0, 1e-12), $"loss ({where})");
                AssertSameGradients(split.Gradients(), whole.Gradients(), where);
            }
            Assert.Throws<InvalidOperationException>(() => split.BackwardFromEmbeddings(Tensor.Zeros(5, Config.EmbedDim), Tensor.Zeros(5, Config.EmbedDim), 0, 0));
            split.EncodeForTraining(batch);
            var wrong = Assert.Throws<ArgumentException>(() => split.BackwardFromEmbeddings(Tensor.Zeros(4, Config.EmbedDim), Tensor.Zeros(5, Config.EmbedDim), 0, 0));
            Assert.Contains("[4, 6]", wrong.Message);
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Ranks_running_the_ring_and_summing_their_gradients_get_the_gradients_of_the_whole_batch(int ranks)
    {
        const int n = 6;
        var parameters = TinyModels.Parameters(Config, 21);
        var batch = TinyModels.Batch(Config, n, 22);
        using var backend = new ReferenceBackend();
        using var single = backend.CreateModel(Config, parameters);
        var expected = single.ForwardBackward(batch, LossOptions.Default, collectOutputs: false);
        var expectedGradients = single.Gradients();

        var perRank = InProcessGroup.Run(ranks, comm =>
        {
            using var model = backend.CreateModel(Config, parameters);
            var (start, c) = RingSigmoidLoss.RowsOf(n, comm.Size, comm.Rank);
            var encoded = model.EncodeForTraining(Rows(batch, start, c));
            var loss = RingSigmoidLoss.Compute(comm, encoded.ImageEmbeds, encoded.TextEmbeds, encoded.LogitScale, encoded.LogitBias);
            model.BackwardFromEmbeddings(loss.GradImageEmbeds, loss.GradTextEmbeds, loss.GradLogitScale, loss.GradLogitBias);
            var grads = model.Gradients();
            // The towers' gradients are sums over this rank's rows: all-reduce them. dL/dt' and dL/db
            // came from the ring already summed over every rank.
            foreach (var (name, g) in grads)
                if (name is not (ParameterLayout.LogitScale or ParameterLayout.LogitBias)) comm.AllReduceSum(g.Data);
            return (loss.Loss, grads);
        });
        foreach (var (rankLoss, grads) in perRank)
        {
            AssertClose.Scalar(rankLoss, expected.Loss, new Tolerance(0, 1e-12), $"loss (W={ranks})");
            AssertSameGradients(grads, expectedGradients, $"W={ranks}");
        }
    }

    private static SiglipBatch Rows(SiglipBatch batch, int start, int count)
    {
        int pixelsPerImage = batch.PixelValues.Size / batch.Size;
        var shape = batch.PixelValues.Shape.ToArray();
        shape[0] = count;
        var pixels = new Tensor(shape, batch.PixelValues.Data.AsSpan(start * pixelsPerImage, count * pixelsPerImage).ToArray());
        int length = batch.InputIds.Length;
        var ids = new TokenIds(count, length, batch.InputIds.Ids.AsSpan(start * length, count * length).ToArray());
        return new SiglipBatch(pixels, ids);
    }
}
