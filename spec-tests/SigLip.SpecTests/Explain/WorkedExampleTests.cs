using FsCheck.Fluent;
using MathNet.Numerics.Differentiation;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Layers;
using SigLip.Reference.Loss;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Loss;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Explain;

/// <summary>
/// The worked example (what `siglip explain` prints) against the loss module: the same float64
/// formulas computed by separate code, so they must agree to rounding. Tolerance
/// |a - e| &lt;= 1e-12 + 1e-12 |e| for every number; only summation order can differ, which costs
/// about 1e-15 at these sizes, and a wrong formula misses by O(1).
/// </summary>
public class WorkedExampleTests(ITestOutputHelper output)
{
    internal static readonly Tolerance Tight = new(Atol: 1e-12, Rtol: 1e-12);

    /// <summary>Sizes within the CLI's bounds, t' and b around the paper's starting values.</summary>
    private static FsCheck.Gen<(int N, int D, long Seed, double LogitScale, double LogitBias)> Cases() =>
        from n in Gen.Choose(1, 10)
        from d in Gen.Choose(1, 8)
        from seed in Gen.Choose(0, 1_000_000)
        from t in LossCase.Uniform(-2, 4)
        from b in LossCase.Uniform(-15, 5)
        select (n, d, (long)seed, t, b);

    [Fact]
    public void Sigmoid_steps_equal_the_loss_module()
    {
        Props.Check(Cases(), c =>
        {
            var e = WorkedExample.Random(c.N, c.D, c.Seed, c.LogitScale, c.LogitBias);
            AssertSigmoidMatchesLossModule(e);
            return true;
        }, seed: 20261127, output, maxTest: 60);
    }

    [Fact]
    public void Softmax_steps_equal_the_loss_module()
    {
        Props.Check(Cases(), c =>
        {
            var e = WorkedExample.Random(c.N, c.D, c.Seed, c.LogitScale, c.LogitBias);
            AssertSoftmaxMatchesLossModule(e);
            return true;
        }, seed: 20261128, output, maxTest: 60);
    }

    [Fact]
    public void Your_own_unnormalised_embeddings_give_the_loss_modules_numbers()
    {
        // Rows of length 0.3 .. 3 (LossCase), not the explain command's rounded ones.
        Props.Check(LossCase.Gen(maxN: 8, maxD: 6, tLo: -2, tHi: 4), c =>
        {
            var e = WorkedExample.FromEmbeddings(new Tensor([c.N, c.D], c.Images), new Tensor([c.N, c.D], c.Texts), c.LogitScale, c.LogitBias);
            AssertSigmoidMatchesLossModule(e);
            AssertSoftmaxMatchesLossModule(e);
            return true;
        }, seed: 20261129, output, maxTest: 40);
    }

    /// <summary>
    /// dL/dl_ij is not returned by the loss module (only its sums dL/db and, weighted, dL/dt' are),
    /// so each entry is checked against central differences of the paper's loss as a function of
    /// the logits, written here from the formula. 5-point stencil, step 1e-3: truncation ~1e-13,
    /// rounding ~1e-16 |L| / 1e-3; tolerance 1e-10 + 1e-7 |e|.
    /// </summary>
    [Fact]
    public void Logit_gradients_match_central_differences_of_the_loss_of_the_logits()
    {
        var tolerance = new Tolerance(Atol: 1e-10, Rtol: 1e-7);
        Props.Check(Cases(), c =>
        {
            var e = WorkedExample.Random(c.N, c.D, c.Seed, c.LogitScale, c.LogitBias);
            int n = e.Pairs;
            var sigmoidFd = FiniteDifferences(l => SigmoidLossOfLogits(l, n), e.Sigmoid.Logits.Data);
            AssertClose.Tensor(e.Sigmoid.GradLogits, new Tensor([n, n], sigmoidFd), tolerance, $"sigmoid dL/dl (n={n})");
            var softmaxFd = FiniteDifferences(l => SoftmaxLossOfLogits(l, n), e.Softmax.Logits.Data);
            AssertClose.Tensor(e.Softmax.GradLogits, new Tensor([n, n], softmaxFd), tolerance, $"softmax dL/dl (n={n})");
            return true;
        }, seed: 20261130, output, maxTest: 30);
    }

    [Fact]
    public void Labels_probabilities_and_log_likelihoods_follow_their_definitions()
    {
        var e = WorkedExample.Random(5, 3, seed: 11);
        int n = e.Pairs;
        for (int i = 0; i < n; i++)
        {
            double rowSum = 0, columnSum = 0;
            for (int j = 0; j < n; j++)
            {
                int ij = i * n + j;
                double l = e.Sigmoid.Logits.Data[ij];
                Assert.Equal(i == j ? 1.0 : -1.0, e.Sigmoid.Labels.Data[ij]);
                AssertClose.Scalar(e.Sigmoid.Probabilities.Data[ij], 1 / (1 + Math.Exp(-l)), Tight, $"sigma(l[{i},{j}])");
                double z = e.Sigmoid.Labels.Data[ij];
                AssertClose.Scalar(e.Sigmoid.LogSigmoids.Data[ij], Math.Log(1 / (1 + Math.Exp(-z * l))), Tight, $"log sigma(z l)[{i},{j}]");
                AssertClose.Scalar(l, e.Temperature * e.Cosines.Data[ij] + e.LogitBias, Tight, $"l[{i},{j}]");
                rowSum += e.Softmax.ImageToTextProbabilities.Data[ij];
                columnSum += e.Softmax.TextToImageProbabilities.Data[j * n + i];
            }
            AssertClose.Scalar(rowSum, 1, Tight, $"softmax row {i} sum");
            AssertClose.Scalar(columnSum, 1, Tight, $"softmax column {i} sum");
        }
        AssertClose.Scalar(e.Sigmoid.Loss, -e.Sigmoid.LogSigmoids.Data.Sum() / n, Tight, "L = -(1/n) sum log sigma");
        AssertClose.Scalar(e.Softmax.Loss, (e.Softmax.ImageLosses.Average() + e.Softmax.TextLosses.Average()) / 2, Tight, "softmax L");
        Assert.Equal(Math.Exp(SigmoidLoss.PaperInitialLogitScale), e.Temperature, 12);
        Assert.Equal(-10.0, e.LogitBias);
    }

    [Fact]
    public void Random_embeddings_are_seeded_rounded_and_nonzero()
    {
        var (a, b) = WorkedExample.RandomEmbeddings(6, 4, seed: 5);
        var (a2, b2) = WorkedExample.RandomEmbeddings(6, 4, seed: 5);
        var (a3, _) = WorkedExample.RandomEmbeddings(6, 4, seed: 6);
        Assert.Equal(a.Data, a2.Data);
        Assert.Equal(b.Data, b2.Data);
        Assert.NotEqual(a.Data, a3.Data);
        foreach (var v in a.Data.Concat(b.Data)) Assert.Equal(Math.Round(v, 2), v);
        // Width 1: rows rounding to zero must be redrawn (a zero vector has no direction).
        var (narrowImages, narrowTexts) = WorkedExample.RandomEmbeddings(10, 1, seed: 0);
        Assert.DoesNotContain(0.0, narrowImages.Data);
        Assert.DoesNotContain(0.0, narrowTexts.Data);
    }

    [Fact]
    public void One_pair_has_no_negatives_and_a_zero_softmax_loss()
    {
        var e = WorkedExample.Random(1, 3);
        Assert.Equal(0.0, e.Softmax.Loss);
        AssertClose.Scalar(e.Sigmoid.Loss, -Math.Log(1 / (1 + Math.Exp(-e.Sigmoid.Logits.Data[0]))), Tight, "n = 1 sigmoid loss");
        AssertSigmoidMatchesLossModule(e);
        AssertSoftmaxMatchesLossModule(e);
    }

    [Fact]
    public void Bad_input_is_refused_with_a_message()
    {
        var ok = new Tensor([2, 2], [1, 0, 0, 1]);
        var zeroRow = new Tensor([2, 2], [1, 0, 0, 0]);
        // A zero row: WorkedExample has no NormEpsilon, so the message must not suggest one.
        string zero = Assert.Throws<ArgumentException>(() => WorkedExample.FromEmbeddings(ok, zeroRow)).Message;
        Assert.Contains("text_embeds row 1 (counting from 0; pair 2 in `siglip explain`) is all zeros", zero);
        Assert.DoesNotContain("NormEpsilon", zero);
        Assert.Contains("image_embeds row 0", Assert.Throws<ArgumentException>(() => WorkedExample.FromEmbeddings(new Tensor([2, 2], [0, 0, 1, 1]), ok)).Message);
        Assert.Contains("[3, 2]", Assert.Throws<ArgumentException>(() => WorkedExample.FromEmbeddings(ok, new Tensor([3, 2], new double[6]))).Message);
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => WorkedExample.FromEmbeddings(new Tensor([2, 2], [1, double.NaN, 0, 1]), ok)).Message);
        // Rows whose squared length is no ordinary double: refused with a message instead of NaN or lost digits.
        Assert.Contains("image_embeds row 1", Assert.Throws<ArgumentException>(() => WorkedExample.FromEmbeddings(new Tensor([2, 2], [1, 0, 1e-200, 0]), ok)).Message);
        Assert.Contains("text_embeds row 0", Assert.Throws<ArgumentException>(() => WorkedExample.FromEmbeddings(ok, new Tensor([2, 2], [1e170, 1, 0, 1]))).Message);
        // Just inside the range the example still equals the loss module, which rescales.
        AssertSigmoidMatchesLossModule(WorkedExample.FromEmbeddings(new Tensor([2, 2], [3e-139, 4e-139, 0, 1]), ok));
        Assert.Contains("n = 0", Assert.Throws<ArgumentException>(() => WorkedExample.RandomEmbeddings(0, 3)).Message);
        Assert.Contains("d = 0", Assert.Throws<ArgumentException>(() => WorkedExample.RandomEmbeddings(3, 0)).Message);
    }

    /// <summary>Loss, logits, every gradient: against SigmoidLoss.Compute, PairwiseLoss and the dense Forward/Backward.</summary>
    internal static void AssertSigmoidMatchesLossModule(WorkedExampleResult e)
    {
        int n = e.Pairs, d = e.Width;
        string where = $"(n={n}, d={d}, t'={e.LogitScale:R}, b={e.LogitBias:R})";
        var s = e.Sigmoid;

        var dense = SigmoidLoss.Compute<double>(e.ImageEmbeds.Data, e.TextEmbeds.Data, n, d, e.LogitScale, e.LogitBias, returnLogits: true);
        AssertClose.Scalar(s.Loss, dense.Loss, Tight, $"sigmoid loss {where}");
        AssertClose.Tensor(s.Logits, new Tensor([n, n], dense.LogitsPerImage!), Tight, $"sigmoid logits {where}");
        AssertClose.Tensor(s.GradImageEmbeds, new Tensor([n, d], dense.GradImageEmbeds), Tight, $"sigmoid dL/du {where}");
        AssertClose.Tensor(s.GradTextEmbeds, new Tensor([n, d], dense.GradTextEmbeds), Tight, $"sigmoid dL/dv {where}");
        AssertClose.Scalar(s.GradLogitScale, dense.GradLogitScale, Tight, $"sigmoid dL/dt' {where}");
        AssertClose.Scalar(s.GradLogitBias, dense.GradLogitBias, Tight, $"sigmoid dL/db {where}");

        // The path the model takes (the fast path when it is on, since no logits are asked for).
        var model = PairwiseLoss.Compute(e.ImageEmbeds, e.TextEmbeds, e.LogitScale, e.LogitBias, LossOptions.Default);
        AssertClose.Scalar(s.Loss, model.Loss, Tight, $"sigmoid loss vs PairwiseLoss {where}");
        AssertClose.Tensor(s.GradImageEmbeds, model.GradImageEmbeds, Tight, $"sigmoid dL/du vs PairwiseLoss {where}");
        AssertClose.Tensor(s.GradTextEmbeds, model.GradTextEmbeds, Tight, $"sigmoid dL/dv vs PairwiseLoss {where}");
        AssertClose.Scalar(s.GradLogitScale, model.GradLogitScale, Tight, $"sigmoid dL/dt' vs PairwiseLoss {where}");
        AssertClose.Scalar(s.GradLogitBias, model.GradLogitBias, Tight, $"sigmoid dL/db vs PairwiseLoss {where}");

        // Normalised embeddings and the gradients with respect to them: L2Normalize and the dense Forward/Backward.
        var (x, y) = Normalise(e, out _, out _);
        AssertClose.Tensor(e.ImageNormed, new Tensor([n, d], x), Tight, $"x = u/||u|| {where}");
        AssertClose.Tensor(e.TextNormed, new Tensor([n, d], y), Tight, $"y = v/||v|| {where}");
        double t = Math.Exp(e.LogitScale);
        var logits = new double[n * n];
        double loss = SigmoidLoss.Forward(logits, x, y, n, d, t, e.LogitBias);
        var dx = new double[n * d];
        var dy = new double[n * d];
        var grads = SigmoidLoss.Backward(dx, dy, logits, x, y, n, d, t);
        AssertClose.Scalar(s.Loss, loss, Tight, $"sigmoid loss vs Forward {where}");
        AssertClose.Tensor(s.GradImageNormed, new Tensor([n, d], dx), Tight, $"sigmoid dL/dx {where}");
        AssertClose.Tensor(s.GradTextNormed, new Tensor([n, d], dy), Tight, $"sigmoid dL/dy {where}");
        AssertClose.Scalar(s.GradLogitBias, grads.LogitBias, Tight, $"sigmoid dL/db vs Backward {where}");
    }

    /// <summary>Loss, logits, log-sum-exps, every gradient: against SoftmaxLoss.Compute, PairwiseLoss and Forward/Backward.</summary>
    internal static void AssertSoftmaxMatchesLossModule(WorkedExampleResult e)
    {
        int n = e.Pairs, d = e.Width;
        string where = $"(n={n}, d={d}, t'={e.LogitScale:R})";
        var s = e.Softmax;

        var full = SoftmaxLoss.Compute<double>(e.ImageEmbeds.Data, e.TextEmbeds.Data, n, d, e.LogitScale, e.LogitBias, returnLogits: true);
        AssertClose.Scalar(s.Loss, full.Loss, Tight, $"softmax loss {where}");
        AssertClose.Tensor(s.Logits, new Tensor([n, n], full.LogitsPerImage!), Tight, $"softmax logits {where}");
        AssertClose.Tensor(s.GradImageEmbeds, new Tensor([n, d], full.GradImageEmbeds), Tight, $"softmax dL/du {where}");
        AssertClose.Tensor(s.GradTextEmbeds, new Tensor([n, d], full.GradTextEmbeds), Tight, $"softmax dL/dv {where}");
        AssertClose.Scalar(s.GradLogitScale, full.GradLogitScale, Tight, $"softmax dL/dt' {where}");

        var model = PairwiseLoss.Compute(e.ImageEmbeds, e.TextEmbeds, e.LogitScale, e.LogitBias, new LossOptions(LossKind.Softmax));
        AssertClose.Scalar(s.Loss, model.Loss, Tight, $"softmax loss vs PairwiseLoss {where}");
        AssertClose.Tensor(s.GradImageEmbeds, model.GradImageEmbeds, Tight, $"softmax dL/du vs PairwiseLoss {where}");
        AssertClose.Scalar(s.GradLogitScale, model.GradLogitScale, Tight, $"softmax dL/dt' vs PairwiseLoss {where}");
        Assert.Equal(0.0, model.GradLogitBias);

        var (x, y) = Normalise(e, out _, out _);
        double t = Math.Exp(e.LogitScale);
        var logits = new double[n * n];
        var rows = new double[n];
        var columns = new double[n];
        double loss = SoftmaxLoss.Forward(logits, rows, columns, x, y, n, d, t);
        var dx = new double[n * d];
        var dy = new double[n * d];
        SoftmaxLoss.Backward(dx, dy, logits, rows, columns, x, y, n, d, t);
        AssertClose.Scalar(s.Loss, loss, Tight, $"softmax loss vs Forward {where}");
        AssertClose.Array(s.RowLogSumExp.ToArray(), rows, Tight, $"softmax row log-sum-exp {where}");
        AssertClose.Array(s.ColumnLogSumExp.ToArray(), columns, Tight, $"softmax column log-sum-exp {where}");
        AssertClose.Tensor(s.GradImageNormed, new Tensor([n, d], dx), Tight, $"softmax dL/dx {where}");
        AssertClose.Tensor(s.GradTextNormed, new Tensor([n, d], dy), Tight, $"softmax dL/dy {where}");

        // P and Q from the module's saved log-sum-exps.
        var p = new double[n * n];
        var q = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                p[i * n + j] = Math.Exp(logits[i * n + j] - rows[i]);
                q[i * n + j] = Math.Exp(logits[i * n + j] - columns[j]);
            }
        AssertClose.Tensor(s.ImageToTextProbabilities, new Tensor([n, n], p), Tight, $"softmax P {where}");
        AssertClose.Tensor(s.TextToImageProbabilities, new Tensor([n, n], q), Tight, $"softmax Q {where}");
    }

    private static (double[] X, double[] Y) Normalise(WorkedExampleResult e, out double[] imageNorms, out double[] textNorms)
    {
        int n = e.Pairs, d = e.Width;
        var x = new double[n * d];
        var y = new double[n * d];
        imageNorms = new double[n];
        textNorms = new double[n];
        L2Normalize.Forward(x, imageNorms, e.ImageEmbeds.Data, n, d, 0.0);
        L2Normalize.Forward(y, textNorms, e.TextEmbeds.Data, n, d, 0.0);
        return (x, y);
    }

    // The paper's L = -(1/n) sum_ij log sigma(z_ij l_ij), from the formula (|l| stays below ~60 here).
    private static double SigmoidLossOfLogits(double[] logits, int n)
    {
        double sum = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double z = i == j ? 1 : -1;
                sum += Math.Log(1 / (1 + Math.Exp(-z * logits[i * n + j])));
            }
        return -sum / n;
    }

    // CLIP's L = (1/2n) sum_i [-log softmax_row_i(l)_ii - log softmax_column_i(l)_ii].
    private static double SoftmaxLossOfLogits(double[] logits, int n)
    {
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            double row = 0, column = 0;
            for (int k = 0; k < n; k++)
            {
                row += Math.Exp(logits[i * n + k]);
                column += Math.Exp(logits[k * n + i]);
            }
            total += Math.Log(row) - logits[i * n + i] + Math.Log(column) - logits[i * n + i];
        }
        return total / (2 * n);
    }

    private static double[] FiniteDifferences(Func<double[], double> f, double[] at)
    {
        var gradient = new double[at.Length];
        for (int p = 0; p < at.Length; p++)
        {
            var derivative = new NumericalDerivative(5, 2) { StepType = StepType.Absolute, StepSize = 1e-3 };
            gradient[p] = derivative.EvaluatePartialDerivative(f, (double[])at.Clone(), p, 1);
        }
        return gradient;
    }
}
