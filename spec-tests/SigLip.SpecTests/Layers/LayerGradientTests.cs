using FsCheck;
using FsCheck.Fluent;
using SigLip.Reference.Layers;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;
using static SigLip.SpecTests.Layers.GradCheck;

namespace SigLip.SpecTests.Layers;

/// <summary>
/// Every layer's backward (inputs and weights) against central finite differences, on random small
/// sizes and values (FsCheck, fixed reported seeds), and the forward values against independent
/// formulas. Gradient buffers start non-zero to check that backward accumulates. Each test runs on
/// every implementation of the primitive operations that can start here (<see cref="OpsUnderTest"/>:
/// the reference loops, the managed kernels and libtorch, float64; the forward values also on the
/// managed kernels in float32, at float32 tolerances); the composite layers get them through their
/// ops argument. Token and position embeddings and last-token pooling have no such operations and run
/// on the reference alone.
/// </summary>
public sealed class LayerGradientTests(ITestOutputHelper output)
{
    private static Gen<int> Seeds => Gen.Choose(0, int.MaxValue - 1);

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.Float64), MemberType = typeof(OpsUnderTest))]
    public void LinearBackwardMatchesFiniteDifferences(string backend)
    {
        var ops = OpsUnderTest.Get(backend, output);
        var gen = from rows in Gen.Choose(1, 4) from inF in Gen.Choose(1, 5) from outF in Gen.Choose(1, 5)
                  from withBias in Gen.Elements(true, false) from seed in Seeds select (rows, inF, outF, withBias, seed);
        Props.Check(gen, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            var x = Random(rng, c.rows * c.inF);
            var w = Random(rng, c.outF * c.inF);
            var b = c.withBias ? Random(rng, c.outF) : null;
            var up = Random(rng, c.rows * c.outF);
            double Loss() { var y = new double[c.rows * c.outF]; ops.LinearForward(y, x, w, b, c.rows, c.inF, c.outF); return Dot(y, up); }
            var dx = new Accumulator(rng, x.Length); var dw = new Accumulator(rng, w.Length); var db = new Accumulator(rng, c.outF);
            ops.LinearBackward(dx.Buffer, dw.Buffer, b is null ? null : db.Buffer, up, x, w, c.rows, c.inF, c.outF);
            Check("input", x, dx.Added, Loss);
            Check("weight", w, dw.Added, Loss);
            if (b is not null) Check("bias", b, db.Added, Loss);
            return true;
        }, seed: 101, output, maxTest: OpsUnderTest.Cases(backend, 30));
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.Float64), MemberType = typeof(OpsUnderTest))]
    public void LayerNormBackwardMatchesFiniteDifferences(string backend)
    {
        var ops = OpsUnderTest.Get(backend, output);
        var gen = from rows in Gen.Choose(1, 4) from width in Gen.Choose(2, 7)
                  from eps in Gen.Elements(1e-6, 1e-5, 0.1) from seed in Seeds select (rows, width, eps, seed);
        Props.Check(gen, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            var x = Random(rng, c.rows * c.width);
            var w = Random(rng, c.width); var b = Random(rng, c.width);
            var up = Random(rng, c.rows * c.width);
            double Loss()
            {
                var y = new double[x.Length];
                ops.LayerNormForward(y, new double[c.rows], new double[c.rows], x, w, b, c.rows, c.width, c.eps);
                return Dot(y, up);
            }
            var yy = new double[x.Length]; var mean = new double[c.rows]; var rstd = new double[c.rows];
            ops.LayerNormForward(yy, mean, rstd, x, w, b, c.rows, c.width, c.eps);
            var dx = new Accumulator(rng, x.Length); var dw = new Accumulator(rng, c.width); var db = new Accumulator(rng, c.width);
            ops.LayerNormBackward(dx.Buffer, dw.Buffer, db.Buffer, up, x, w, mean, rstd, c.rows, c.width);
            Check("input", x, dx.Added, Loss, OpsUnderTest.Elements(backend, rng, x.Length));
            Check("weight", w, dw.Added, Loss, OpsUnderTest.Elements(backend, rng, w.Length));
            Check("bias", b, db.Added, Loss, OpsUnderTest.Elements(backend, rng, b.Length));
            return true;
        }, seed: 102, output, maxTest: OpsUnderTest.Cases(backend, 30));
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.All), MemberType = typeof(OpsUnderTest))]
    public void LayerNormForwardNormalisesEachRow(string backend)
    {
        // With weight 1 and bias 0 each row has mean 0 and (biased) variance var / (var + eps); forward
        // saves the row's mean and 1 / sqrt(var + eps). With a weight and a bias, y = xhat * w + b.
        var ops = OpsUnderTest.Get(backend, output);
        var rng = new DeterministicRandom(7);
        int rows = 3, width = 5; double eps = 1e-6;
        var x = Random(rng, rows * width, 3.0);
        var y = new double[x.Length];
        var mean = new double[rows]; var rstd = new double[rows];
        ops.LayerNormForward(y, mean, rstd, x, Enumerable.Repeat(1.0, width).ToArray(), new double[width], rows, width, eps);
        var w = Random(rng, width); var b = Random(rng, width);
        var affine = new double[x.Length];
        ops.LayerNormForward(affine, new double[rows], new double[rows], x, w, b, rows, width, eps);
        var expectedAffine = new double[x.Length];
        for (int r = 0; r < rows; r++)
        {
            var row = x.Skip(r * width).Take(width).ToArray();
            double m = row.Average(), v = row.Select(t => (t - m) * (t - m)).Average();
            var outRow = y.Skip(r * width).Take(width).ToArray();
            AssertClose.Scalar(outRow.Average(), 0, OpsUnderTest.ForwardTolerance(backend, new Tolerance(1e-14, 0)), $"{backend}: row {r} mean");
            AssertClose.Scalar(outRow.Select(t => t * t).Average(), v / (v + eps), OpsUnderTest.ForwardTolerance(backend, new Tolerance(0, 1e-13)), $"{backend}: row {r} variance");
            AssertClose.Scalar(mean[r], m, OpsUnderTest.ForwardTolerance(backend, new Tolerance(1e-15, 1e-14)), $"{backend}: saved mean[{r}]");
            AssertClose.Scalar(rstd[r], 1 / Math.Sqrt(v + eps), OpsUnderTest.ForwardTolerance(backend, new Tolerance(0, 1e-14)), $"{backend}: saved rstd[{r}]");
            for (int c = 0; c < width; c++) expectedAffine[r * width + c] = (row[c] - m) / Math.Sqrt(v + eps) * w[c] + b[c];
        }
        AssertClose.Array(affine, expectedAffine, OpsUnderTest.ForwardTolerance(backend, new Tolerance(1e-14, 1e-13)), $"{backend}: layernorm(x) * w + b");
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.Float64), MemberType = typeof(OpsUnderTest))]
    public void GeluBackwardMatchesFiniteDifferences(string backend)
    {
        var ops = OpsUnderTest.Get(backend, output);
        var gen = from n in Gen.Choose(1, 12) from scale in Gen.Elements(0.1, 1.0, 4.0) from seed in Seeds select (n, scale, seed);
        Props.Check(gen, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            var x = Random(rng, c.n, c.scale);
            var up = Random(rng, c.n);
            double Loss() { var y = new double[c.n]; ops.GeluForward(y, x, c.n); return Dot(y, up); }
            var dx = new Accumulator(rng, c.n);
            ops.GeluBackward(dx.Buffer, up, x, c.n);
            Check("input", x, dx.Added, Loss);
            return true;
        }, seed: 103, output, maxTest: OpsUnderTest.Cases(backend, 30));
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.All), MemberType = typeof(OpsUnderTest))]
    public void GeluMatchesErfGeluClosely(string backend)
    {
        // The tanh form approximates x Phi(x) to within ~1e-3 (Hendrycks and Gimpel): an outside
        // check that the constants are right (a wrong constant moves it far more). gelu_tanh(1) is
        // 0.5 (1 + tanh(sqrt(2/pi) * 1.044715)), evaluated once at high precision.
        var ops = OpsUnderTest.Get(backend, output);
        var xs = Enumerable.Range(-40, 81).Select(i => i / 10.0).ToArray();
        var y = new double[xs.Length];
        ops.GeluForward(y, xs, xs.Length);
        var erfGelu = xs.Select(x => x * MathNet.Numerics.Distributions.Normal.CDF(0, 1, x)).ToArray();
        AssertClose.Array(y, erfGelu, new Tolerance(1e-3, 0), $"{backend}: gelu_tanh(x) against x Phi(x), x = -4..4 step 0.1");
        AssertClose.Scalar(y[Array.IndexOf(xs, 1.0)], 0.8411919906082768, OpsUnderTest.ForwardTolerance(backend, new Tolerance(1e-15, 0)), $"{backend}: gelu_tanh(1)");
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.All), MemberType = typeof(OpsUnderTest))]
    public void GeluEqualsTheTanhFormulaElementByElement(string backend)
    {
        // y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), HF's gelu_pytorch_tanh, written out here
        // from the formula (not from the layer): on a grid over [-6, 6] and at a few large and tiny inputs.
        var ops = OpsUnderTest.Get(backend, output);
        var xs = Enumerable.Range(-120, 241).Select(i => i / 20.0).Concat([-30.0, -10.0, 10.0, 30.0, 1e-8, -1e-8, 1e-300]).ToArray();
        var y = new double[xs.Length];
        ops.GeluForward(y, xs, xs.Length);
        var expected = xs.Select(x => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)))).ToArray();
        AssertClose.Array(y, expected, OpsUnderTest.ForwardTolerance(backend, new Tolerance(1e-15, 1e-14)), $"{backend}: gelu_tanh(x)");
    }

    private static Gen<(int batch, int nq, int nk, int heads, int headDim, int seed)> AttentionSizes =>
        from batch in Gen.Choose(1, 3) from nq in Gen.Choose(1, 4) from nk in Gen.Choose(1, 4)
        from heads in Gen.Choose(1, 3) from headDim in Gen.Choose(1, 4) from seed in Seeds
        select (batch, nq, nk, heads, headDim, seed);

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.Float64), MemberType = typeof(OpsUnderTest))]
    public void AttentionCoreBackwardMatchesFiniteDifferences(string backend)
    {
        var ops = OpsUnderTest.Get(backend, output);
        Props.Check(AttentionSizes, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            int h = c.heads * c.headDim;
            var q = Random(rng, c.batch * c.nq * h); var k = Random(rng, c.batch * c.nk * h); var v = Random(rng, c.batch * c.nk * h);
            var up = Random(rng, c.batch * c.nq * h);
            var probs = new double[c.batch * c.heads * c.nq * c.nk];
            double Loss() { var y = new double[up.Length]; ops.AttentionForward(y, new double[probs.Length], q, k, v, c.batch, c.nq, c.nk, c.heads, c.headDim); return Dot(y, up); }
            ops.AttentionForward(new double[up.Length], probs, q, k, v, c.batch, c.nq, c.nk, c.heads, c.headDim);
            var dq = new Accumulator(rng, q.Length); var dk = new Accumulator(rng, k.Length); var dv = new Accumulator(rng, v.Length);
            ops.AttentionBackward(dq.Buffer, dk.Buffer, dv.Buffer, up, probs, q, k, v, c.batch, c.nq, c.nk, c.heads, c.headDim);
            Check("query", q, dq.Added, Loss, OpsUnderTest.Elements(backend, rng, q.Length));
            Check("key", k, dk.Added, Loss, OpsUnderTest.Elements(backend, rng, k.Length));
            Check("value", v, dv.Added, Loss, OpsUnderTest.Elements(backend, rng, v.Length));
            return true;
        }, seed: 104, output, maxTest: OpsUnderTest.Cases(backend, 30));
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.All), MemberType = typeof(OpsUnderTest))]
    public void AttentionForwardMatchesAPerHeadComputation(string backend)
    {
        // Independent form: for each head, slice out [N, D] matrices and do softmax(Q K^T / sqrt D) V with MathNet.
        // Forward also saves the probabilities [B, NH, Nq, Nk].
        var ops = OpsUnderTest.Get(backend, output);
        var rng = new DeterministicRandom(11);
        int batch = 2, nq = 3, nk = 5, heads = 3, d = 2, h = heads * d;
        var q = Random(rng, batch * nq * h); var k = Random(rng, batch * nk * h); var v = Random(rng, batch * nk * h);
        var y = new double[batch * nq * h];
        var probs = new double[batch * heads * nq * nk];
        ops.AttentionForward(y, probs, q, k, v, batch, nq, nk, heads, d);
        var expectedOut = new double[y.Length];
        var expectedProbs = new double[probs.Length];
        var M = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build;
        for (int b = 0; b < batch; b++)
        for (int hh = 0; hh < heads; hh++)
        {
            var Q = M.Dense(nq, d, (i, j) => q[(b * nq + i) * h + hh * d + j]);
            var K = M.Dense(nk, d, (i, j) => k[(b * nk + i) * h + hh * d + j]);
            var V = M.Dense(nk, d, (i, j) => v[(b * nk + i) * h + hh * d + j]);
            var S = Q * K.Transpose() / Math.Sqrt(d);
            var P = M.Dense(nq, nk, (i, j) => Math.Exp(S[i, j]) / S.Row(i).Select(Math.Exp).Sum());
            var O = P * V;
            for (int i = 0; i < nq; i++)
            {
                for (int j = 0; j < d; j++) expectedOut[(b * nq + i) * h + hh * d + j] = O[i, j];
                for (int j = 0; j < nk; j++) expectedProbs[((b * heads + hh) * nq + i) * nk + j] = P[i, j];
            }
        }
        AssertClose.Array(y, expectedOut, OpsUnderTest.ForwardTolerance(backend, new Tolerance(1e-14, 1e-13)), $"{backend}: attention out [B, Nq, H]");
        AssertClose.Array(probs, expectedProbs, OpsUnderTest.ForwardTolerance(backend, new Tolerance(1e-15, 1e-13)), $"{backend}: saved probs [B, NH, Nq, Nk]");
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.All), MemberType = typeof(OpsUnderTest))]
    public void LinearForwardIsInputTimesWeightTransposedPlusBias(string backend)
    {
        // y = x W^T + b with MathNet, with and without a bias, on a size where the managed kernels block and split.
        var ops = OpsUnderTest.Get(backend, output);
        var rng = new DeterministicRandom(13);
        int rows = 37, inF = 29, outF = 23;
        var x = Random(rng, rows * inF); var w = Random(rng, outF * inF); var b = Random(rng, outF);
        var M = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build;
        var X = M.Dense(rows, inF, (r, i) => x[r * inF + i]);
        var W = M.Dense(outF, inF, (o, i) => w[o * inF + i]);
        var XWt = X * W.Transpose();
        var expected = new double[rows * outF];
        var expectedNoBias = new double[rows * outF];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                expectedNoBias[r * outF + o] = XWt[r, o];
                expected[r * outF + o] = XWt[r, o] + b[o];
            }
        // Sums of 29 products of N(0, 1) values: float64 roundoff ~29 * 1e-16 * |terms|, far below 1e-13.
        var tolerance = OpsUnderTest.ForwardTolerance(backend, new Tolerance(1e-13, 1e-13));
        var y = Enumerable.Repeat(double.NaN, rows * outF).ToArray(); // overwritten, whatever was there
        ops.LinearForward(y, x, w, b, rows, inF, outF);
        AssertClose.Array(y, expected, tolerance, $"{backend}: x W^T + b");
        y = Enumerable.Repeat(double.NaN, rows * outF).ToArray();
        ops.LinearForward(y, x, w, null, rows, inF, outF);
        AssertClose.Array(y, expectedNoBias, tolerance, $"{backend}: x W^T (no bias)");
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.Float64), MemberType = typeof(OpsUnderTest))]
    public void SelfAttentionBackwardMatchesFiniteDifferences(string backend)
    {
        var ops = OpsUnderTest.Get(backend, output);
        var gen = from batch in Gen.Choose(1, 2) from tokens in Gen.Choose(1, 4) from heads in Gen.Choose(1, 3)
                  from headDim in Gen.Choose(1, 3) from seed in Seeds select (batch, tokens, heads, headDim, seed);
        Props.Check(gen, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            int h = c.heads * c.headDim, rows = c.batch * c.tokens;
            var x = Random(rng, rows * h);
            var w = new AttentionWeights(Random(rng, h * h), Random(rng, h), Random(rng, h * h), Random(rng, h),
                                         Random(rng, h * h), Random(rng, h), Random(rng, h * h), Random(rng, h));
            var up = Random(rng, rows * h);
            double Loss() { var y = new double[rows * h]; SelfAttention.Forward(y, new SelfAttentionSaved(c.batch, c.tokens, h, c.heads), x, w, c.batch, c.tokens, h, c.heads, ops); return Dot(y, up); }
            var saved = new SelfAttentionSaved(c.batch, c.tokens, h, c.heads);
            SelfAttention.Forward(new double[rows * h], saved, x, w, c.batch, c.tokens, h, c.heads, ops);
            var dx = new Accumulator(rng, x.Length);
            var g = AttentionWeights.Zeros(h);
            SelfAttention.Backward(dx.Buffer, g, up, saved, x, w, c.batch, c.tokens, h, c.heads, ops);
            Check("input", x, dx.Added, Loss, OpsUnderTest.Elements(backend, rng, x.Length));
            Check("q_proj.weight", w.QueryWeight, g.QueryWeight, Loss, OpsUnderTest.Elements(backend, rng, w.QueryWeight.Length)); Check("q_proj.bias", w.QueryBias, g.QueryBias, Loss, OpsUnderTest.Elements(backend, rng, w.QueryBias.Length));
            Check("k_proj.weight", w.KeyWeight, g.KeyWeight, Loss, OpsUnderTest.Elements(backend, rng, w.KeyWeight.Length)); Check("k_proj.bias", w.KeyBias, g.KeyBias, Loss, OpsUnderTest.Elements(backend, rng, w.KeyBias.Length));
            Check("v_proj.weight", w.ValueWeight, g.ValueWeight, Loss, OpsUnderTest.Elements(backend, rng, w.ValueWeight.Length)); Check("v_proj.bias", w.ValueBias, g.ValueBias, Loss, OpsUnderTest.Elements(backend, rng, w.ValueBias.Length));
            Check("out_proj.weight", w.OutWeight, g.OutWeight, Loss, OpsUnderTest.Elements(backend, rng, w.OutWeight.Length)); Check("out_proj.bias", w.OutBias, g.OutBias, Loss, OpsUnderTest.Elements(backend, rng, w.OutBias.Length));
            return true;
        }, seed: 105, output, maxTest: OpsUnderTest.Cases(backend, 20));
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.Float64), MemberType = typeof(OpsUnderTest))]
    public void MlpBackwardMatchesFiniteDifferences(string backend)
    {
        var ops = OpsUnderTest.Get(backend, output);
        var gen = from rows in Gen.Choose(1, 4) from width in Gen.Choose(1, 5) from inter in Gen.Choose(1, 6)
                  from seed in Seeds select (rows, width, inter, seed);
        Props.Check(gen, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            var x = Random(rng, c.rows * c.width);
            var w = new MlpWeights(Random(rng, c.inter * c.width), Random(rng, c.inter), Random(rng, c.width * c.inter), Random(rng, c.width));
            var up = Random(rng, c.rows * c.width);
            double Loss() { var y = new double[up.Length]; Mlp.Forward(y, new MlpSaved(c.rows, c.inter), x, w, c.rows, c.width, c.inter, ops); return Dot(y, up); }
            var saved = new MlpSaved(c.rows, c.inter);
            Mlp.Forward(new double[up.Length], saved, x, w, c.rows, c.width, c.inter, ops);
            var dx = new Accumulator(rng, x.Length);
            var g = MlpWeights.Zeros(c.width, c.inter);
            Mlp.Backward(dx.Buffer, g, up, saved, x, w, c.rows, c.width, c.inter, ops);
            Check("input", x, dx.Added, Loss);
            Check("fc1.weight", w.Fc1Weight, g.Fc1Weight, Loss); Check("fc1.bias", w.Fc1Bias, g.Fc1Bias, Loss);
            Check("fc2.weight", w.Fc2Weight, g.Fc2Weight, Loss); Check("fc2.bias", w.Fc2Bias, g.Fc2Bias, Loss);
            return true;
        }, seed: 106, output, maxTest: OpsUnderTest.Cases(backend, 30));
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.Float64), MemberType = typeof(OpsUnderTest))]
    public void PatchEmbeddingBackwardMatchesFiniteDifferences(string backend)
    {
        var ops = OpsUnderTest.Get(backend, output);
        var gen = from batch in Gen.Choose(1, 2) from channels in Gen.Choose(1, 3) from patch in Gen.Choose(1, 3)
                  from grid in Gen.Choose(1, 3) from width in Gen.Choose(1, 4) from seed in Seeds
                  select (batch, channels, patch, size: patch * grid, width, seed);
        Props.Check(gen, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            int n = (c.size / c.patch) * (c.size / c.patch), k = c.channels * c.patch * c.patch;
            var px = Random(rng, c.batch * c.channels * c.size * c.size);
            var w = Random(rng, c.width * k); var b = Random(rng, c.width);
            var up = Random(rng, c.batch * n * c.width);
            double Loss() { var y = new double[up.Length]; PatchEmbedding.Forward(y, new double[c.batch * n * k], px, w, b, c.batch, c.channels, c.size, c.patch, c.width, ops); return Dot(y, up); }
            var patches = new double[c.batch * n * k];
            PatchEmbedding.Forward(new double[up.Length], patches, px, w, b, c.batch, c.channels, c.size, c.patch, c.width, ops);
            var dpx = new Accumulator(rng, px.Length); var dw = new Accumulator(rng, w.Length); var db = new Accumulator(rng, b.Length);
            PatchEmbedding.Backward(dpx.Buffer, dw.Buffer, db.Buffer, up, patches, w, c.batch, c.channels, c.size, c.patch, c.width, ops);
            Check("pixels", px, dpx.Added, Loss);
            Check("weight", w, dw.Added, Loss);
            Check("bias", b, db.Added, Loss);
            return true;
        }, seed: 107, output, maxTest: OpsUnderTest.Cases(backend, 30));
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.All), MemberType = typeof(OpsUnderTest))]
    public void PatchEmbeddingEqualsAStrideConvolutionFlattenedRowMajor(string backend)
    {
        var ops = OpsUnderTest.Get(backend, output);
        // Direct Conv2d(kernel = stride = P) then flatten(2).transpose(1, 2), written independently.
        var rng = new DeterministicRandom(12);
        int batch = 2, ch = 3, p = 2, size = 6, width = 4, g = size / p;
        var px = Random(rng, batch * ch * size * size); var w = Random(rng, width * ch * p * p); var b = Random(rng, width);
        var y = new double[batch * g * g * width];
        var expected = new double[y.Length];
        PatchEmbedding.Forward(y, new double[batch * g * g * ch * p * p], px, w, b, batch, ch, size, p, width, ops);
        for (int bb = 0; bb < batch; bb++)
        for (int o = 0; o < width; o++)
        for (int oy = 0; oy < g; oy++)
        for (int ox = 0; ox < g; ox++)
        {
            double conv = b[o];
            for (int c = 0; c < ch; c++)
                for (int ky = 0; ky < p; ky++)
                    for (int kx = 0; kx < p; kx++)
                        conv += w[((o * ch + c) * p + ky) * p + kx] * px[((bb * ch + c) * size + oy * p + ky) * size + ox * p + kx];
            int token = oy * g + ox; // flatten(2) of [B, H, G, G]: row-major over the grid
            expected[(bb * g * g + token) * width + o] = conv;
        }
        AssertClose.Array(y, expected, OpsUnderTest.ForwardTolerance(backend, new Tolerance(1e-14, 1e-13)), $"{backend}: patch embedding out [B, N, H]");
    }

    [Fact]
    public void EmbeddingsAndPoolingBackwardMatchFiniteDifferences()
    {
        var gen = from batch in Gen.Choose(1, 3) from len in Gen.Choose(1, 4) from extra in Gen.Choose(0, 2)
                  from vocab in Gen.Choose(1, 5) from width in Gen.Choose(1, 4) from seed in Seeds
                  select (batch, len, extra, vocab, width, seed);
        Props.Check(gen, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            int rows = c.batch * c.len;
            var ids = Enumerable.Range(0, rows).Select(_ => rng.NextInt(c.vocab)).ToArray(); // repeats likely: accumulation
            var tokens = Random(rng, c.vocab * c.width);
            var positions = Random(rng, (c.len + c.extra) * c.width);
            var upSeq = Random(rng, rows * c.width);
            var upPooled = Random(rng, c.batch * c.width);
            // L = <tok[ids] + pos, upSeq> + <last token of (tok[ids] + pos), upPooled>
            double Loss()
            {
                var e = new double[rows * c.width];
                TokenEmbedding.Forward(e, ids, tokens, c.batch, c.len, c.width);
                var x = new double[e.Length];
                PositionEmbedding.Forward(x, e, positions, c.batch, c.len, c.width);
                var pooled = new double[c.batch * c.width];
                LastTokenPooling.Forward(pooled, x, c.batch, c.len, c.width);
                return Dot(x, upSeq) + Dot(pooled, upPooled);
            }
            var dx = (double[])upSeq.Clone();
            LastTokenPooling.Backward(dx, upPooled, c.batch, c.len, c.width);
            var de = new Accumulator(rng, rows * c.width); var dpos = new Accumulator(rng, positions.Length); var dtok = new Accumulator(rng, tokens.Length);
            PositionEmbedding.Backward(de.Buffer, dpos.Buffer, dx, c.batch, c.len, c.width);
            TokenEmbedding.Backward(dtok.Buffer, de.Added, ids, c.batch, c.len, c.width);
            Check("token table", tokens, dtok.Added, Loss);
            Check("position table", positions, dpos.Added, Loss);
            return true;
        }, seed: 108, output, maxTest: 30);
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.Float64), MemberType = typeof(OpsUnderTest))]
    public void EncoderLayerBackwardMatchesFiniteDifferences(string backend)
    {
        var ops = OpsUnderTest.Get(backend, output);
        var gen = from batch in Gen.Choose(1, 2) from tokens in Gen.Choose(1, 3) from heads in Gen.Choose(1, 3)
                  from headDim in Gen.Choose(1, 3) from inter in Gen.Choose(1, 5) from seed in Seeds
                  select (batch, tokens, heads, headDim, inter, seed);
        Props.Check(gen, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            int h = c.heads * c.headDim, rows = c.batch * c.tokens; double eps = 1e-6;
            var x = Random(rng, rows * h);
            var w = RandomLayer(rng, h, c.inter);
            var up = Random(rng, rows * h);
            double Loss()
            {
                var s = new EncoderLayerSaved(c.batch, c.tokens, h, c.heads, c.inter);
                EncoderLayer.Forward(s, x, w, c.batch, c.tokens, h, c.heads, c.inter, eps, ops);
                return Dot(s.Output, up);
            }
            var saved = new EncoderLayerSaved(c.batch, c.tokens, h, c.heads, c.inter);
            EncoderLayer.Forward(saved, x, w, c.batch, c.tokens, h, c.heads, c.inter, eps, ops);
            var dx = new Accumulator(rng, x.Length);
            var g = new EncoderLayerWeights(new NormWeights(new double[h], new double[h]), AttentionWeights.Zeros(h),
                                            new NormWeights(new double[h], new double[h]), MlpWeights.Zeros(h, c.inter));
            EncoderLayer.Backward(dx.Buffer, g, up, saved, x, w, c.batch, c.tokens, h, c.heads, c.inter, ops);
            Check("input", x, dx.Added, Loss, OpsUnderTest.Elements(backend, rng, x.Length));
            foreach (var (name, p, d) in Flatten(w, g)) Check(name, p, d, Loss, OpsUnderTest.Elements(backend, rng, p.Length));
            return true;
        }, seed: 109, output, maxTest: OpsUnderTest.Cases(backend, 15));
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.Float64), MemberType = typeof(OpsUnderTest))]
    public void MapHeadBackwardMatchesFiniteDifferences(string backend)
    {
        var ops = OpsUnderTest.Get(backend, output);
        var gen = from batch in Gen.Choose(1, 3) from tokens in Gen.Choose(1, 4) from heads in Gen.Choose(1, 3)
                  from headDim in Gen.Choose(1, 3) from inter in Gen.Choose(1, 5) from seed in Seeds
                  select (batch, tokens, heads, headDim, inter, seed);
        Props.Check(gen, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            int h = c.heads * c.headDim; double eps = 1e-6;
            var x = Random(rng, c.batch * c.tokens * h);
            var w = new MapHeadWeights(Random(rng, h), Random(rng, 3 * h * h), Random(rng, 3 * h), Random(rng, h * h), Random(rng, h),
                new NormWeights(Random(rng, h), Random(rng, h)),
                new MlpWeights(Random(rng, c.inter * h), Random(rng, c.inter), Random(rng, h * c.inter), Random(rng, h)));
            var up = Random(rng, c.batch * h);
            double Loss()
            {
                var y = new double[c.batch * h];
                MapHead.Forward(y, new MapHeadSaved(c.batch, c.tokens, h, c.heads, c.inter), x, w, c.batch, c.tokens, h, c.heads, c.inter, eps, ops);
                return Dot(y, up);
            }
            var saved = new MapHeadSaved(c.batch, c.tokens, h, c.heads, c.inter);
            MapHead.Forward(new double[c.batch * h], saved, x, w, c.batch, c.tokens, h, c.heads, c.inter, eps, ops);
            var dx = new Accumulator(rng, x.Length);
            var g = new MapHeadWeights(new double[h], new double[3 * h * h], new double[3 * h], new double[h * h], new double[h],
                new NormWeights(new double[h], new double[h]), MlpWeights.Zeros(h, c.inter));
            MapHead.Backward(dx.Buffer, g, up, saved, x, w, c.batch, c.tokens, h, c.heads, c.inter, ops);
            Check("input", x, dx.Added, Loss, OpsUnderTest.Elements(backend, rng, x.Length));
            Check("probe", w.Probe, g.Probe, Loss, OpsUnderTest.Elements(backend, rng, w.Probe.Length));
            Check("in_proj_weight", w.InProjWeight, g.InProjWeight, Loss, OpsUnderTest.Elements(backend, rng, w.InProjWeight.Length));
            Check("in_proj_bias", w.InProjBias, g.InProjBias, Loss, OpsUnderTest.Elements(backend, rng, w.InProjBias.Length));
            Check("out_proj.weight", w.OutWeight, g.OutWeight, Loss, OpsUnderTest.Elements(backend, rng, w.OutWeight.Length));
            Check("out_proj.bias", w.OutBias, g.OutBias, Loss, OpsUnderTest.Elements(backend, rng, w.OutBias.Length));
            Check("layernorm.weight", w.Norm.Weight, g.Norm.Weight, Loss, OpsUnderTest.Elements(backend, rng, w.Norm.Weight.Length));
            Check("layernorm.bias", w.Norm.Bias, g.Norm.Bias, Loss, OpsUnderTest.Elements(backend, rng, w.Norm.Bias.Length));
            Check("mlp.fc1.weight", w.Mlp.Fc1Weight, g.Mlp.Fc1Weight, Loss, OpsUnderTest.Elements(backend, rng, w.Mlp.Fc1Weight.Length));
            Check("mlp.fc1.bias", w.Mlp.Fc1Bias, g.Mlp.Fc1Bias, Loss, OpsUnderTest.Elements(backend, rng, w.Mlp.Fc1Bias.Length));
            Check("mlp.fc2.weight", w.Mlp.Fc2Weight, g.Mlp.Fc2Weight, Loss, OpsUnderTest.Elements(backend, rng, w.Mlp.Fc2Weight.Length));
            Check("mlp.fc2.bias", w.Mlp.Fc2Bias, g.Mlp.Fc2Bias, Loss, OpsUnderTest.Elements(backend, rng, w.Mlp.Fc2Bias.Length));
            return true;
        }, seed: 110, output, maxTest: OpsUnderTest.Cases(backend, 20));
    }

    private static EncoderLayerWeights RandomLayer(DeterministicRandom rng, int h, int inter) => new(
        new NormWeights(Random(rng, h), Random(rng, h)),
        new AttentionWeights(Random(rng, h * h), Random(rng, h), Random(rng, h * h), Random(rng, h),
                             Random(rng, h * h), Random(rng, h), Random(rng, h * h), Random(rng, h)),
        new NormWeights(Random(rng, h), Random(rng, h)),
        new MlpWeights(Random(rng, inter * h), Random(rng, inter), Random(rng, h * inter), Random(rng, h)));

    private static IEnumerable<(string, double[], double[])> Flatten(EncoderLayerWeights w, EncoderLayerWeights g) =>
    [
        ("layer_norm1.weight", w.Norm1.Weight, g.Norm1.Weight), ("layer_norm1.bias", w.Norm1.Bias, g.Norm1.Bias),
        ("q_proj.weight", w.Attention.QueryWeight, g.Attention.QueryWeight), ("q_proj.bias", w.Attention.QueryBias, g.Attention.QueryBias),
        ("k_proj.weight", w.Attention.KeyWeight, g.Attention.KeyWeight), ("k_proj.bias", w.Attention.KeyBias, g.Attention.KeyBias),
        ("v_proj.weight", w.Attention.ValueWeight, g.Attention.ValueWeight), ("v_proj.bias", w.Attention.ValueBias, g.Attention.ValueBias),
        ("out_proj.weight", w.Attention.OutWeight, g.Attention.OutWeight), ("out_proj.bias", w.Attention.OutBias, g.Attention.OutBias),
        ("layer_norm2.weight", w.Norm2.Weight, g.Norm2.Weight), ("layer_norm2.bias", w.Norm2.Bias, g.Norm2.Bias),
        ("fc1.weight", w.Mlp.Fc1Weight, g.Mlp.Fc1Weight), ("fc1.bias", w.Mlp.Fc1Bias, g.Mlp.Fc1Bias),
        ("fc2.weight", w.Mlp.Fc2Weight, g.Mlp.Fc2Weight), ("fc2.bias", w.Mlp.Fc2Bias, g.Mlp.Fc2Bias),
    ];
}
