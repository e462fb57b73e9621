using FsCheck.Fluent;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Loss;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Loss;

/// <summary>The loss against the paper's Algorithm 1, its invariances, float32, and n = 1.</summary>
public sealed class SigmoidLossPropertyTests(ITestOutputHelper output)
{
    private static Tensor Matrix(int n, int d, double[] data) => new([n, d], data);

    /// <summary>
    /// Algorithm 1 of the paper, transcribed loop by loop (no code shared with the implementation):
    ///   t = exp(t_prime); zimg = l2_normalize(img_emb); ztxt = l2_normalize(txt_emb)
    ///   logits = dot(zimg, ztxt.T) * t + b
    ///   labels = 2 * eye(n) - ones(n)
    ///   l = -sum(log_sigmoid(labels * logits)) / n
    /// </summary>
    private static double PaperAlgorithm1(double[] imgEmb, double[] txtEmb, int n, int dim, double tPrime, double b)
    {
        double t = Math.Exp(tPrime);
        double[] Normalize(double[] e)
        {
            var z = new double[n * dim];
            for (int i = 0; i < n; i++)
            {
                double norm = Math.Sqrt(Enumerable.Range(0, dim).Sum(k => e[i * dim + k] * e[i * dim + k]));
                for (int k = 0; k < dim; k++) z[i * dim + k] = e[i * dim + k] / norm;
            }
            return z;
        }
        var zimg = Normalize(imgEmb);
        var ztxt = Normalize(txtEmb);
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double dot = 0;
                for (int k = 0; k < dim; k++) dot += zimg[i * dim + k] * ztxt[j * dim + k];
                double logit = dot * t + b;
                double label = i == j ? 1 : -1;
                double u = label * logit;
                sum += -Math.Log(1 + Math.Exp(-u)); // log_sigmoid, the textbook way (fine for |u| < 700)
            }
        }
        return -sum / n;
    }

    [Fact]
    public void LossEqualsPaperAlgorithm1()
    {
        // The textbook log(1 + exp(-u)) loses up to an ulp of 1 per term where the implementation
        // keeps the digits (log1p): at most n^2 * 1.1e-16 / n absolute, so atol 1e-14 for n <= 12.
        var tolerance = new Tolerance(Atol: 1e-14, Rtol: 1e-12);
        Props.Check(LossCase.Gen(maxN: 12, maxD: 6, tLo: -2, tHi: 3), c =>
        {
            double expected = PaperAlgorithm1(c.Images, c.Texts, c.N, c.D, c.LogitScale, c.LogitBias);
            var result = PairwiseLoss.Compute(Matrix(c.N, c.D, c.Images), Matrix(c.N, c.D, c.Texts), c.LogitScale, c.LogitBias, LossOptions.Default);
            AssertClose.Scalar(result.Loss, expected, tolerance, $"loss vs Algorithm 1 ({c})");
            return true;
        }, 20260301UL, output, maxTest: 100);
    }

    [Fact]
    public void LossDividesByNNotNSquared()
    {
        // With x_i . y_j = 0 for all pairs (orthogonal rows) every logit is b, so
        // L = -(1/n) [n log sigma(b) + (n^2 - n) log sigma(-b)]: a divide-by-n^2 slip shows at once.
        const int n = 3;
        // Width 6: image i = e_i, text i = 2 e_(3+i), so every image is orthogonal to every text.
        var images = new double[n * 6];
        var texts = new double[n * 6];
        for (int i = 0; i < n; i++)
        {
            images[i * 6 + i] = 1.0;
            texts[i * 6 + n + i] = 2.0;
        }
        const double b = -1.5;
        var result = SigmoidLoss.Compute(images, texts, n, 6, 0.3, b);
        double expected = -(n * Math.Log(1 / (1 + Math.Exp(-b))) + (n * n - n) * Math.Log(1 / (1 + Math.Exp(b)))) / n;
        AssertClose.Scalar(result.Loss, expected, new Tolerance(0, 1e-14), "loss of orthogonal pairs");
    }

    [Theory]
    [InlineData(LossKind.Sigmoid)]
    [InlineData(LossKind.Softmax)]
    public void PermutingPairsJointlyLeavesLossUnchanged(LossKind kind)
    {
        var options = new LossOptions(kind);
        var gen = from c in LossCase.Gen(maxN: 10)
                  from permutationSeed in Gen.Choose(0, 1_000_000)
                  select (c, permutationSeed);
        Props.Check(gen, g =>
        {
            var (c, permutationSeed) = g;
            var permutation = Enumerable.Range(0, c.N).ToArray();
            new Random(permutationSeed).Shuffle(permutation);
            double[] Permute(double[] rows)
            {
                var result = new double[rows.Length];
                for (int i = 0; i < c.N; i++) Array.Copy(rows, permutation[i] * c.D, result, i * c.D, c.D);
                return result;
            }
            var original = PairwiseLoss.Compute(Matrix(c.N, c.D, c.Images), Matrix(c.N, c.D, c.Texts), c.LogitScale, c.LogitBias, options);
            var permuted = PairwiseLoss.Compute(Matrix(c.N, c.D, Permute(c.Images)), Matrix(c.N, c.D, Permute(c.Texts)), c.LogitScale, c.LogitBias, options);
            string where = $"{kind}, permutation [{string.Join(",", permutation)}], {c}";
            AssertClose.Scalar(permuted.Loss, original.Loss, new Tolerance(0, 1e-13), $"loss ({where})");
            // ...and the gradients are the original ones, permuted the same way.
            AssertClose.Array(permuted.GradImageEmbeds.Data, Permute(original.GradImageEmbeds.Data), new Tolerance(1e-14, 1e-12), $"dL/d image_embeds ({where})");
            AssertClose.Array(permuted.GradTextEmbeds.Data, Permute(original.GradTextEmbeds.Data), new Tolerance(1e-14, 1e-12), $"dL/d text_embeds ({where})");
            return true;
        }, kind == LossKind.Sigmoid ? 20260302UL : 20260303UL, output);
    }

    [Theory]
    [InlineData(LossKind.Sigmoid)]
    [InlineData(LossKind.Softmax)]
    public void SwappingImageAndTextRolesLeavesLossUnchanged(LossKind kind)
    {
        var options = new LossOptions(kind);
        Props.Check(LossCase.Gen(maxN: 10), c =>
        {
            var forward = PairwiseLoss.Compute(Matrix(c.N, c.D, c.Images), Matrix(c.N, c.D, c.Texts), c.LogitScale, c.LogitBias, options, returnLogits: true);
            var swapped = PairwiseLoss.Compute(Matrix(c.N, c.D, c.Texts), Matrix(c.N, c.D, c.Images), c.LogitScale, c.LogitBias, options, returnLogits: true);
            string where = $"{kind}, {c}";
            AssertClose.Scalar(swapped.Loss, forward.Loss, new Tolerance(0, 1e-13), $"loss ({where})");
            AssertClose.Array(swapped.GradImageEmbeds.Data, forward.GradTextEmbeds.Data, new Tolerance(1e-14, 1e-12), $"gradients swap ({where})");
            AssertClose.Scalar(swapped.GradLogitScale, forward.GradLogitScale, new Tolerance(1e-14, 1e-12), $"dL/dt' ({where})");
            // The logits matrix is transposed (HF: logits_per_text = logits_per_image^T).
            for (int i = 0; i < c.N; i++)
                for (int j = 0; j < c.N; j++)
                    Assert.Equal(forward.LogitsPerImage!.Data[i * c.N + j], swapped.LogitsPerImage!.Data[j * c.N + i], 12);
            return true;
        }, kind == LossKind.Sigmoid ? 20260304UL : 20260305UL, output);
    }

    [Theory]
    [InlineData(LossKind.Sigmoid)]
    [InlineData(LossKind.Softmax)]
    public void Float32AgreesWithFloat64(LossKind kind)
    {
        // float32's unit roundoff is u = 2^-24 ~ 6e-8. The inputs are rounded to float32 first, so
        // both runs see the same numbers. A dot product of unit rows of length d <= 5 is then off by
        // <= d u, a logit t<x,y> + b by <= (t d + |b|) u <= ~1e-5 (t <= e^2.5 ~ 12, |b| <= 12); sigma
        // and log sigma have slopes <= 1, and sums run over <= n = 6 terms. So every quantity is held
        // to 2e-5 of the largest it can be: the loss to 2e-5 (1 + L); an embedding gradient row to
        // 2e-5 t / ||x_i|| (|dL/dx_i| <= t / ||x_i||: n terms of at most t/n through the projection
        // onto the unit sphere, which divides by ||x_i||); dL/dt' to 2e-5 t; dL/db to 2e-5.
        // Measured over these 100 cases: below 2e-6 of these scales. A formula error is O(1) of them.
        var options = new LossOptions(kind);
        Props.Check(LossCase.Gen(), c =>
        {
            var images32 = c.Images.Select(v => (float)v).ToArray();
            var texts32 = c.Texts.Select(v => (float)v).ToArray();
            float t32 = (float)c.LogitScale, b32 = (float)c.LogitBias;
            var single = PairwiseLoss.Compute(images32, texts32, c.N, c.D, t32, b32, options);
            var reference = PairwiseLoss.Compute(
                images32.Select(v => (double)v).ToArray(), texts32.Select(v => (double)v).ToArray(), c.N, c.D, (double)t32, (double)b32, options);
            string where = $"{kind}, {c}";
            double t = Math.Exp(t32);
            AssertClose.Scalar(single.Loss, reference.Loss, ScaledBy(1 + Math.Abs(reference.Loss)), $"float32 loss ({where})");
            // Embedding gradients compared row by row in units of t / ||x_i|| (their largest possible size).
            var imageRows = images32.Select(v => (double)v).ToArray();
            var textRows = texts32.Select(v => (double)v).ToArray();
            AssertClose.Array(InUnits(ToDouble(single.GradImageEmbeds), imageRows), InUnits(reference.GradImageEmbeds, imageRows), ScaledBy(1), $"float32 dL/d image_embeds in units of t/||x_i|| ({where})");
            AssertClose.Array(InUnits(ToDouble(single.GradTextEmbeds), textRows), InUnits(reference.GradTextEmbeds, textRows), ScaledBy(1), $"float32 dL/d text_embeds in units of t/||y_j|| ({where})");
            AssertClose.Scalar(single.GradLogitScale, reference.GradLogitScale, ScaledBy(t), $"float32 dL/dt' ({where})");
            AssertClose.Scalar(single.GradLogitBias, reference.GradLogitBias, ScaledBy(1), $"float32 dL/db ({where})");

            double[] InUnits(double[] gradient, double[] rows)
            {
                var scaled = new double[gradient.Length];
                for (int e = 0; e < gradient.Length; e++) scaled[e] = gradient[e] * LossCase.RowNorm(rows, c.D, e / c.D) / t;
                return scaled;
            }
            return true;
        }, kind == LossKind.Sigmoid ? 20260306UL : 20260307UL, output, maxTest: 100);

        static Tolerance ScaledBy(double scale) => new(Atol: 2e-5 * scale, Rtol: 0);
        static double[] ToDouble(float[] values) => values.Select(v => (double)v).ToArray();
    }

    [Fact]
    public void SinglePairWorks()
    {
        // n = 1: L = -log sigma(t cos + b), one positive and no negatives.
        double[] image = [1, 2, 2];   // norm 3
        double[] text = [0, 3, 4];    // norm 5, cos = (6 + 8) / 15
        const double tPrime = 0.7, b = -2;
        double logit = Math.Exp(tPrime) * 14.0 / 15.0 + b;
        var result = SigmoidLoss.Compute(image, text, 1, 3, tPrime, b, returnLogits: true);
        AssertClose.Scalar(result.Loss, Math.Log(1 + Math.Exp(-logit)), new Tolerance(0, 1e-14), "n=1 loss");
        AssertClose.Scalar(result.LogitsPerImage![0], logit, new Tolerance(0, 1e-14), "n=1 logit");
        // dL/db = -sigma(-l) and dL/dt' = -sigma(-l) t cos.
        double sigmaMinus = 1 / (1 + Math.Exp(logit));
        AssertClose.Scalar(result.GradLogitBias, -sigmaMinus, new Tolerance(0, 1e-14), "n=1 dL/db");
        AssertClose.Scalar(result.GradLogitScale, -sigmaMinus * Math.Exp(tPrime) * 14.0 / 15.0, new Tolerance(0, 1e-14), "n=1 dL/dt'");
        Assert.Equal(1, result.LogitsHeldAtOnce);

        // The softmax loss of one pair is 0: each softmax has a single entry.
        var softmax = SoftmaxLoss.Compute(image, text, 1, 3, tPrime, b);
        Assert.Equal(0.0, softmax.Loss);
        Assert.All(softmax.GradImageEmbeds, g => Assert.Equal(0.0, g));
        Assert.Equal(0.0, softmax.GradLogitScale);
    }

    [Fact]
    public void PaperInitialValuesAreNamed()
    {
        Assert.True(Math.Log(10) == SigmoidLoss.PaperInitialLogitScale, $"{SigmoidLoss.PaperInitialLogitScale:R} is not ln 10 = {Math.Log(10):R}");
        Assert.True(SigmoidLoss.PaperInitialLogitBias == -10.0);
    }
}
