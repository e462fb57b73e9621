using FsCheck;
using FsCheck.Fluent;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.TorchSharp;

/// <summary>The torch backend's pairwise losses: against HF, against an independent float64 computation, and
/// their autograd gradients against central finite differences.</summary>
public sealed class TorchLossTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void Sigmoid_loss_of_HF_pooler_outputs_matches_HF()
    {
        using var backend = TorchCpu.Start(output, "float64");
        var f = TinyFixture.Instance;
        var r = backend.Loss(f.Expected[OutputNames.VisionPoolerOutput], f.Expected[OutputNames.TextPoolerOutput],
            f.Parameters["logit_scale"].Data[0], f.Parameters["logit_bias"].Data[0], LossOptions.Default);
        AssertClose.Scalar(r.Loss, f.Expected[OutputNames.Loss].Data[0], Tolerance.Float64, "loss");
        AssertClose.Tensor(r.LogitsPerImage!, f.Expected[OutputNames.LogitsPerImage], Tolerance.Float64, "logits_per_image");
        AssertClose.Scalar(r.GradLogitScale, f.Expected["grad.logit_scale"].Data[0], Tolerance.Float64, "grad.logit_scale");
        AssertClose.Scalar(r.GradLogitBias, f.Expected["grad.logit_bias"].Data[0], Tolerance.Float64, "grad.logit_bias");
    }

    [SkippableTheory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(6)]
    public void Chunked_sigmoid_loss_equals_the_dense_loss(int chunks)
    {
        using var backend = TorchCpu.Start(output, "float64");
        var (x, y) = (Random(6, 5, 1), Random(6, 5, 2));
        var dense = backend.Loss(x, y, 1.3, -4.0, new LossOptions(Chunks: 1));
        var chunked = backend.Loss(x, y, 1.3, -4.0, new LossOptions(Chunks: chunks));
        var tight = new Tolerance(1e-14, 1e-12);
        AssertClose.Scalar(chunked.Loss, dense.Loss, tight, "loss");
        AssertClose.Tensor(chunked.GradImageEmbeds, dense.GradImageEmbeds, tight, "d image");
        AssertClose.Tensor(chunked.GradTextEmbeds, dense.GradTextEmbeds, tight, "d text");
        AssertClose.Scalar(chunked.GradLogitScale, dense.GradLogitScale, tight, "d t'");
        AssertClose.Scalar(chunked.GradLogitBias, dense.GradLogitBias, tight, "d b");
    }

    [SkippableFact]
    public void Chunks_that_do_not_divide_the_batch_are_refused()
    {
        using var backend = TorchCpu.Start(output, "float64");
        var e = Assert.Throws<ArgumentException>(() => backend.Loss(Random(5, 3, 1), Random(5, 3, 2), 0, 0, new LossOptions(Chunks: 2)));
        Assert.Contains("not divisible", e.Message);
    }

    [SkippableTheory]
    [InlineData(LossKind.Sigmoid, 0.0)]
    [InlineData(LossKind.Sigmoid, 1e-8)]
    [InlineData(LossKind.Softmax, 0.0)]
    public void Loss_value_matches_an_independent_float64_computation(LossKind kind, double epsilon)
    {
        using var backend = TorchCpu.Start(output, "float64");
        var (x, y) = (Random(5, 4, 3), Random(5, 4, 4));
        var r = backend.Loss(x, y, 0.7, -2.5, new LossOptions(kind, NormEpsilon: epsilon));
        AssertClose.Scalar(r.Loss, ManagedLoss(x, y, 0.7, -2.5, kind, epsilon), new Tolerance(1e-13, 1e-12), "loss");
        if (kind == LossKind.Softmax) Assert.Equal(0.0, r.GradLogitBias);
    }

    [SkippableFact]
    public void Gradients_match_central_finite_differences()
    {
        using var backend = TorchCpu.Start(output, "float64");
        var gen =
            from n in Gen.Choose(1, 4)
            from d in Gen.Choose(1, 4)
            from chunks in Gen.Elements(1, n)
            from kind in Gen.Elements(LossKind.Sigmoid, LossKind.Softmax)
            from seed in Gen.Choose(0, 100000)
            from scale in Gen.Choose(-10, 25).Select(v => v / 10.0)
            from bias in Gen.Choose(-100, 20).Select(v => v / 10.0)
            select (n, d, chunks: kind == LossKind.Softmax ? 1 : chunks, kind, seed, scale, bias); // softmax: D = 1 only
        Props.Check(gen, c =>
        {
            var options = new LossOptions(c.kind, c.chunks, NormEpsilon: 1e-3);
            var (x, y) = (Random(c.n, c.d, c.seed), Random(c.n, c.d, c.seed + 1));
            var r = backend.Loss(x, y, c.scale, c.bias, options);
            double L(Tensor xs, Tensor ys, double s, double b) => backend.Loss(xs, ys, s, b, options).Loss;
            var tolerance = new Tolerance(1e-7, 1e-6);
            const double h = 1e-5;
            for (int i = 0; i < x.Size; i++)
            {
                var (p, m) = (x.Clone(), x.Clone());
                p.Data[i] += h; m.Data[i] -= h;
                AssertClose.Scalar(r.GradImageEmbeds.Data[i], (L(p, y, c.scale, c.bias) - L(m, y, c.scale, c.bias)) / (2 * h), tolerance, $"d image[{i}] {c}");
                (p, m) = (y.Clone(), y.Clone());
                p.Data[i] += h; m.Data[i] -= h;
                AssertClose.Scalar(r.GradTextEmbeds.Data[i], (L(x, p, c.scale, c.bias) - L(x, m, c.scale, c.bias)) / (2 * h), tolerance, $"d text[{i}] {c}");
            }
            AssertClose.Scalar(r.GradLogitScale, (L(x, y, c.scale + h, c.bias) - L(x, y, c.scale - h, c.bias)) / (2 * h), tolerance, $"d t' {c}");
            AssertClose.Scalar(r.GradLogitBias, (L(x, y, c.scale, c.bias + h) - L(x, y, c.scale, c.bias - h)) / (2 * h), tolerance, $"d b {c}");
            return true;
        }, seed: 20261127, output, maxTest: 25);
    }

    /// <summary>The loss by the formulas of siglip-numerics.md, in plain loops.</summary>
    private static double ManagedLoss(Tensor x, Tensor y, double logitScale, double logitBias, LossKind kind, double epsilon)
    {
        int n = x.Shape[0], d = x.Shape[1];
        double[] Row(Tensor t, int i)
        {
            var row = t.Data.Skip(i * d).Take(d).ToArray();
            double norm = Math.Sqrt(row.Sum(v => v * v)) + epsilon;
            return row.Select(v => v / norm).ToArray();
        }
        var logits = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                logits[i, j] = Math.Exp(logitScale) * Row(x, i).Zip(Row(y, j), (a, b) => a * b).Sum() + (kind == LossKind.Sigmoid ? logitBias : 0);
        if (kind == LossKind.Sigmoid)
        {
            static double LogSigmoid(double u) => Math.Min(u, 0) - Math.Log(1 + Math.Exp(-Math.Abs(u)));
            double sum = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) sum += LogSigmoid((i == j ? 1 : -1) * logits[i, j]);
            return -sum / n;
        }
        double rows = 0, cols = 0;
        for (int i = 0; i < n; i++)
        {
            rows += Math.Log(Enumerable.Range(0, n).Sum(j => Math.Exp(logits[i, j]))) - logits[i, i];
            cols += Math.Log(Enumerable.Range(0, n).Sum(j => Math.Exp(logits[j, i]))) - logits[i, i];
        }
        return (rows / n + cols / n) / 2;
    }

    private static Tensor Random(int n, int d, int seed)
    {
        var rng = new Random(seed);
        return new Tensor([n, d], Enumerable.Range(0, n * d).Select(_ => rng.NextDouble() * 2 - 1).ToArray());
    }
}
