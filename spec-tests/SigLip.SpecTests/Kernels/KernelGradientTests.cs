using FsCheck.Fluent;
using SigLip.Reference.Numerics;
using SigLip.Reference.Numerics.Kernels;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Kernels;

/// <summary>
/// The naive twins' backward passes against central finite differences in float64 (the fast ones
/// are tied to the naive ones by KernelTwinTests). f = Σ r·output with fixed random r, h = 1e-5;
/// central differences err by O(h²)·f''' + O(ε/h), hence atol 1e-7, rtol 1e-6.
/// </summary>
public sealed class KernelGradientTests(ITestOutputHelper output)
{
    private static readonly Tolerance FiniteDifference = new(1e-7, 1e-6);
    private const double H = 1e-5;

    private static double[] Numeric(double[] x, Func<double> f)
    {
        var g = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double keep = x[i];
            x[i] = keep + H; double up = f();
            x[i] = keep - H; double down = f();
            x[i] = keep;
            g[i] = (up - down) / (2 * H);
        }
        return g;
    }

    private static double Dot(double[] a, double[] b) { double s = 0; for (int i = 0; i < a.Length; i++) s += a[i] * b[i]; return s; }

    private static readonly FsCheck.Gen<(int A, int B, int C, int Seed)> Small =
        from a in Gen.Choose(1, 4) from b in Gen.Choose(1, 5) from c in Gen.Choose(1, 4) from s in Gen.Choose(0, 1_000_000)
        select (a, b, c, s);

    [Fact]
    public void Linear_backward_matches_finite_differences() => Props.Check(Small, s =>
    {
        var rng = new Random(s.Seed);
        int r = s.A, i = s.B, o = s.C;
        var x = TestData.Uniform(rng, r * i); var w = TestData.Uniform(rng, o * i); var b = TestData.Uniform(rng, o); var proj = TestData.Uniform(rng, r * o);
        double F() { var y = new double[r * o]; LinearKernels.ForwardNaive(y, x, w, b, r, i, o); return Dot(y, proj); }
        double[] dx = new double[r * i], dw = new double[o * i], db = new double[o];
        LinearKernels.BackwardNaive(dx, dw, db, proj, x, w, r, i, o);
        AssertClose.Array(dx, Numeric(x, F), FiniteDifference, "linear dx");
        AssertClose.Array(dw, Numeric(w, F), FiniteDifference, "linear dW");
        AssertClose.Array(db, Numeric(b, F), FiniteDifference, "linear db");
        return true;
    }, 880_301, output, 15);

    [Fact]
    public void LayerNorm_backward_matches_finite_differences() => Props.Check(Small, s =>
    {
        var rng = new Random(s.Seed);
        int r = s.A, c = s.B + 1;
        var x = TestData.Uniform(rng, r * c, 2); var w = TestData.Uniform(rng, c); var b = TestData.Uniform(rng, c); var proj = TestData.Uniform(rng, r * c);
        double F() { var y = new double[r * c]; LayerNormKernels.ForwardNaive(y, new double[r], new double[r], x, w, b, r, c, 1e-6); return Dot(y, proj); }
        double[] mean = new double[r], rstd = new double[r];
        LayerNormKernels.ForwardNaive(new double[r * c], mean, rstd, x, w, b, r, c, 1e-6);
        double[] dx = new double[r * c], dw = new double[c], db = new double[c];
        LayerNormKernels.BackwardNaive(dx, dw, db, proj, x, w, mean, rstd, r, c);
        AssertClose.Array(dx, Numeric(x, F), FiniteDifference, "layernorm dx");
        AssertClose.Array(dw, Numeric(w, F), FiniteDifference, "layernorm dw");
        AssertClose.Array(db, Numeric(b, F), FiniteDifference, "layernorm db");
        return true;
    }, 880_302, output, 15);

    [Fact]
    public void Gelu_backward_matches_finite_differences() => Props.Check(Small, s =>
    {
        var rng = new Random(s.Seed);
        int n = s.A * s.B * s.C;
        var x = TestData.Uniform(rng, n, 4); var proj = TestData.Uniform(rng, n);
        double F() { var y = new double[n]; GeluKernels.ForwardNaive(y, x, n); return Dot(y, proj); }
        var dx = new double[n];
        GeluKernels.BackwardNaive(dx, proj, x, n);
        AssertClose.Array(dx, Numeric(x, F), FiniteDifference, "gelu dx");
        return true;
    }, 880_303, output, 15);

    [Fact]
    public void Attention_backward_matches_finite_differences() => Props.Check(Small, s =>
    {
        var rng = new Random(s.Seed);
        int batch = 2, nq = s.A, nk = s.B, heads = s.C % 2 + 1, d = 3, h = heads * d;
        double scale = 1 / Math.Sqrt(d);
        var q = TestData.Uniform(rng, batch * nq * h); var k = TestData.Uniform(rng, batch * nk * h); var v = TestData.Uniform(rng, batch * nk * h);
        var proj = TestData.Uniform(rng, batch * nq * h);
        double F() { var c = new double[batch * nq * h]; AttentionKernels.ForwardNaive(c, new double[batch * heads * nq * nk], q, k, v, batch, nq, nk, heads, d, scale); return Dot(c, proj); }
        var probs = new double[batch * heads * nq * nk];
        AttentionKernels.ForwardNaive(new double[batch * nq * h], probs, q, k, v, batch, nq, nk, heads, d, scale);
        double[] dq = new double[q.Length], dk = new double[k.Length], dv = new double[v.Length];
        AttentionKernels.BackwardNaive(dq, dk, dv, proj, q, k, v, probs, batch, nq, nk, heads, d, scale);
        AssertClose.Array(dq, Numeric(q, F), FiniteDifference, "attention dq");
        AssertClose.Array(dk, Numeric(k, F), FiniteDifference, "attention dk");
        AssertClose.Array(dv, Numeric(v, F), FiniteDifference, "attention dv");
        return true;
    }, 880_304, output, 15);

    [Fact]
    public void SigmoidLoss_backward_matches_finite_differences() => Props.Check(Small, s =>
    {
        var rng = new Random(s.Seed);
        int n = s.A + 1, d = s.B;
        // The kernel's inputs are the (already normalised) embeddings; differentiate w.r.t. them directly.
        var x = TestData.UnitRows(TestData.Uniform(rng, n * d), n, d); var y = TestData.UnitRows(TestData.Uniform(rng, n * d), n, d);
        var tb = new[] { Math.Log(10) * rng.NextDouble(), -10 * rng.NextDouble() };
        double F() => SigmoidLossKernels.ForwardBackwardNaive<double>(null, null, x, y, n, d, tb[0], tb[1]).Loss;
        double[] dx = new double[n * d], dy = new double[n * d];
        var value = SigmoidLossKernels.ForwardBackwardNaive(dx, dy, x, y, n, d, tb[0], tb[1]);
        AssertClose.Array(dx, Numeric(x, F), FiniteDifference, "loss dx");
        AssertClose.Array(dy, Numeric(y, F), FiniteDifference, "loss dy");
        var dtb = Numeric(tb, F);
        AssertClose.Scalar(value.DLogitScale, dtb[0], FiniteDifference, "loss dL/dt'");
        AssertClose.Scalar(value.DLogitBias, dtb[1], FiniteDifference, "loss dL/db");
        return true;
    }, 880_305, output, 15);

    [Fact]
    public void SigmoidLoss_naive_value_is_the_papers_formula_on_a_hand_case()
    {
        // n = 2, d = 1, x = y = [1, -1]: inner products [[1, -1], [-1, 1]]; t = 1, b = 0.
        // L = (1/2)·(2·softplus(-1) + 2·softplus(-1)) = 2·log(1 + e^-1)
        var v = SigmoidLossKernels.ForwardBackwardNaive<double>(null, null, [1, -1], [1, -1], 2, 1, 0, 0);
        AssertClose.Scalar(v.Loss, 2 * Math.Log(1 + Math.Exp(-1)), new Tolerance(1e-15, 1e-15), "hand loss");
        var f = SigmoidLossKernels.ForwardBackward<double>(null, null, [1, -1], [1, -1], 2, 1, 0, 0);
        AssertClose.Scalar(f.Loss, 2 * Math.Log(1 + Math.Exp(-1)), new Tolerance(1e-15, 1e-15), "hand loss (fast)");
    }
}
