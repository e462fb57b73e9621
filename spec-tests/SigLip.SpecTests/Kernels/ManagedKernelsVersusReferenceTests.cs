using System.Numerics;
using FsCheck.Fluent;
using SigLip.Reference.Numerics;
using SigLip.Backends.Managed.Kernels;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Kernels;

/// <summary>
/// Each managed kernel (Linear, LayerNorm, GELU, attention, sigmoid loss) equals the reference layer
/// (the specification's float64 loop, through <see cref="ReferenceTwin{T}"/>) within
/// <see cref="KernelTolerances"/> for float64 and float32, on shapes that are not multiples of any
/// block or vector width. Backward kernels are checked with non-zero initial gradients, because they accumulate.
/// </summary>
public sealed class ManagedKernelsVersusReferenceTests(ITestOutputHelper output)
{
    private static readonly int[] Rows = [1, 2, 7, 33, 65];
    private static readonly int[] Widths = [1, 3, 8, 17, 33, 65, 130];

    private static readonly FsCheck.Gen<(int Rows, int Width, int In, int Seed)> Shapes =
        from r in Gen.Elements(Rows)
        from w in Gen.Elements(Widths)
        from i in Gen.Elements(Widths)
        from s in Gen.Choose(0, 1_000_000)
        select (r, w, i, s);

    // ---------------------------------------------------------------- Linear
    [Fact] public void Linear_float64() => Props.Check(Shapes, s => Linear<double>(s), 880_201, output, 40);
    [Fact] public void Linear_float32() => Props.Check(Shapes, s => Linear<float>(s), 880_202, output, 40);

    private static bool Linear<T>((int Rows, int Width, int In, int Seed) s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(s.Seed);
        int r = s.Rows, o = s.Width, i = s.In;
        var x = TestData.As<T>(TestData.Uniform(rng, r * i));
        var w = TestData.As<T>(TestData.Uniform(rng, o * i));
        var b = TestData.As<T>(TestData.Uniform(rng, o));
        var dy = TestData.As<T>(TestData.Uniform(rng, r * o));
        var dx0 = TestData.Uniform(rng, r * i);
        var dw0 = TestData.Uniform(rng, o * i);
        var db0 = TestData.Uniform(rng, o);
        var yF = new T[r * o];
        var yN = new T[r * o];
        LinearKernels.Forward(yF, x, w, b, r, i, o);
        ReferenceTwin<T>.LinearForward(yN, x, w, b, r, i, o);
        var tol = Scaled<T>(i);
        TestData.Close(yF, yN, tol, "linear y");
        T[] dxF = TestData.As<T>(dx0), dxN = TestData.As<T>(dx0), dwF = TestData.As<T>(dw0), dwN = TestData.As<T>(dw0), dbF = TestData.As<T>(db0), dbN = TestData.As<T>(db0);
        LinearKernels.Backward(dxF, dwF, dbF, dy, x, w, r, i, o);
        ReferenceTwin<T>.LinearBackward(dxN, dwN, dbN, dy, x, w, r, i, o);
        TestData.Close(dxF, dxN, Scaled<T>(o), "linear dx");
        TestData.Close(dwF, dwN, Scaled<T>(r), "linear dW");
        TestData.Close(dbF, dbN, Scaled<T>(r), "linear db");
        return true;
    }

    /// <summary>
    /// For sums of K terms of size O(1): the stated per-dtype tolerance, its absolute part grown with K
    /// (the rounding of a K-term sum grows with K; relative bounds break down under cancellation).
    /// </summary>
    private static Tolerance Scaled<T>(int k)
    {
        var t = KernelTolerances.For<T>();
        return new Tolerance(t.Atol * Math.Max(1, k / 16.0), t.Rtol);
    }

    // ---------------------------------------------------------------- LayerNorm
    [Fact] public void LayerNorm_float64() => Props.Check(Shapes, s => LayerNorm<double>(s), 880_211, output, 40);
    [Fact] public void LayerNorm_float32() => Props.Check(Shapes, s => LayerNorm<float>(s), 880_212, output, 40);

    private static bool LayerNorm<T>((int Rows, int Width, int In, int Seed) s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(s.Seed);
        int r = s.Rows, c = s.Width;
        // An offset and spread per row, as real activations have.
        var xd = TestData.Uniform(rng, r * c);
        for (int i = 0; i < xd.Length; i++) xd[i] = 3 * xd[i] + 0.5;
        var x = TestData.As<T>(xd);
        var w = TestData.As<T>(TestData.Uniform(rng, c));
        var b = TestData.As<T>(TestData.Uniform(rng, c));
        var dy = TestData.As<T>(TestData.Uniform(rng, r * c));
        var dx0 = TestData.Uniform(rng, r * c);
        T[] yF = new T[r * c], yN = new T[r * c], mF = new T[r], mN = new T[r], sF = new T[r], sN = new T[r];
        LayerNormKernels.Forward(yF, mF, sF, x, w, b, r, c, 1e-6);
        ReferenceTwin<T>.LayerNormForward(yN, mN, sN, x, w, b, r, c, 1e-6);
        var tol = Scaled<T>(c);
        TestData.Close(yF, yN, tol, "layernorm y");
        TestData.Close(mF, mN, tol, "layernorm mean");
        TestData.Close(sF, sN, tol, "layernorm rstd");
        T[] dxF = TestData.As<T>(dx0), dxN = TestData.As<T>(dx0), dwF = TestData.As<T>(dx0[..c]), dwN = TestData.As<T>(dx0[..c]), dbF = TestData.As<T>(dx0[..c]), dbN = TestData.As<T>(dx0[..c]);
        LayerNormKernels.Backward(dxF, dwF, dbF, dy, x, w, mN, sN, r, c);
        ReferenceTwin<T>.LayerNormBackward(dxN, dwN, dbN, dy, x, w, mN, sN, r, c);
        TestData.Close(dxF, dxN, tol, "layernorm dx");
        TestData.Close(dwF, dwN, Scaled<T>(r), "layernorm dw");
        TestData.Close(dbF, dbN, Scaled<T>(r), "layernorm db");
        return true;
    }

    // ---------------------------------------------------------------- GELU
    [Fact] public void Gelu_float64() => Props.Check(Shapes, s => Gelu<double>(s), 880_221, output, 40);
    [Fact] public void Gelu_float32() => Props.Check(Shapes, s => Gelu<float>(s), 880_222, output, 40);

    private static bool Gelu<T>((int Rows, int Width, int In, int Seed) s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(s.Seed);
        // Across chunk boundaries (1024) and into the tails of tanh.
        int n = s.Rows * s.Width * s.In % 5000 + 1;
        var x = TestData.As<T>(TestData.Uniform(rng, n, 8));
        var dy = TestData.As<T>(TestData.Uniform(rng, n));
        var dx0 = TestData.Uniform(rng, n);
        T[] yF = new T[n], yN = new T[n];
        GeluKernels.Forward(yF, x, n);
        ReferenceTwin<T>.GeluForward(yN, x, n);
        var tol = KernelTolerances.For<T>();
        TestData.Close(yF, yN, tol, "gelu y");
        T[] dxF = TestData.As<T>(dx0), dxN = TestData.As<T>(dx0);
        GeluKernels.Backward(dxF, dy, x, n);
        ReferenceTwin<T>.GeluBackward(dxN, dy, x, n);
        TestData.Close(dxF, dxN, tol, "gelu dx");
        return true;
    }

    // ---------------------------------------------------------------- attention
    private static readonly FsCheck.Gen<(int B, int Nq, int Nk, int Heads, int D, int Seed)> AttentionShapes =
        from b in Gen.Elements(1, 2, 3)
        from nq in Gen.Elements(1, 5, 17, 33)
        from sameLength in Gen.Elements(true, false)
        from nk in Gen.Elements(1, 7, 33, 65)
        from heads in Gen.Elements(1, 2, 3, 5)
        from d in Gen.Elements(1, 4, 7, 16)
        from seed in Gen.Choose(0, 1_000_000)
        select (b, nq, sameLength ? nq : nk, heads, d, seed);

    [Fact] public void Attention_float64() => Props.Check(AttentionShapes, s => Attention<double>(s), 880_231, output, 40);
    [Fact] public void Attention_float32() => Props.Check(AttentionShapes, s => Attention<float>(s), 880_232, output, 40);

    private static bool Attention<T>((int B, int Nq, int Nk, int Heads, int D, int Seed) s) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(s.Seed);
        int h = s.Heads * s.D;
        double scale = 1 / Math.Sqrt(s.D);
        var q = TestData.As<T>(TestData.Uniform(rng, s.B * s.Nq * h, 2));
        var k = TestData.As<T>(TestData.Uniform(rng, s.B * s.Nk * h, 2));
        var v = TestData.As<T>(TestData.Uniform(rng, s.B * s.Nk * h));
        var dc = TestData.As<T>(TestData.Uniform(rng, s.B * s.Nq * h));
        var dq0 = TestData.Uniform(rng, s.B * s.Nq * h);
        var dk0 = TestData.Uniform(rng, s.B * s.Nk * h);
        T[] cF = new T[s.B * s.Nq * h], cN = new T[s.B * s.Nq * h];
        T[] pF = new T[s.B * s.Heads * s.Nq * s.Nk], pN = new T[s.B * s.Heads * s.Nq * s.Nk];
        AttentionKernels.Forward(cF, pF, q, k, v, s.B, s.Nq, s.Nk, s.Heads, s.D, scale);
        ReferenceTwin<T>.AttentionForward(cN, pN, q, k, v, s.B, s.Nq, s.Nk, s.Heads, s.D, scale);
        var tol = Scaled<T>(Math.Max(s.D, s.Nk));
        TestData.Close(pF, pN, tol, "attention probs");
        TestData.Close(cF, cN, tol, "attention context");
        T[] dqF = TestData.As<T>(dq0), dqN = TestData.As<T>(dq0), dkF = TestData.As<T>(dk0), dkN = TestData.As<T>(dk0), dvF = TestData.As<T>(dk0), dvN = TestData.As<T>(dk0);
        AttentionKernels.Backward(dqF, dkF, dvF, dc, q, k, v, pN, s.B, s.Nq, s.Nk, s.Heads, s.D, scale);
        ReferenceTwin<T>.AttentionBackward(dqN, dkN, dvN, dc, q, k, v, pN, s.B, s.Nq, s.Nk, s.Heads, s.D, scale);
        var tolB = Scaled<T>(Math.Max(s.D, Math.Max(s.Nk, s.Nq)));
        TestData.Close(dqF, dqN, tolB, "attention dq");
        TestData.Close(dkF, dkN, tolB, "attention dk");
        TestData.Close(dvF, dvN, tolB, "attention dv");
        return true;
    }

    // ---------------------------------------------------------------- sigmoid loss
    private static readonly FsCheck.Gen<(int N, int D, double Scale, double Bias, int Seed)> LossShapes =
        from n in Gen.Elements(1, 2, 7, 33, 65, 130)
        from d in Gen.Elements(1, 3, 16, 33, 65)
        from scale in Gen.Elements(0.0, Math.Log(10), 3.0, 4.6)
        from bias in Gen.Elements(-10.0, -2.5, 0.0, 1.0)
        from seed in Gen.Choose(0, 1_000_000)
        select (n, d, scale, bias, seed);

    [Fact] public void SigmoidLoss_float64() => Props.Check(LossShapes, s => Loss<double>(s), 880_241, output, 40);
    [Fact] public void SigmoidLoss_float32() => Props.Check(LossShapes, s => Loss<float>(s), 880_242, output, 40);

    [Fact]
    public void SigmoidLoss_blocks_of_rows_cover_a_large_batch()
    {
        // n large enough that the fast kernel uses several row blocks of logits.
        Assert.True(Loss<double>((1500, 3, Math.Log(10), -10, 11), blockCheck: true));
    }

    private static bool Loss<T>((int N, int D, double Scale, double Bias, int Seed) s, bool blockCheck = false) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(s.Seed);
        var x = TestData.As<T>(TestData.UnitRows(TestData.Uniform(rng, s.N * s.D), s.N, s.D));
        var y = TestData.As<T>(TestData.UnitRows(TestData.Uniform(rng, s.N * s.D), s.N, s.D));
        var dx0 = TestData.Uniform(rng, s.N * s.D);
        T[] dxF = TestData.As<T>(dx0), dxN = TestData.As<T>(dx0), dyF = TestData.As<T>(dx0), dyN = TestData.As<T>(dx0);
        var f = SigmoidLossKernels.ForwardBackward(dxF, dyF, x, y, s.N, s.D, s.Scale, s.Bias);
        var nv = ReferenceTwin<T>.SigmoidLoss(dxN, dyN, x, y, s.N, s.D, s.Scale, s.Bias);
        // Each gradient element sums n terms; scalar results sum n² terms divided by n.
        var tol = Scaled<T>(Math.Max(s.N, s.D));
        string at = $"n={s.N} d={s.D} t'={s.Scale} b={s.Bias}";
        AssertClose.Scalar(f.Loss, nv.Loss, tol, $"loss ({at})");
        AssertClose.Scalar(f.DLogitScale, nv.DLogitScale, tol, $"dL/dt' ({at})");
        AssertClose.Scalar(f.DLogitBias, nv.DLogitBias, tol, $"dL/db ({at})");
        TestData.Close(dxF, dxN, tol, $"dx ({at})");
        TestData.Close(dyF, dyN, tol, $"dy ({at})");
        // Forward only gives the same numbers.
        var fo = SigmoidLossKernels.ForwardBackward<T>(null, null, x, y, s.N, s.D, s.Scale, s.Bias);
        AssertClose.Scalar(fo.Loss, f.Loss, tol, $"forward-only loss ({at})");
        return !blockCheck || s.N > SigmoidLossKernels.SlabElements / s.N;
    }
}
