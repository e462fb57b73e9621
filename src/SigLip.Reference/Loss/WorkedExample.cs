using SigLip.Reference.Numerics;

namespace SigLip.Reference.Loss;

// A worked example of the sigmoid (SigLIP) and softmax (CLIP) losses for learners: every
// intermediate matrix of the forward and the backward, written as plain loops, one step at a time.
// `siglip explain` prints it. It is computed here independently of SigmoidLoss / SoftmaxLoss (only
// the stable log-sigmoid is shared), so that the tests can hold the two against each other.
// Derivations: docs/sigmoid-loss.md (same notation).
//
// Dimension legend: n = pairs in the batch, d = embedding width.
//   u_i, v_j     raw image and text embeddings                     [n, d]
//   x_i, y_j     their L2-normalised versions (epsilon 0, as HF)   [n, d]
//   t = exp(t')  temperature; b the bias (sigmoid only)
//   l_ij         logits, row = image i, column = text j            [n, n]
//   z_ij         labels: +1 if i == j (a matching pair) else -1    [n, n]

/// <summary>
/// The sigmoid and softmax losses worked out step by step on a small batch, with every
/// intermediate matrix kept (what <c>siglip explain</c> prints). Plain loops, written to be read.
/// </summary>
public static class WorkedExample
{
    /// <summary>Batch size of <c>siglip explain</c> when none is given.</summary>
    public const int DefaultPairs = 4;

    /// <summary>Embedding width of <c>siglip explain</c> when none is given (small, so tables stay readable).</summary>
    public const int DefaultWidth = 3;

    /// <summary>How far each random text embedding lies from its image (standard deviation of the added noise).</summary>
    public const double TextNoise = 0.5;

    /// <summary>
    /// Random embeddings from a seed (the same numbers on every machine): image i is a standard
    /// normal vector, text i is image i plus normal noise of standard deviation <see cref="TextNoise"/>,
    /// so that matching pairs point roughly the same way, as they would after some training.
    /// Every value is rounded to two decimals, so what is printed is exactly what is used.
    /// </summary>
    /// <returns>Image and text embeddings [n, d], unnormalised.</returns>
    public static ExampleEmbeddings RandomEmbeddings(int n = DefaultPairs, int d = DefaultWidth, long seed = 0)
    {
        if (n < 1) throw new ArgumentException($"The number of pairs n = {n} must be at least 1.");
        if (d < 1) throw new ArgumentException($"The embedding width d = {d} must be at least 1.");
        var random = new DeterministicRandom(seed);
        var images = new double[n * d];   // [n, d]
        var texts = new double[n * d];    // [n, d]
        for (int i = 0; i < n; i++)
        {
            // Redraw a pair whose row would round to all zeros: a zero vector has no direction.
            do
            {
                for (int k = 0; k < d; k++)
                {
                    double image = random.NextGaussian();
                    images[i * d + k] = Round2(image);
                    texts[i * d + k] = Round2(image + TextNoise * random.NextGaussian());
                }
            }
            while (IsZeroRow(images, i, d) || IsZeroRow(texts, i, d));
        }
        return new ExampleEmbeddings(new Tensor([n, d], images), new Tensor([n, d], texts));
    }

    /// <summary>The worked example on seeded random embeddings (<see cref="RandomEmbeddings"/>).</summary>
    /// <param name="logitScale">t' (t = exp(t')); the paper starts at ln 10.</param>
    /// <param name="logitBias">b; the paper starts at -10.</param>
    public static WorkedExampleResult Random(
        int n = DefaultPairs, int d = DefaultWidth, long seed = 0,
        double logitScale = SigmoidLoss.PaperInitialLogitScale, double logitBias = SigmoidLoss.PaperInitialLogitBias)
    {
        var (images, texts) = RandomEmbeddings(n, d, seed);
        return FromEmbeddings(images, texts, logitScale, logitBias);
    }

    /// <summary>
    /// The worked example on your own raw embeddings [n, d] (row i of each is pair i).
    /// Bad input (shapes, NaN/Inf, a zero row, t' too large) throws ArgumentException saying what is wrong.
    /// </summary>
    public static WorkedExampleResult FromEmbeddings(
        Tensor imageEmbeds, Tensor textEmbeds,
        double logitScale = SigmoidLoss.PaperInitialLogitScale, double logitBias = SigmoidLoss.PaperInitialLogitBias)
    {
        var (n, d) = LossInputValidation.CheckShapes(imageEmbeds, textEmbeds);
        // Checked here first: the loss module's message would suggest a NormEpsilon, which this example does not have.
        RequireNonZeroRows(imageEmbeds.Data, n, d, LossInputValidation.ImageName);
        RequireNonZeroRows(textEmbeds.Data, n, d, LossInputValidation.TextName);
        LossInputValidation.Check(imageEmbeds.Data, textEmbeds.Data, n, d, logitScale, logitBias, normEpsilon: 0.0, chunks: 1, softmax: false);
        var u = (double[])imageEmbeds.Data.Clone();   // [n, d] raw images
        var v = (double[])textEmbeds.Data.Clone();    // [n, d] raw texts

        // Step 1: L2-normalise every row: x_i = u_i / ||u_i||, y_j = v_j / ||v_j||.
        var imageNorms = RowNorms(u, n, d);            // [n]
        var textNorms = RowNorms(v, n, d);             // [n]
        var x = DivideRows(u, imageNorms, n, d);       // [n, d]
        var y = DivideRows(v, textNorms, n, d);        // [n, d]

        // Step 2: cosine similarities c_ij = <x_i, y_j>, shared by both losses.
        var cosines = new double[n * n];               // [n, n]
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                cosines[i * n + j] = Dot(x, i, y, j, d);

        double t = Math.Exp(logitScale);
        var sigmoid = Sigmoid(n, d, x, y, imageNorms, textNorms, cosines, t, logitBias);
        var softmax = Softmax(n, d, x, y, imageNorms, textNorms, cosines, t);

        return new WorkedExampleResult(
            n, d, logitScale, t, logitBias,
            new Tensor([n, d], u), new Tensor([n, d], v),
            imageNorms, textNorms,
            new Tensor([n, d], x), new Tensor([n, d], y),
            new Tensor([n, n], cosines),
            sigmoid, softmax);
    }

    private static SigmoidSteps Sigmoid(int n, int d, double[] x, double[] y, double[] imageNorms, double[] textNorms, double[] cosines, double t, double b)
    {
        var logits = new double[n * n];         // [n, n] l_ij = t c_ij + b
        var labels = new double[n * n];         // [n, n] z_ij
        var probabilities = new double[n * n];  // [n, n] sigma(l_ij): P(image i matches text j), each pair on its own
        var logSigmoids = new double[n * n];    // [n, n] log sigma(z_ij l_ij)
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                int ij = i * n + j;
                logits[ij] = t * cosines[ij] + b;
                labels[ij] = i == j ? 1.0 : -1.0;
                probabilities[ij] = LogSigmoid.Sigmoid(logits[ij]);
                logSigmoids[ij] = LogSigmoid.Value(labels[ij] * logits[ij]);
                sum += logSigmoids[ij];
            }
        }
        // L = -(1/n) sum_ij log sigma(z_ij l_ij): divided by n, not n^2.
        double loss = -sum / n;

        // Backward. d/du log sigma(u) = sigma(-u), so dL/dl_ij = -(1/n) z_ij sigma(-z_ij l_ij).
        var gradLogits = new double[n * n];     // [n, n]
        for (int ij = 0; ij < n * n; ij++)
            gradLogits[ij] = -labels[ij] * LogSigmoid.Sigmoid(-labels[ij] * logits[ij]) / n;

        // l_ij = t <x_i, y_j> + b  =>  dL/db = sum dL/dl_ij,  dL/dt' = sum dL/dl_ij t c_ij  (dt/dt' = t).
        double gradBias = 0, gradLogitScale = 0;
        for (int ij = 0; ij < n * n; ij++)
        {
            gradBias += gradLogits[ij];
            gradLogitScale += gradLogits[ij] * t * cosines[ij];
        }
        var (gradX, gradY) = BilinearBackward(gradLogits, x, y, n, d, t);
        return new SigmoidSteps(
            new Tensor([n, n], logits), new Tensor([n, n], labels), new Tensor([n, n], probabilities),
            new Tensor([n, n], logSigmoids), loss, new Tensor([n, n], gradLogits),
            new Tensor([n, d], gradX), new Tensor([n, d], gradY), gradLogitScale, gradBias,
            new Tensor([n, d], NormalizeBackward(gradX, x, imageNorms, n, d)),
            new Tensor([n, d], NormalizeBackward(gradY, y, textNorms, n, d)));
    }

    private static SoftmaxSteps Softmax(int n, int d, double[] x, double[] y, double[] imageNorms, double[] textNorms, double[] cosines, double t)
    {
        var logits = new double[n * n];         // [n, n] l_ij = t c_ij (no bias: it would cancel)
        for (int ij = 0; ij < n * n; ij++) logits[ij] = t * cosines[ij];

        // Image -> text: each ROW is a softmax over the n texts. Text -> image: each COLUMN over the n images.
        var rowLogSumExp = new double[n];       // [n] R_i = log sum_j exp(l_ij)
        var columnLogSumExp = new double[n];    // [n] C_j = log sum_i exp(l_ij)
        for (int i = 0; i < n; i++) rowLogSumExp[i] = LogSumExp(logits, start: i * n, stride: 1, n);
        for (int j = 0; j < n; j++) columnLogSumExp[j] = LogSumExp(logits, start: j, stride: n, n);
        var imageToText = new double[n * n];    // [n, n] P_ij = exp(l_ij - R_i): rows sum to 1
        var textToImage = new double[n * n];    // [n, n] Q_ij = exp(l_ij - C_j): columns sum to 1
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                imageToText[i * n + j] = Math.Exp(logits[i * n + j] - rowLogSumExp[i]);
                textToImage[i * n + j] = Math.Exp(logits[i * n + j] - columnLogSumExp[j]);
            }
        }

        // Cross-entropy of the matching pair: -log P_ii for image i, -log Q_ii for text i.
        var imageLosses = new double[n];        // [n] R_i - l_ii
        var textLosses = new double[n];         // [n] C_i - l_ii
        double imageSum = 0, textSum = 0;
        for (int i = 0; i < n; i++)
        {
            imageLosses[i] = rowLogSumExp[i] - logits[i * n + i];
            textLosses[i] = columnLogSumExp[i] - logits[i * n + i];
            imageSum += imageLosses[i];
            textSum += textLosses[i];
        }
        double imageToTextLoss = imageSum / n, textToImageLoss = textSum / n;
        double loss = (imageToTextLoss + textToImageLoss) / 2;

        // Backward. dR_i/dl_ij = P_ij and dC_j/dl_ij = Q_ij, so dL/dl_ij = (P_ij + Q_ij - 2 [i == j]) / 2n.
        var gradLogits = new double[n * n];     // [n, n]
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                gradLogits[i * n + j] = (imageToText[i * n + j] + textToImage[i * n + j] - (i == j ? 2.0 : 0.0)) / (2.0 * n);

        // l_ij = t <x_i, y_j>  =>  dL/dt' = sum dL/dl_ij t c_ij; no b, so no dL/db.
        double gradLogitScale = 0;
        for (int ij = 0; ij < n * n; ij++) gradLogitScale += gradLogits[ij] * t * cosines[ij];
        var (gradX, gradY) = BilinearBackward(gradLogits, x, y, n, d, t);
        return new SoftmaxSteps(
            new Tensor([n, n], logits), rowLogSumExp, columnLogSumExp,
            new Tensor([n, n], imageToText), new Tensor([n, n], textToImage),
            imageLosses, textLosses, imageToTextLoss, textToImageLoss, loss,
            new Tensor([n, n], gradLogits), new Tensor([n, d], gradX), new Tensor([n, d], gradY), gradLogitScale,
            new Tensor([n, d], NormalizeBackward(gradX, x, imageNorms, n, d)),
            new Tensor([n, d], NormalizeBackward(gradY, y, textNorms, n, d)));
    }

    // l_ij = t <x_i, y_j>  =>  dL/dx_i = sum_j dL/dl_ij t y_j,  dL/dy_j = sum_i dL/dl_ij t x_i.
    private static (double[] GradX, double[] GradY) BilinearBackward(double[] gradLogits, double[] x, double[] y, int n, int d, double t)
    {
        var gradX = new double[n * d];          // [n, d]
        var gradY = new double[n * d];          // [n, d]
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int k = 0; k < d; k++)
                {
                    gradX[i * d + k] += gradLogits[i * n + j] * t * y[j * d + k];
                    gradY[j * d + k] += gradLogits[i * n + j] * t * x[i * d + k];
                }
        return (gradX, gradY);
    }

    // x = u / ||u||  =>  dL/du = (dL/dx - x <dL/dx, x>) / ||u||: only the part of the gradient that
    // turns x counts; the part along x would change the length, which normalisation throws away.
    private static double[] NormalizeBackward(double[] gradNormed, double[] normed, double[] norms, int n, int d)
    {
        var gradRaw = new double[n * d];        // [n, d]
        for (int i = 0; i < n; i++)
        {
            double along = Dot(gradNormed, i, normed, i, d);
            for (int k = 0; k < d; k++)
                gradRaw[i * d + k] = (gradNormed[i * d + k] - normed[i * d + k] * along) / norms[i];
        }
        return gradRaw;
    }

    private static double[] RowNorms(double[] a, int n, int d)
    {
        var norms = new double[n];
        for (int i = 0; i < n; i++) norms[i] = Math.Sqrt(Dot(a, i, a, i, d));
        return norms;
    }

    private static double[] DivideRows(double[] a, double[] norms, int n, int d)
    {
        var result = new double[n * d];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < d; k++)
                result[i * d + k] = a[i * d + k] / norms[i];
        return result;
    }

    private static double Dot(double[] a, int rowA, double[] b, int rowB, int d)
    {
        double sum = 0;
        for (int k = 0; k < d; k++) sum += a[rowA * d + k] * b[rowB * d + k];
        return sum;
    }

    // log sum_k exp(a[start + k stride]), minus the maximum first so that exp cannot overflow.
    private static double LogSumExp(double[] a, int start, int stride, int count)
    {
        double max = double.NegativeInfinity;
        for (int k = 0; k < count; k++) max = Math.Max(max, a[start + k * stride]);
        double sum = 0;
        for (int k = 0; k < count; k++) sum += Math.Exp(a[start + k * stride] - max);
        return max + Math.Log(sum);
    }

    // x = u / ||u|| (epsilon 0, as HF): a zero row has no direction and no normalised version.
    // ||u|| is computed here as plainly as it reads, sqrt(sum u_k^2), so that sum must be an ordinary
    // double: below ~1e-280 its terms fall into subnormals (precision lost, then 0 and NaN), above
    // ~1e280 it overflows. The loss module rescales by powers of two instead; this example stays plain.
    private const double SmallestPlainSquaredNorm = 1e-280, LargestPlainSquaredNorm = 1e280;

    private static void RequireNonZeroRows(double[] a, int n, int d, string name)
    {
        for (int i = 0; i < n; i++)
        {
            string row = $"{name} row {i} (counting from 0; pair {i + 1} in `siglip explain`)";
            if (IsZeroRow(a, i, d))
                throw new ArgumentException(
                    $"{row} is all zeros ({name} is [{n}, {d}]): " +
                    "a zero vector has no direction, so it cannot be L2-normalised (x = u / ||u||). Give every row a non-zero embedding.");
            double squared = Dot(a, i, a, i, d);
            if (!(squared >= SmallestPlainSquaredNorm && squared <= LargestPlainSquaredNorm))
                throw new ArgumentException(
                    $"{row} has squared length {squared:G3}, outside [{SmallestPlainSquaredNorm:G1}, {LargestPlainSquaredNorm:G1}]: " +
                    "the worked example computes ||u|| = sqrt(sum u_k^2) directly, which under- or overflows there. " +
                    "Scale the row (normalisation ignores length), or use PairwiseLoss.Compute, which rescales.");
        }
    }

    private static double Round2(double value) => Math.Round(value, 2, MidpointRounding.ToEven);

    private static bool IsZeroRow(double[] a, int row, int d)
    {
        for (int k = 0; k < d; k++) if (a[row * d + k] != 0) return false;
        return true;
    }
}

/// <summary>A batch of raw embeddings: row i of each is pair i.</summary>
/// <param name="ImageEmbeds">[n, d] image embeddings u_i.</param>
/// <param name="TextEmbeds">[n, d] text embeddings v_i.</param>
public sealed record ExampleEmbeddings(Tensor ImageEmbeds, Tensor TextEmbeds);

/// <summary>
/// Every number of a worked example (<see cref="WorkedExample"/>). Matrices are row-major
/// <see cref="Tensor"/>s; [n, n] matrices have one row per image and one column per text.
/// </summary>
/// <param name="Pairs">n.</param>
/// <param name="Width">d.</param>
/// <param name="LogitScale">t' (HF logit_scale).</param>
/// <param name="Temperature">t = exp(t').</param>
/// <param name="LogitBias">b (the sigmoid loss only).</param>
/// <param name="ImageEmbeds">[n, d] raw image embeddings u_i.</param>
/// <param name="TextEmbeds">[n, d] raw text embeddings v_j.</param>
/// <param name="ImageNorms">[n] ||u_i||.</param>
/// <param name="TextNorms">[n] ||v_j||.</param>
/// <param name="ImageNormed">[n, d] x_i = u_i / ||u_i||.</param>
/// <param name="TextNormed">[n, d] y_j = v_j / ||v_j||.</param>
/// <param name="Cosines">[n, n] &lt;x_i, y_j&gt;.</param>
/// <param name="Sigmoid">The sigmoid (SigLIP) loss, step by step.</param>
/// <param name="Softmax">The softmax (CLIP) loss, step by step.</param>
public sealed record WorkedExampleResult(
    int Pairs,
    int Width,
    double LogitScale,
    double Temperature,
    double LogitBias,
    Tensor ImageEmbeds,
    Tensor TextEmbeds,
    IReadOnlyList<double> ImageNorms,
    IReadOnlyList<double> TextNorms,
    Tensor ImageNormed,
    Tensor TextNormed,
    Tensor Cosines,
    SigmoidSteps Sigmoid,
    SoftmaxSteps Softmax);

/// <summary>The sigmoid loss's intermediates. "Grad" means the gradient of L with respect to that quantity.</summary>
/// <param name="Logits">[n, n] l_ij = t &lt;x_i, y_j&gt; + b.</param>
/// <param name="Labels">[n, n] z_ij = +1 on the diagonal, -1 elsewhere.</param>
/// <param name="Probabilities">[n, n] sigma(l_ij), the model's P(image i and text j match); rows need not sum to 1.</param>
/// <param name="LogSigmoids">[n, n] log sigma(z_ij l_ij), each pair's log-likelihood.</param>
/// <param name="Loss">L = -(1/n) sum_ij log sigma(z_ij l_ij).</param>
/// <param name="GradLogits">[n, n] dL/dl_ij = -z_ij sigma(-z_ij l_ij) / n.</param>
/// <param name="GradImageNormed">[n, d] dL/dx_i.</param>
/// <param name="GradTextNormed">[n, d] dL/dy_j.</param>
/// <param name="GradLogitScale">dL/dt'.</param>
/// <param name="GradLogitBias">dL/db.</param>
/// <param name="GradImageEmbeds">[n, d] dL/du_i (raw embeddings).</param>
/// <param name="GradTextEmbeds">[n, d] dL/dv_j (raw embeddings).</param>
public sealed record SigmoidSteps(
    Tensor Logits,
    Tensor Labels,
    Tensor Probabilities,
    Tensor LogSigmoids,
    double Loss,
    Tensor GradLogits,
    Tensor GradImageNormed,
    Tensor GradTextNormed,
    double GradLogitScale,
    double GradLogitBias,
    Tensor GradImageEmbeds,
    Tensor GradTextEmbeds);

/// <summary>The softmax (CLIP) loss's intermediates. "Grad" means the gradient of L with respect to that quantity.</summary>
/// <param name="Logits">[n, n] l_ij = t &lt;x_i, y_j&gt; (no bias).</param>
/// <param name="RowLogSumExp">[n] R_i = log sum_j exp(l_ij).</param>
/// <param name="ColumnLogSumExp">[n] C_j = log sum_i exp(l_ij).</param>
/// <param name="ImageToTextProbabilities">[n, n] P_ij = exp(l_ij - R_i): row i is image i's distribution over the texts.</param>
/// <param name="TextToImageProbabilities">[n, n] Q_ij = exp(l_ij - C_j): column j is text j's distribution over the images.</param>
/// <param name="ImageLosses">[n] -log P_ii.</param>
/// <param name="TextLosses">[n] -log Q_ii.</param>
/// <param name="ImageToTextLoss">Mean of <paramref name="ImageLosses"/>.</param>
/// <param name="TextToImageLoss">Mean of <paramref name="TextLosses"/>.</param>
/// <param name="Loss">L = (image-to-text + text-to-image) / 2.</param>
/// <param name="GradLogits">[n, n] dL/dl_ij = (P_ij + Q_ij - 2 [i == j]) / 2n.</param>
/// <param name="GradImageNormed">[n, d] dL/dx_i.</param>
/// <param name="GradTextNormed">[n, d] dL/dy_j.</param>
/// <param name="GradLogitScale">dL/dt'.</param>
/// <param name="GradImageEmbeds">[n, d] dL/du_i (raw embeddings).</param>
/// <param name="GradTextEmbeds">[n, d] dL/dv_j (raw embeddings).</param>
public sealed record SoftmaxSteps(
    Tensor Logits,
    IReadOnlyList<double> RowLogSumExp,
    IReadOnlyList<double> ColumnLogSumExp,
    Tensor ImageToTextProbabilities,
    Tensor TextToImageProbabilities,
    IReadOnlyList<double> ImageLosses,
    IReadOnlyList<double> TextLosses,
    double ImageToTextLoss,
    double TextToImageLoss,
    double Loss,
    Tensor GradLogits,
    Tensor GradImageNormed,
    Tensor GradTextNormed,
    double GradLogitScale,
    Tensor GradImageEmbeds,
    Tensor GradTextEmbeds);
