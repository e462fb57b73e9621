using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Loss;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Loss;

/// <summary>
/// Every hand-written gradient of the pairwise losses (both unnormalised embedding matrices, t', b)
/// against central finite differences of the loss itself, in float64.
/// </summary>
public sealed class LossGradientTests(ITestOutputHelper output)
{
    // 5-point central differences with steps 1e-3 x (row norm) have truncation error ~1e-12 relative
    // and rounding error ~ eps |L| / h <~ 1e-10 for t <= e^2.5 ~ 12 and n <= 6. The allowance is far
    // above that and still ~1e5 times below any real mistake (a dropped term changes a gradient by O(t/n)).
    private static readonly Tolerance FiniteDifference = new(Atol: 1e-7, Rtol: 1e-6);

    public static TheoryData<string> Kinds => new() { "sigmoid", "chunked", "softmax" };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void GradientsMatchFiniteDifferences(string kind)
    {
        ulong seed = kind switch { "sigmoid" => 20260101UL, "chunked" => 20260102UL, _ => 20260103UL };
        Props.Check(LossCase.Gen(), c =>
        {
            // The chunked form: the largest proper divisor of n (every device holds >= 1 pair).
            int chunks = kind == "chunked" ? LargestDivisorBelow(c.N) : 1;
            var options = new LossOptions(kind == "softmax" ? LossKind.Softmax : LossKind.Sigmoid, chunks);
            var result = PairwiseLoss.Compute(new Tensor([c.N, c.D], c.Images), new Tensor([c.N, c.D], c.Texts), c.LogitScale, c.LogitBias, options);

            double Loss(double[] x)
            {
                var (images, texts, t, b) = c.Unpack(x);
                return PairwiseLoss.Compute(new Tensor([c.N, c.D], images), new Tensor([c.N, c.D], texts), t, b, options).Loss;
            }
            var expected = LossCase.FiniteDifferenceGradient(Loss, c.Packed(), c.StepScale);
            var (fdImages, fdTexts, fdScale, fdBias) = c.Unpack(expected);
            string where = $"{kind} D={chunks} {c}";
            AssertClose.Array(result.GradImageEmbeds.Data, fdImages, FiniteDifference, $"dL/d image_embeds ({where})");
            AssertClose.Array(result.GradTextEmbeds.Data, fdTexts, FiniteDifference, $"dL/d text_embeds ({where})");
            AssertClose.Scalar(result.GradLogitScale, fdScale, FiniteDifference, $"dL/dt' ({where})");
            AssertClose.Scalar(result.GradLogitBias, fdBias, FiniteDifference, $"dL/db ({where})");
            if (kind == "softmax") Assert.Equal(0.0, result.GradLogitBias); // b is not used by CLIP's loss
            return true;
        }, seed, output, maxTest: 40);
    }

    [Fact]
    public void GradientsMatchFiniteDifferencesWithNormEpsilon()
    {
        // big_vision's epsilon (exaggerated to 0.05 so that it matters) must be differentiated too.
        Props.Check(LossCase.Gen(), c =>
        {
            var options = new LossOptions(NormEpsilon: 0.05);
            var result = PairwiseLoss.Compute(new Tensor([c.N, c.D], c.Images), new Tensor([c.N, c.D], c.Texts), c.LogitScale, c.LogitBias, options);
            var expected = LossCase.FiniteDifferenceGradient(x =>
            {
                var (images, texts, t, b) = c.Unpack(x);
                return PairwiseLoss.Compute(new Tensor([c.N, c.D], images), new Tensor([c.N, c.D], texts), t, b, options).Loss;
            }, c.Packed(), c.StepScale);
            var (fdImages, fdTexts, _, _) = c.Unpack(expected);
            AssertClose.Array(result.GradImageEmbeds.Data, fdImages, FiniteDifference, $"dL/d image_embeds (eps 0.05, {c})");
            AssertClose.Array(result.GradTextEmbeds.Data, fdTexts, FiniteDifference, $"dL/d text_embeds (eps 0.05, {c})");
            return true;
        }, 20260104UL, output, maxTest: 25);
    }

    internal static int LargestDivisorBelow(int n)
    {
        for (int k = n / 2; k > 1; k--) if (n % k == 0) return k;
        return n; // prime n (or 1): D = n, one pair per device
    }
}
