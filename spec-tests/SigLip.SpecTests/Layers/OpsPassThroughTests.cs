using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Layers;

namespace SigLip.SpecTests.Layers;

/// <summary>
/// The composite layers hand every primitive to the operations they are given, forward and backward,
/// through every public overload: a layer that silently falls back to the reference loops would pass
/// every numerical test on the reference and run the specification inside another backend. Found
/// broken once: the public Mlp.Backward dropped its ops, so a backend's MLP backward ran the reference.
/// </summary>
public sealed class OpsPassThroughTests
{
    /// <summary>The reference operations, recording which ones were called.</summary>
    private sealed class Recording : ILayerOps
    {
        private readonly ILayerOps _inner = ReferenceOps.Instance;
        public SortedSet<string> Called { get; } = new(StringComparer.Ordinal);
        public string Name => "recording " + _inner.Name;
        public void LinearForward(double[] o, double[] i, double[] w, double[]? b, int r, int inF, int outF) { Called.Add(nameof(LinearForward)); _inner.LinearForward(o, i, w, b, r, inF, outF); }
        public void LinearBackward(double[]? di, double[]? dw, double[]? db, double[] dout, double[] i, double[] w, int r, int inF, int outF) { Called.Add(nameof(LinearBackward)); _inner.LinearBackward(di, dw, db, dout, i, w, r, inF, outF); }
        public void LayerNormForward(double[] o, double[] m, double[] s, double[] i, double[] w, double[] b, int r, int c, double eps) { Called.Add(nameof(LayerNormForward)); _inner.LayerNormForward(o, m, s, i, w, b, r, c, eps); }
        public void LayerNormBackward(double[]? di, double[]? dw, double[]? db, double[] dout, double[] i, double[] w, double[] m, double[] s, int r, int c) { Called.Add(nameof(LayerNormBackward)); _inner.LayerNormBackward(di, dw, db, dout, i, w, m, s, r, c); }
        public void GeluForward(double[] o, double[] i, int n) { Called.Add(nameof(GeluForward)); _inner.GeluForward(o, i, n); }
        public void GeluBackward(double[] di, double[] dout, double[] i, int n) { Called.Add(nameof(GeluBackward)); _inner.GeluBackward(di, dout, i, n); }
        public void AttentionForward(double[] o, double[] p, double[] q, double[] k, double[] v, int b, int nq, int nk, int h, int d) { Called.Add(nameof(AttentionForward)); _inner.AttentionForward(o, p, q, k, v, b, nq, nk, h, d); }
        public void AttentionBackward(double[]? dq, double[]? dk, double[]? dv, double[] dout, double[] p, double[] q, double[] k, double[] v, int b, int nq, int nk, int h, int d) { Called.Add(nameof(AttentionBackward)); _inner.AttentionBackward(dq, dk, dv, dout, p, q, k, v, b, nq, nk, h, d); }
        public LossResult PairwiseLoss(Tensor i, Tensor t, double s, double b, LossOptions o) { Called.Add(nameof(PairwiseLoss)); return _inner.PairwiseLoss(i, t, s, b, o); }
    }

    private static double[] Z(int n) => new double[n];
    private static double[] Ones(int n) => Enumerable.Repeat(0.5, n).ToArray();

    private static void Expect(Recording ops, string layer, params string[] expected)
    {
        Assert.True(expected.Order(StringComparer.Ordinal).SequenceEqual(ops.Called),
            $"{layer} called [{string.Join(", ", ops.Called)}] on its ops; expected [{string.Join(", ", expected.Order(StringComparer.Ordinal))}] (a missing one ran the reference loops instead)");
        ops.Called.Clear();
    }

    [Fact]
    public void Mlp_forward_and_backward_use_the_given_ops()
    {
        const int rows = 2, h = 3, inter = 4;
        var ops = new Recording();
        var w = new MlpWeights(Ones(inter * h), Ones(inter), Ones(h * inter), Ones(h));
        var saved = new MlpSaved(rows, inter);
        Mlp.Forward(Z(rows * h), saved, Ones(rows * h), w, rows, h, inter, ops);
        Expect(ops, "Mlp.Forward", "LinearForward", "GeluForward");
        Mlp.Backward(Z(rows * h), MlpWeights.Zeros(h, inter), Ones(rows * h), saved, Ones(rows * h), w, rows, h, inter, ops);
        Expect(ops, "Mlp.Backward", "LinearBackward", "GeluBackward");
    }

    [Fact]
    public void SelfAttention_forward_and_backward_use_the_given_ops()
    {
        const int b = 1, n = 2, h = 4, heads = 2;
        var ops = new Recording();
        var w = new AttentionWeights(Ones(h * h), Ones(h), Ones(h * h), Ones(h), Ones(h * h), Ones(h), Ones(h * h), Ones(h));
        var saved = new SelfAttentionSaved(b, n, h, heads);
        SelfAttention.Forward(Z(b * n * h), saved, Ones(b * n * h), w, b, n, h, heads, ops);
        Expect(ops, "SelfAttention.Forward", "LinearForward", "AttentionForward");
        SelfAttention.Backward(Z(b * n * h), AttentionWeights.Zeros(h), Ones(b * n * h), saved, Ones(b * n * h), w, b, n, h, heads, ops);
        Expect(ops, "SelfAttention.Backward", "LinearBackward", "AttentionBackward");
    }

    [Fact]
    public void EncoderLayer_and_MapHead_forward_and_backward_use_the_given_ops()
    {
        const int b = 1, n = 2, h = 4, heads = 2, inter = 3;
        var ops = new Recording();
        NormWeights Norm() => new(Ones(h), Ones(h));
        var layer = new EncoderLayerWeights(Norm(), new AttentionWeights(Ones(h * h), Ones(h), Ones(h * h), Ones(h), Ones(h * h), Ones(h), Ones(h * h), Ones(h)),
            Norm(), new MlpWeights(Ones(inter * h), Ones(inter), Ones(h * inter), Ones(h)));
        var saved = new EncoderLayerSaved(b, n, h, heads, inter);
        EncoderLayer.Forward(saved, Ones(b * n * h), layer, b, n, h, heads, inter, 1e-6, ops);
        Expect(ops, "EncoderLayer.Forward", "LayerNormForward", "LinearForward", "AttentionForward", "GeluForward");
        var grads = new EncoderLayerWeights(new NormWeights(Z(h), Z(h)), AttentionWeights.Zeros(h), new NormWeights(Z(h), Z(h)), MlpWeights.Zeros(h, inter));
        EncoderLayer.Backward(Z(b * n * h), grads, Ones(b * n * h), saved, Ones(b * n * h), layer, b, n, h, heads, inter, ops);
        Expect(ops, "EncoderLayer.Backward", "LayerNormBackward", "LinearBackward", "AttentionBackward", "GeluBackward");

        var map = new MapHeadWeights(Ones(h), Ones(3 * h * h), Ones(3 * h), Ones(h * h), Ones(h), Norm(), new MlpWeights(Ones(inter * h), Ones(inter), Ones(h * inter), Ones(h)));
        var mapSaved = new MapHeadSaved(b, n, h, heads, inter);
        MapHead.Forward(Z(b * h), mapSaved, Ones(b * n * h), map, b, n, h, heads, inter, 1e-6, ops);
        Expect(ops, "MapHead.Forward", "LayerNormForward", "LinearForward", "AttentionForward", "GeluForward");
        var mapGrads = new MapHeadWeights(Z(h), Z(3 * h * h), Z(3 * h), Z(h * h), Z(h), new NormWeights(Z(h), Z(h)), MlpWeights.Zeros(h, inter));
        MapHead.Backward(Z(b * n * h), mapGrads, Ones(b * h), mapSaved, Ones(b * n * h), map, b, n, h, heads, inter, ops);
        Expect(ops, "MapHead.Backward", "LayerNormBackward", "LinearBackward", "AttentionBackward", "GeluBackward");
    }
}
