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
/// sizes and values (FsCheck, fixed reported seeds). Gradient buffers start non-zero to check that
/// backward accumulates.
/// </summary>
public sealed class LayerGradientTests(ITestOutputHelper output)
{
    private static Gen<int> Seeds => Gen.Choose(0, int.MaxValue - 1);

    [Fact]
    public void LinearBackwardMatchesFiniteDifferences()
    {
        var gen = from rows in Gen.Choose(1, 4) from inF in Gen.Choose(1, 5) from outF in Gen.Choose(1, 5)
                  from withBias in Gen.Elements(true, false) from seed in Seeds select (rows, inF, outF, withBias, seed);
        Props.Check(gen, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            var x = Random(rng, c.rows * c.inF);
            var w = Random(rng, c.outF * c.inF);
            var b = c.withBias ? Random(rng, c.outF) : null;
            var up = Random(rng, c.rows * c.outF);
            double Loss() { var y = new double[c.rows * c.outF]; Linear.Forward(y, x, w, b, c.rows, c.inF, c.outF); return Dot(y, up); }
            var dx = new Accumulator(rng, x.Length); var dw = new Accumulator(rng, w.Length); var db = new Accumulator(rng, c.outF);
            Linear.Backward(dx.Buffer, dw.Buffer, b is null ? null : db.Buffer, up, x, w, c.rows, c.inF, c.outF);
            Check("input", x, dx.Added, Loss);
            Check("weight", w, dw.Added, Loss);
            if (b is not null) Check("bias", b, db.Added, Loss);
            return true;
        }, seed: 101, output, maxTest: 30);
    }

    [Fact]
    public void LayerNormBackwardMatchesFiniteDifferences()
    {
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
                LayerNorm.Forward(y, new double[c.rows], new double[c.rows], x, w, b, c.rows, c.width, c.eps);
                return Dot(y, up);
            }
            var yy = new double[x.Length]; var mean = new double[c.rows]; var rstd = new double[c.rows];
            LayerNorm.Forward(yy, mean, rstd, x, w, b, c.rows, c.width, c.eps);
            var dx = new Accumulator(rng, x.Length); var dw = new Accumulator(rng, c.width); var db = new Accumulator(rng, c.width);
            LayerNorm.Backward(dx.Buffer, dw.Buffer, db.Buffer, up, x, w, mean, rstd, c.rows, c.width);
            Check("input", x, dx.Added, Loss);
            Check("weight", w, dw.Added, Loss);
            Check("bias", b, db.Added, Loss);
            return true;
        }, seed: 102, output, maxTest: 30);
    }

    [Fact]
    public void LayerNormForwardNormalisesEachRow()
    {
        // With weight 1 and bias 0 each row has mean 0 and (biased) variance var / (var + eps).
        var rng = new DeterministicRandom(7);
        int rows = 3, width = 5; double eps = 1e-6;
        var x = Random(rng, rows * width, 3.0);
        var y = new double[x.Length];
        LayerNorm.Forward(y, new double[rows], new double[rows], x, Enumerable.Repeat(1.0, width).ToArray(), new double[width], rows, width, eps);
        for (int r = 0; r < rows; r++)
        {
            var row = x.Skip(r * width).Take(width).ToArray();
            double m = row.Average(), v = row.Select(t => (t - m) * (t - m)).Average();
            var outRow = y.Skip(r * width).Take(width).ToArray();
            AssertClose.Scalar(outRow.Average(), 0, new Tolerance(1e-14, 0), $"row {r} mean");
            AssertClose.Scalar(outRow.Select(t => t * t).Average(), v / (v + eps), new Tolerance(0, 1e-13), $"row {r} variance");
        }
    }

    [Fact]
    public void GeluBackwardMatchesFiniteDifferences()
    {
        var gen = from n in Gen.Choose(1, 12) from scale in Gen.Elements(0.1, 1.0, 4.0) from seed in Seeds select (n, scale, seed);
        Props.Check(gen, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            var x = Random(rng, c.n, c.scale);
            var up = Random(rng, c.n);
            double Loss() { var y = new double[c.n]; Gelu.Forward(y, x, c.n); return Dot(y, up); }
            var dx = new Accumulator(rng, c.n);
            Gelu.Backward(dx.Buffer, up, x, c.n);
            Check("input", x, dx.Added, Loss);
            return true;
        }, seed: 103, output, maxTest: 30);
    }

    [Fact]
    public void GeluMatchesErfGeluClosely()
    {
        // The tanh form approximates x Phi(x) to within ~1e-3 (Hendrycks and Gimpel): an outside
        // check that the constants are right (a wrong constant moves it far more).
        var xs = Enumerable.Range(-40, 81).Select(i => i / 10.0).ToArray();
        var y = new double[xs.Length];
        Gelu.Forward(y, xs, xs.Length);
        for (int i = 0; i < xs.Length; i++)
        {
            double exact = xs[i] * MathNet.Numerics.Distributions.Normal.CDF(0, 1, xs[i]);
            Assert.True(Math.Abs(y[i] - exact) < 1e-3, $"gelu_tanh({xs[i]}) = {y[i]}, x Phi(x) = {exact}");
        }
        Assert.True(Math.Abs(y[Array.IndexOf(xs, 1.0)] - 0.8411919906082768) < 1e-15, $"gelu_tanh(1) = {y[50]:R}");
    }

    private static Gen<(int batch, int nq, int nk, int heads, int headDim, int seed)> AttentionSizes =>
        from batch in Gen.Choose(1, 3) from nq in Gen.Choose(1, 4) from nk in Gen.Choose(1, 4)
        from heads in Gen.Choose(1, 3) from headDim in Gen.Choose(1, 4) from seed in Seeds
        select (batch, nq, nk, heads, headDim, seed);

    [Fact]
    public void AttentionCoreBackwardMatchesFiniteDifferences()
    {
        Props.Check(AttentionSizes, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            int h = c.heads * c.headDim;
            var q = Random(rng, c.batch * c.nq * h); var k = Random(rng, c.batch * c.nk * h); var v = Random(rng, c.batch * c.nk * h);
            var up = Random(rng, c.batch * c.nq * h);
            var probs = new double[c.batch * c.heads * c.nq * c.nk];
            double Loss() { var y = new double[up.Length]; Attention.Forward(y, new double[probs.Length], q, k, v, c.batch, c.nq, c.nk, c.heads, c.headDim); return Dot(y, up); }
            Attention.Forward(new double[up.Length], probs, q, k, v, c.batch, c.nq, c.nk, c.heads, c.headDim);
            var dq = new Accumulator(rng, q.Length); var dk = new Accumulator(rng, k.Length); var dv = new Accumulator(rng, v.Length);
            Attention.Backward(dq.Buffer, dk.Buffer, dv.Buffer, up, probs, q, k, v, c.batch, c.nq, c.nk, c.heads, c.headDim);
            Check("query", q, dq.Added, Loss);
            Check("key", k, dk.Added, Loss);
            Check("value", v, dv.Added, Loss);
            return true;
        }, seed: 104, output, maxTest: 30);
    }

    [Fact]
    public void AttentionForwardMatchesAPerHeadComputation()
    {
        // Independent form: for each head, slice out [N, D] matrices and do softmax(Q K^T / sqrt D) V with MathNet.
        var rng = new DeterministicRandom(11);
        int batch = 2, nq = 3, nk = 5, heads = 3, d = 2, h = heads * d;
        var q = Random(rng, batch * nq * h); var k = Random(rng, batch * nk * h); var v = Random(rng, batch * nk * h);
        var y = new double[batch * nq * h];
        Attention.Forward(y, new double[batch * heads * nq * nk], q, k, v, batch, nq, nk, heads, d);
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
                for (int j = 0; j < d; j++)
                    AssertClose.Scalar(y[(b * nq + i) * h + hh * d + j], O[i, j], new Tolerance(1e-14, 1e-13), $"out[{b},{i},head {hh},{j}]");
        }
    }

    [Fact]
    public void SelfAttentionBackwardMatchesFiniteDifferences()
    {
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
            double Loss() { var y = new double[rows * h]; SelfAttention.Forward(y, new SelfAttentionSaved(c.batch, c.tokens, h, c.heads), x, w, c.batch, c.tokens, h, c.heads); return Dot(y, up); }
            var saved = new SelfAttentionSaved(c.batch, c.tokens, h, c.heads);
            SelfAttention.Forward(new double[rows * h], saved, x, w, c.batch, c.tokens, h, c.heads);
            var dx = new Accumulator(rng, x.Length);
            var g = AttentionWeights.Zeros(h);
            SelfAttention.Backward(dx.Buffer, g, up, saved, x, w, c.batch, c.tokens, h, c.heads);
            Check("input", x, dx.Added, Loss);
            Check("q_proj.weight", w.QueryWeight, g.QueryWeight, Loss); Check("q_proj.bias", w.QueryBias, g.QueryBias, Loss);
            Check("k_proj.weight", w.KeyWeight, g.KeyWeight, Loss); Check("k_proj.bias", w.KeyBias, g.KeyBias, Loss);
            Check("v_proj.weight", w.ValueWeight, g.ValueWeight, Loss); Check("v_proj.bias", w.ValueBias, g.ValueBias, Loss);
            Check("out_proj.weight", w.OutWeight, g.OutWeight, Loss); Check("out_proj.bias", w.OutBias, g.OutBias, Loss);
            return true;
        }, seed: 105, output, maxTest: 20);
    }

    [Fact]
    public void MlpBackwardMatchesFiniteDifferences()
    {
        var gen = from rows in Gen.Choose(1, 4) from width in Gen.Choose(1, 5) from inter in Gen.Choose(1, 6)
                  from seed in Seeds select (rows, width, inter, seed);
        Props.Check(gen, c =>
        {
            var rng = new DeterministicRandom(c.seed);
            var x = Random(rng, c.rows * c.width);
            var w = new MlpWeights(Random(rng, c.inter * c.width), Random(rng, c.inter), Random(rng, c.width * c.inter), Random(rng, c.width));
            var up = Random(rng, c.rows * c.width);
            double Loss() { var y = new double[up.Length]; Mlp.Forward(y, new MlpSaved(c.rows, c.inter), x, w, c.rows, c.width, c.inter); return Dot(y, up); }
            var saved = new MlpSaved(c.rows, c.inter);
            Mlp.Forward(new double[up.Length], saved, x, w, c.rows, c.width, c.inter);
            var dx = new Accumulator(rng, x.Length);
            var g = MlpWeights.Zeros(c.width, c.inter);
            Mlp.Backward(dx.Buffer, g, up, saved, x, w, c.rows, c.width, c.inter);
            Check("input", x, dx.Added, Loss);
            Check("fc1.weight", w.Fc1Weight, g.Fc1Weight, Loss); Check("fc1.bias", w.Fc1Bias, g.Fc1Bias, Loss);
            Check("fc2.weight", w.Fc2Weight, g.Fc2Weight, Loss); Check("fc2.bias", w.Fc2Bias, g.Fc2Bias, Loss);
            return true;
        }, seed: 106, output, maxTest: 30);
    }

    [Fact]
    public void PatchEmbeddingBackwardMatchesFiniteDifferences()
    {
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
            double Loss() { var y = new double[up.Length]; PatchEmbedding.Forward(y, new double[c.batch * n * k], px, w, b, c.batch, c.channels, c.size, c.patch, c.width); return Dot(y, up); }
            var patches = new double[c.batch * n * k];
            PatchEmbedding.Forward(new double[up.Length], patches, px, w, b, c.batch, c.channels, c.size, c.patch, c.width);
            var dpx = new Accumulator(rng, px.Length); var dw = new Accumulator(rng, w.Length); var db = new Accumulator(rng, b.Length);
            PatchEmbedding.Backward(dpx.Buffer, dw.Buffer, db.Buffer, up, patches, w, c.batch, c.channels, c.size, c.patch, c.width);
            Check("pixels", px, dpx.Added, Loss);
            Check("weight", w, dw.Added, Loss);
            Check("bias", b, db.Added, Loss);
            return true;
        }, seed: 107, output, maxTest: 30);
    }

    [Fact]
    public void PatchEmbeddingEqualsAStrideConvolutionFlattenedRowMajor()
    {
        // Direct Conv2d(kernel = stride = P) then flatten(2).transpose(1, 2), written independently.
        var rng = new DeterministicRandom(12);
        int batch = 2, ch = 3, p = 2, size = 6, width = 4, g = size / p;
        var px = Random(rng, batch * ch * size * size); var w = Random(rng, width * ch * p * p); var b = Random(rng, width);
        var y = new double[batch * g * g * width];
        PatchEmbedding.Forward(y, new double[batch * g * g * ch * p * p], px, w, b, batch, ch, size, p, width);
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
            AssertClose.Scalar(y[(bb * g * g + token) * width + o], conv, new Tolerance(1e-14, 1e-13), $"out[{bb},{token},{o}]");
        }
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

    [Fact]
    public void EncoderLayerBackwardMatchesFiniteDifferences()
    {
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
                EncoderLayer.Forward(s, x, w, c.batch, c.tokens, h, c.heads, c.inter, eps);
                return Dot(s.Output, up);
            }
            var saved = new EncoderLayerSaved(c.batch, c.tokens, h, c.heads, c.inter);
            EncoderLayer.Forward(saved, x, w, c.batch, c.tokens, h, c.heads, c.inter, eps);
            var dx = new Accumulator(rng, x.Length);
            var g = new EncoderLayerWeights(new NormWeights(new double[h], new double[h]), AttentionWeights.Zeros(h),
                                            new NormWeights(new double[h], new double[h]), MlpWeights.Zeros(h, c.inter));
            EncoderLayer.Backward(dx.Buffer, g, up, saved, x, w, c.batch, c.tokens, h, c.heads, c.inter);
            Check("input", x, dx.Added, Loss);
            foreach (var (name, p, d) in Flatten(w, g)) Check(name, p, d, Loss);
            return true;
        }, seed: 109, output, maxTest: 15);
    }

    [Fact]
    public void MapHeadBackwardMatchesFiniteDifferences()
    {
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
                MapHead.Forward(y, new MapHeadSaved(c.batch, c.tokens, h, c.heads, c.inter), x, w, c.batch, c.tokens, h, c.heads, c.inter, eps);
                return Dot(y, up);
            }
            var saved = new MapHeadSaved(c.batch, c.tokens, h, c.heads, c.inter);
            MapHead.Forward(new double[c.batch * h], saved, x, w, c.batch, c.tokens, h, c.heads, c.inter, eps);
            var dx = new Accumulator(rng, x.Length);
            var g = new MapHeadWeights(new double[h], new double[3 * h * h], new double[3 * h], new double[h * h], new double[h],
                new NormWeights(new double[h], new double[h]), MlpWeights.Zeros(h, c.inter));
            MapHead.Backward(dx.Buffer, g, up, saved, x, w, c.batch, c.tokens, h, c.heads, c.inter);
            Check("input", x, dx.Added, Loss);
            Check("probe", w.Probe, g.Probe, Loss);
            Check("in_proj_weight", w.InProjWeight, g.InProjWeight, Loss);
            Check("in_proj_bias", w.InProjBias, g.InProjBias, Loss);
            Check("out_proj.weight", w.OutWeight, g.OutWeight, Loss);
            Check("out_proj.bias", w.OutBias, g.OutBias, Loss);
            Check("layernorm.weight", w.Norm.Weight, g.Norm.Weight, Loss);
            Check("layernorm.bias", w.Norm.Bias, g.Norm.Bias, Loss);
            Check("mlp.fc1.weight", w.Mlp.Fc1Weight, g.Mlp.Fc1Weight, Loss);
            Check("mlp.fc1.bias", w.Mlp.Fc1Bias, g.Mlp.Fc1Bias, Loss);
            Check("mlp.fc2.weight", w.Mlp.Fc2Weight, g.Mlp.Fc2Weight, Loss);
            Check("mlp.fc2.bias", w.Mlp.Fc2Bias, g.Mlp.Fc2Bias, Loss);
            return true;
        }, seed: 110, output, maxTest: 20);
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
