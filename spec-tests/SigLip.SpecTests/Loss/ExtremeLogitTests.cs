using FsCheck.Fluent;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Loss;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Loss;

/// <summary>Stable log-sigmoid and the losses at |logits| ~ 1e4: finite, and the right values.</summary>
public sealed class ExtremeLogitTests(ITestOutputHelper output)
{
    [Fact]
    public void LogSigmoidAtPlusMinus1e4()
    {
        // log sigma(1e4) = -log(1 + e^-1e4) = -e^-1e4, far below the smallest double: 0.
        Assert.Equal(0.0, LogSigmoid.Value(1e4));
        Assert.Equal(0f, LogSigmoid.Value(1e4f));
        // log sigma(-1e4) = -1e4 - log(1 + e^-1e4) = -1e4 exactly in floating point.
        Assert.Equal(-1e4, LogSigmoid.Value(-1e4));
        Assert.Equal(-1e4f, LogSigmoid.Value(-1e4f));
        // Derivatives sigma(-u): 0 and 1, no NaN from inf/inf.
        Assert.Equal(0.0, LogSigmoid.Derivative(1e4));
        Assert.Equal(1.0, LogSigmoid.Derivative(-1e4));
        Assert.Equal(0f, LogSigmoid.Derivative(1e4f));
        Assert.Equal(1f, LogSigmoid.Derivative(-1e4f));
        foreach (double u in new[] { -1e300, -1e4, -800, 800, 1e4, 1e300, double.MaxValue, -double.MaxValue })
        {
            Assert.True(double.IsFinite(LogSigmoid.Value(u)), $"log sigma({u}) not finite");
            Assert.True(double.IsFinite(LogSigmoid.Derivative(u)), $"sigma(-{u}) not finite");
        }
    }

    [Fact]
    public void LogSigmoidKeepsTinyTailsAndMatchesTheDefinition()
    {
        var tight = new Tolerance(0, 4e-16);
        // u = 40: -log(1 + e^-40) = -(e^-40 - e^-80/2 + ...); log(1 + e^-40) rounds 1 + e^-40 to 1 and gives 0.
        AssertClose.Scalar(LogSigmoid.Value(40.0), -(Math.Exp(-40) - Math.Exp(-80) / 2), tight, "log sigma(40)");
        AssertClose.Scalar(LogSigmoid.Value(-40.0), -40.0, tight, "log sigma(-40)");
        AssertClose.Scalar(LogSigmoid.Value(0.0), -Math.Log(2), tight, "log sigma(0)");
        AssertClose.Scalar(LogSigmoid.Log1P(1e-10), 1e-10 - 5e-21 + 1e-30 / 3, tight, "log1p(1e-10)");
        Assert.Equal(1e-20, LogSigmoid.Log1P(1e-20));
        // In the middle the textbook formula is accurate: compare over a range.
        for (double u = -30; u <= 30; u += 0.37)
        {
            AssertClose.Scalar(LogSigmoid.Value(u), -Math.Log(1 + Math.Exp(-u)), new Tolerance(1e-15, 1e-14), $"log sigma({u})");
            AssertClose.Scalar(LogSigmoid.Derivative(u), 1 / (1 + Math.Exp(u)), new Tolerance(1e-16, 1e-14), $"sigma(-{u})");
            AssertClose.Scalar(LogSigmoid.Value((float)u), -Math.Log(1 + Math.Exp(-(float)u)), new Tolerance(1e-6, 1e-6), $"float log sigma({u})");
        }
    }

    [Fact]
    public void AlignedAndAntiAlignedEmbeddingsGiveAsymptoticValues()
    {
        // n = 2 along one axis: image 1 = e, image 2 = -3e, text 1 = -2e, text 2 = e. With t = 1e4 and
        // b = -10 every pair is as wrong as it can be:
        //   positives (1,1), (2,2): cos = -1, l = -1e4 - 10, -log sigma(l)  = 1e4 + 10 (+ e^-10010)
        //   negatives (1,2), (2,1): cos = +1, l =  1e4 - 10, -log sigma(-l) = 1e4 - 10 (+ e^-9990)
        // so L = (2 (1e4 + 10) + 2 (1e4 - 10)) / 2 = 2e4. Every dL/dl is +-1/2, so dL/db = 0 and
        // dL/dt' = sum dL/dl * t cos = 4 * (1/2) t = 2t. The gradients w.r.t. the normalised embeddings
        // are parallel to them, so those w.r.t. the raw embeddings vanish.
        double tPrime = Math.Log(1e4), b = -10;
        double t = Math.Exp(tPrime);
        double[] images = [1, 0, -3, 0];
        double[] texts = [-2, 0, 1, 0];
        foreach (int chunks in new[] { 1, 2 })
        {
            var result = SigmoidLoss.Compute(images, texts, 2, 2, tPrime, b, chunks: chunks, returnLogits: true);
            string where = $"D={chunks}";
            Assert.Equal([-t + b, t + b, t + b, -t + b], result.LogitsPerImage!);
            AssertClose.Scalar(result.Loss, 2 * t, new Tolerance(0, 1e-15), $"loss ({where})");
            AssertClose.Scalar(result.GradLogitScale, 2 * t, new Tolerance(0, 1e-15), $"dL/dt' ({where})");
            Assert.Equal(0.0, result.GradLogitBias);
            Assert.All(result.GradImageEmbeds.Concat(result.GradTextEmbeds), g => Assert.True(Math.Abs(g) < 1e-9 * t, $"gradient {g} should vanish ({where})"));
        }

        // float32: the same values, no overflow.
        var single = SigmoidLoss.Compute(images.Select(v => (float)v).ToArray(), texts.Select(v => (float)v).ToArray(), 2, 2, (float)tPrime, (float)b);
        AssertClose.Scalar(single.Loss, 2 * t, new Tolerance(0, 1e-6), "float32 loss");
        AssertClose.Scalar(single.GradLogitScale, 2 * t, new Tolerance(0, 1e-6), "float32 dL/dt'");
        Assert.True(float.IsFinite(single.GradLogitBias) && Math.Abs(single.GradLogitBias) < 1e-6f);

        // Softmax at the same logits: rows and columns each put the target at the bottom; finite.
        var softmax = SoftmaxLoss.Compute(images, texts, 2, 2, tPrime, b);
        // row 1: logits (-t, t), target 1: CE = log(e^-t + e^t) + t = 2t + log(1 + e^-2t) = 2t; same for all four.
        AssertClose.Scalar(softmax.Loss, 2 * t, new Tolerance(0, 1e-15), "softmax loss");
        Assert.True(double.IsFinite(softmax.GradLogitScale));
    }

    [Theory]
    [InlineData(LossKind.Sigmoid, 1)]
    [InlineData(LossKind.Sigmoid, 2)]
    [InlineData(LossKind.Softmax, 1)]
    public void RandomEmbeddingsAtTemperature1e4HaveCorrectFiniteGradients(LossKind kind, int chunks)
    {
        // t = 1e4 makes |logits| ~ 1e4 |cos|. Finite differences still work if the step follows the
        // scale on which L changes, ||x_i|| / t: truncation stays ~1e-12 relative and rounding
        // ~ eps |L| / h ~ 1e-16 * 1e4 / (1e-3 * 1e-4) = 1e-5 against gradients of size ~ t = 1e4.
        // The step in t' is 1e-7 (L changes on the scale 1/t there), in b 1e-3.
        var tolerance = new Tolerance(Atol: 1e-6 * 1e4, Rtol: 1e-6);
        var gen = from n in Gen.Choose(1, 3).Select(k => k * chunks)
                  from d in Gen.Choose(1, 4)
                  from b in LossCase.Uniform(-10, 10)
                  from seed in Gen.Choose(0, 1_000_000)
                  select new LossCase(n, d, Math.Log(1e4), b, seed);
        var options = new LossOptions(kind, chunks);
        Props.Check(gen, c =>
        {
            var result = PairwiseLoss.Compute(new Tensor([c.N, c.D], c.Images), new Tensor([c.N, c.D], c.Texts), c.LogitScale, c.LogitBias, options);
            Assert.True(double.IsFinite(result.Loss));
            Assert.All(result.GradImageEmbeds.Data.Concat(result.GradTextEmbeds.Data), g => Assert.True(double.IsFinite(g)));

            var expected = LossCase.FiniteDifferenceGradient(x =>
            {
                var (images, texts, t, b) = c.Unpack(x);
                return PairwiseLoss.Compute(new Tensor([c.N, c.D], images), new Tensor([c.N, c.D], texts), t, b, options).Loss;
            }, c.Packed(), p => p < 2 * c.N * c.D ? c.StepScale(p) / 1e4 : p == 2 * c.N * c.D ? 1e-4 : 1.0);
            var (fdImages, fdTexts, fdScale, fdBias) = c.Unpack(expected);
            string where = $"{kind} D={chunks} {c}";
            AssertClose.Array(result.GradImageEmbeds.Data, fdImages, tolerance, $"dL/d image_embeds ({where})");
            AssertClose.Array(result.GradTextEmbeds.Data, fdTexts, tolerance, $"dL/d text_embeds ({where})");
            AssertClose.Scalar(result.GradLogitScale, fdScale, tolerance, $"dL/dt' ({where})");
            AssertClose.Scalar(result.GradLogitBias, fdBias, tolerance, $"dL/db ({where})");
            return true;
        }, 20260401UL + (ulong)(int)kind * 10 + (ulong)chunks, output, maxTest: 20);
    }
}
