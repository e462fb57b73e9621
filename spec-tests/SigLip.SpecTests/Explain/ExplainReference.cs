using SigLip.Reference.Layers;
using SigLip.Reference.Loss;

namespace SigLip.SpecTests.Explain;

/// <summary>
/// What `siglip explain` should print, taken from the loss module (SigmoidLoss, SoftmaxLoss,
/// L2Normalize) and not from WorkedExample, whose numbers the command prints. Where the module has
/// no such output (σ(l), log σ(zl), dL/dl, P, Q), it is computed here from the module's logits and
/// log-sum-exps by the definition. Arrays are row-major: [n, n] row = image, [n, d] row = pair.
/// </summary>
internal sealed record ExplainReference(
    int N, int D, double LogitScale, double Temperature, double LogitBias,
    double[] U, double[] V, double[] ImageNorms, double[] TextNorms, double[] X, double[] Y, double[] Cosines,
    double[] SigmoidLogits, double[] Sigma, double[] LogSigmoids, double SigmoidLossValue, double[] SigmoidGradLogits,
    double SigmoidGradLogitScale, double SigmoidGradLogitBias, double[] SigmoidGradX, double[] SigmoidGradY, double[] SigmoidGradU, double[] SigmoidGradV,
    double[] SoftmaxLogits, double[] RowLogSumExp, double[] ColumnLogSumExp, double[] P, double[] Q, double SoftmaxLossValue,
    double[] SoftmaxGradLogits, double SoftmaxGradLogitScale, double[] SoftmaxGradX, double[] SoftmaxGradY, double[] SoftmaxGradU, double[] SoftmaxGradV)
{
    public static ExplainReference Compute(int n, int d, long seed, double logitScale, double logitBias)
    {
        // The inputs are the documented seeded embeddings.
        var (images, texts) = WorkedExample.RandomEmbeddings(n, d, seed);
        double[] u = images.Data, v = texts.Data;
        double t = Math.Exp(logitScale);

        var x = new double[n * d];
        var y = new double[n * d];
        var imageNorms = new double[n];
        var textNorms = new double[n];
        L2Normalize.Forward(x, imageNorms, u, n, d, 0.0);
        L2Normalize.Forward(y, textNorms, v, n, d, 0.0);
        var cosines = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int k = 0; k < d; k++)
                    cosines[i * n + j] += x[i * d + k] * y[j * d + k];

        // Sigmoid: loss, logits and raw-embedding gradients from Compute; dL/dx, dL/dy from Forward/Backward.
        var dense = SigmoidLoss.Compute<double>(u, v, n, d, logitScale, logitBias, returnLogits: true);
        var logits = dense.LogitsPerImage!;
        var sigma = new double[n * n];
        var logSigmoids = new double[n * n];
        var gradLogits = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                int ij = i * n + j;
                double z = i == j ? 1 : -1;
                sigma[ij] = Sigmoid(logits[ij]);
                logSigmoids[ij] = LogSigmoidOf(z * logits[ij]);
                gradLogits[ij] = -z * Sigmoid(-z * logits[ij]) / n;   // d/dl of -(1/n) log σ(z l)
            }
        var sigmoidLogits = new double[n * n];
        SigmoidLoss.Forward(sigmoidLogits, x, y, n, d, t, logitBias);
        var sigmoidDx = new double[n * d];
        var sigmoidDy = new double[n * d];
        SigmoidLoss.Backward(sigmoidDx, sigmoidDy, sigmoidLogits, x, y, n, d, t);

        // Softmax: the same, P and Q from the module's saved log-sum-exps.
        var full = SoftmaxLoss.Compute<double>(u, v, n, d, logitScale, logitBias, returnLogits: true);
        var softmaxLogits = new double[n * n];
        var rows = new double[n];
        var columns = new double[n];
        SoftmaxLoss.Forward(softmaxLogits, rows, columns, x, y, n, d, t);
        var softmaxDx = new double[n * d];
        var softmaxDy = new double[n * d];
        SoftmaxLoss.Backward(softmaxDx, softmaxDy, softmaxLogits, rows, columns, x, y, n, d, t);
        var p = new double[n * n];
        var q = new double[n * n];
        var softmaxGradLogits = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                int ij = i * n + j;
                p[ij] = Math.Exp(softmaxLogits[ij] - rows[i]);
                q[ij] = Math.Exp(softmaxLogits[ij] - columns[j]);
                softmaxGradLogits[ij] = (p[ij] + q[ij] - (i == j ? 2 : 0)) / (2.0 * n);
            }

        return new ExplainReference(
            n, d, logitScale, t, logitBias, u, v, imageNorms, textNorms, x, y, cosines,
            logits, sigma, logSigmoids, dense.Loss, gradLogits, dense.GradLogitScale, dense.GradLogitBias,
            sigmoidDx, sigmoidDy, dense.GradImageEmbeds, dense.GradTextEmbeds,
            full.LogitsPerImage!, rows, columns, p, q, full.Loss,
            softmaxGradLogits, full.GradLogitScale, softmaxDx, softmaxDy, full.GradImageEmbeds, full.GradTextEmbeds);
    }

    private static double Sigmoid(double a) => a >= 0 ? 1 / (1 + Math.Exp(-a)) : Math.Exp(a) / (1 + Math.Exp(a));

    // log σ(a) = -log(1 + e^-a), written so that neither branch overflows.
    private static double LogSigmoidOf(double a) => a >= 0 ? -LogOnePlus(Math.Exp(-a)) : a - LogOnePlus(Math.Exp(a));

    // log(1 + e) for e >= 0, keeping the digits of a tiny e that 1 + e would round away (series: error ~e^4/4).
    private static double LogOnePlus(double e) => e < 1e-4 ? e - e * e / 2 + e * e * e / 3 : Math.Log(1 + e);
}
