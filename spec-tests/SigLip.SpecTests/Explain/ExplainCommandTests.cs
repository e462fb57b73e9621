using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using SigLip.Reference;
using SigLip.Reference.Loss;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Data;
using SigLip.SpecTests.Support;
using SkiaSharp;

namespace SigLip.SpecTests.Explain;

/// <summary>
/// `siglip explain` end to end, in-process: it runs, writes decodable PNGs, and what it prints and
/// writes to --json are the loss module's numbers (the JSON at full precision, 1e-12 + 1e-12 |e|;
/// the console to the precision it is printed with).
/// </summary>
public sealed class ExplainCommandTests : IDisposable
{
    private static readonly string[] PlotFiles = ["sigmoid-logits.png", "sigmoid-probabilities.png", "softmax-probabilities.png"];
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "siglip-explain-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public void The_tutorial_form_runs_and_writes_readable_heatmaps()
    {
        string outDir = Path.Combine(_folder, "plots", "nested"); // created by the command
        var (code, stdout, stderr) = CliRunner.Run("explain", "--n", "4", "--out", outDir);
        Assert.True(code == 0, $"exit {code}: {stderr}");
        Assert.Equal("", stderr);
        foreach (var file in PlotFiles)
        {
            string path = Path.Combine(outDir, file);
            Assert.True(File.Exists(path), $"{path} was not written");
            var bytes = File.ReadAllBytes(path);
            Assert.True(bytes.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), $"{file} has no PNG signature");
            using var bitmap = SKBitmap.Decode(bytes);
            Assert.NotNull(bitmap);
            Assert.True(bitmap.Width >= 400 && bitmap.Height >= 400, $"{file} is {bitmap.Width}x{bitmap.Height}");
        }
        Assert.Empty(Directory.GetFiles(outDir, "*.tmp", SearchOption.AllDirectories)); // atomic writes leave no temporaries
        Assert.Contains("seed 0", stdout);
        Assert.Contains("Step 1.", stdout);
        Assert.Contains("Sigmoid against softmax", stdout);
    }

    [Theory]
    [InlineData(4, 3, 0, null, null)]
    [InlineData(7, 5, 42, "1.5", "-3")]
    [InlineData(1, 2, 9, null, null)]
    public void The_json_file_holds_the_loss_modules_numbers(int n, int d, long seed, string? logitScale, string? logitBias)
    {
        string json = Path.Combine(_folder, "all.json");
        var args = new List<string> { "explain", "--n", $"{n}", "--dim", $"{d}", "--seed", $"{seed}", "--out", _folder, "--json", json };
        if (logitScale is not null) args.AddRange(["--logit-scale", logitScale]);
        if (logitBias is not null) args.AddRange(["--logit-bias", logitBias]);
        var (code, _, stderr) = CliRunner.Run([.. args]);
        Assert.True(code == 0, $"exit {code}: {stderr}");

        using var document = JsonDocument.Parse(File.ReadAllText(json));
        var root = document.RootElement;
        Assert.Equal(n, root.GetProperty("n").GetInt32());
        Assert.Equal(d, root.GetProperty("d").GetInt32());
        Assert.Equal(seed, root.GetProperty("seed").GetInt64());
        double t = root.GetProperty("logit_scale").GetDouble(), b = root.GetProperty("logit_bias").GetDouble();
        Assert.Equal(logitScale is null ? SigmoidLoss.PaperInitialLogitScale : double.Parse(logitScale, CultureInfo.InvariantCulture), t);
        Assert.Equal(logitBias is null ? -10.0 : double.Parse(logitBias, CultureInfo.InvariantCulture), b);

        // The inputs are the documented seeded embeddings.
        var (images, texts) = WorkedExample.RandomEmbeddings(n, d, seed);
        var u = Matrix(root, "image_embeds", n, d);
        var v = Matrix(root, "text_embeds", n, d);
        Assert.Equal(images.Data, u.Data);
        Assert.Equal(texts.Data, v.Data);

        var tight = WorkedExampleTests.Tight;
        var sigmoid = root.GetProperty("sigmoid");
        var dense = SigmoidLoss.Compute<double>(u.Data, v.Data, n, d, t, b, returnLogits: true);
        AssertClose.Scalar(sigmoid.GetProperty("loss").GetDouble(), dense.Loss, tight, "json sigmoid.loss");
        AssertClose.Tensor(Matrix(sigmoid, "logits", n, n), new Tensor([n, n], dense.LogitsPerImage!), tight, "json sigmoid.logits");
        AssertClose.Tensor(Matrix(sigmoid, "grad_image_embeds", n, d), new Tensor([n, d], dense.GradImageEmbeds), tight, "json sigmoid.grad_image_embeds");
        AssertClose.Tensor(Matrix(sigmoid, "grad_text_embeds", n, d), new Tensor([n, d], dense.GradTextEmbeds), tight, "json sigmoid.grad_text_embeds");
        AssertClose.Scalar(sigmoid.GetProperty("grad_logit_scale").GetDouble(), dense.GradLogitScale, tight, "json sigmoid.grad_logit_scale");
        AssertClose.Scalar(sigmoid.GetProperty("grad_logit_bias").GetDouble(), dense.GradLogitBias, tight, "json sigmoid.grad_logit_bias");

        var softmax = root.GetProperty("softmax");
        var full = SoftmaxLoss.Compute<double>(u.Data, v.Data, n, d, t, b, returnLogits: true);
        AssertClose.Scalar(softmax.GetProperty("loss").GetDouble(), full.Loss, tight, "json softmax.loss");
        AssertClose.Tensor(Matrix(softmax, "logits", n, n), new Tensor([n, n], full.LogitsPerImage!), tight, "json softmax.logits");
        AssertClose.Tensor(Matrix(softmax, "grad_image_embeds", n, d), new Tensor([n, d], full.GradImageEmbeds), tight, "json softmax.grad_image_embeds");
        AssertClose.Tensor(Matrix(softmax, "grad_text_embeds", n, d), new Tensor([n, d], full.GradTextEmbeds), tight, "json softmax.grad_text_embeds");
        AssertClose.Scalar(softmax.GetProperty("grad_logit_scale").GetDouble(), full.GradLogitScale, tight, "json softmax.grad_logit_scale");

        // Every other matrix in the file is the worked example's (held against the loss module in WorkedExampleTests).
        var e = WorkedExample.Random(n, d, seed, t, b);
        foreach (var (name, expected) in new[]
        {
            ("grad_logits", e.Sigmoid.GradLogits), ("probabilities", e.Sigmoid.Probabilities), ("log_sigmoids", e.Sigmoid.LogSigmoids),
            ("labels", e.Sigmoid.Labels), ("grad_image_normed", e.Sigmoid.GradImageNormed), ("grad_text_normed", e.Sigmoid.GradTextNormed),
        })
            AssertClose.Tensor(Matrix(sigmoid, name, expected.Shape[0], expected.Shape[1]), expected, tight, $"json sigmoid.{name}");
        foreach (var (name, expected) in new[]
        {
            ("grad_logits", e.Softmax.GradLogits), ("image_to_text_probabilities", e.Softmax.ImageToTextProbabilities),
            ("text_to_image_probabilities", e.Softmax.TextToImageProbabilities), ("grad_image_normed", e.Softmax.GradImageNormed),
        })
            AssertClose.Tensor(Matrix(softmax, name, expected.Shape[0], expected.Shape[1]), expected, tight, $"json softmax.{name}");
        WorkedExampleTests.AssertSigmoidMatchesLossModule(e);
        WorkedExampleTests.AssertSoftmaxMatchesLossModule(e);
    }

    /// <summary>
    /// Every table and every formula line the console shows holds the loss module's numbers (and,
    /// where the module has no such output, the definition computed here from the module's logits),
    /// to the digits printed: table cells with 4 decimals (atol 5e-5) or 4 significant digits in
    /// scientific notation (rtol 5e-4), scalars with 8 significant digits (rtol 5e-8), each plus
    /// 1e-15 for values that are 0 in exact arithmetic. A printed table or formula line that no
    /// check reads fails the test.
    /// </summary>
    [Theory]
    [InlineData(5, 3, 7, null, null)]
    [InlineData(4, 3, 0, "-10", "100")]   // t ~ 4.5e-5: every logit ~ 100, the loss ~ 300
    [InlineData(3, 4, 2, "0.5", "-3")]
    [InlineData(1, 2, 9, null, null)]      // one pair: no negatives, softmax loss 0
    public void Every_printed_number_is_the_loss_modules(int n, int d, long seed, string? logitScale, string? logitBias)
    {
        var args = new List<string> { "explain", "--n", $"{n}", "--dim", $"{d}", "--seed", $"{seed}", "--out", _folder };
        if (logitScale is not null) args.AddRange(["--logit-scale", logitScale]);
        if (logitBias is not null) args.AddRange(["--logit-bias", logitBias]);
        var (code, stdout, stderr) = CliRunner.Run([.. args]);
        Assert.True(code == 0, $"exit {code}: {stderr}");
        var printed = new ExplainOutput(stdout);
        double ts = logitScale is null ? SigmoidLoss.PaperInitialLogitScale : ExplainOutput.Parse(logitScale);
        double b = logitBias is null ? SigmoidLoss.PaperInitialLogitBias : ExplainOutput.Parse(logitBias);
        var reference = ExplainReference.Compute(n, d, seed, ts, b);
        AssertPrintedMatches(printed, reference);
        printed.AssertAllChecked();
    }

    /// <summary>The reviewer's mutation: dL/dx printed under the dL/du heading. The check must see it.</summary>
    [Fact]
    public void A_table_printed_under_the_wrong_heading_is_caught()
    {
        const int n = 4, d = 3;
        var (code, stdout, _) = CliRunner.Run("explain", "--n", $"{n}", "--dim", $"{d}", "--out", _folder);
        Assert.Equal(0, code);
        var reference = ExplainReference.Compute(n, d, 0, SigmoidLoss.PaperInitialLogitScale, SigmoidLoss.PaperInitialLogitBias);
        AssertPrintedMatches(new ExplainOutput(stdout), reference);

        // Swap the body of the first dL/dx table into the first dL/du table.
        var lines = stdout.Split('\n');
        int gradX = Array.FindIndex(lines, l => l.Contains("│ dL/dx_i ", StringComparison.Ordinal));
        int gradU = Array.FindIndex(lines, l => l.Contains("│ dL/du_i ", StringComparison.Ordinal));
        for (int i = 0; i < n; i++) lines[gradU + 2 + i] = lines[gradX + 2 + i];
        var ex = Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => AssertPrintedMatches(new ExplainOutput(string.Join('\n', lines)), reference));
        Assert.Contains("dL/du", ex.Message);
    }

    private static void AssertPrintedMatches(ExplainOutput printed, ExplainReference r)
    {
        int n = r.N, d = r.D;

        // Parameters, in the introduction.
        var parameters = Regex.Match(printed.Prose, @"Parameters: t' = (\S+) \(t = exp\(t'\) = (\S+)\) and b = ([^ ,(]+)");
        Assert.True(parameters.Success, "the parameters line was not printed");
        Scalar(parameters.Groups[1].Value, r.LogitScale, "t'");
        Scalar(parameters.Groups[2].Value, r.Temperature, "t");
        Scalar(parameters.Groups[3].Value, r.LogitBias, "b");

        // Steps 1-3: embeddings, norms, normalised embeddings, cosines.
        Vectors(printed.WithHeader(0, "pair i", "image u_i", "text v_i"), n, d, [r.U, r.V], ["u", "v"]);
        var norms = printed.WithHeader(0, "pair i", "||u_i||", "x_i", "||v_i||", "y_i");
        Assert.Equal(n, norms.Rows.Length);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal($"{i + 1}", norms.Rows[i][0]);
            Cell(norms.Rows[i][1], r.ImageNorms[i], $"||u_{i + 1}||");
            VectorCell(norms.Rows[i][2], r.X, i, d, $"x_{i + 1}");
            Cell(norms.Rows[i][3], r.TextNorms[i], $"||v_{i + 1}||");
            VectorCell(norms.Rows[i][4], r.Y, i, d, $"y_{i + 1}");
        }
        MatrixTable(printed.Matrix("c_ij = <x_i, y_j>", 0, n), r.Cosines, n, "cosines");

        // Steps 4-8: the sigmoid forward.
        MatrixTable(printed.Matrix("logits l_ij", 0, n), r.SigmoidLogits, n, "sigmoid logits");
        var labels = printed.Matrix("labels z_ij", 0, n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                Assert.Equal(i == j ? "+1" : "-1", labels.Rows[i][j + 1]);
        var sigma = printed.Matrix("sigma(l_ij)", 0, n);
        MatrixTable(sigma, r.Sigma, n, "sigma(l_ij)", rowSums: true);
        MatrixTable(printed.Matrix("log sigma(z_ij l_ij)", 0, n), r.LogSigmoids, n, "log sigma(z_ij l_ij)");
        string sum = printed.FormulaValue("sum_ij log sigma(z_ij l_ij) =");
        SumOfLogSigmoids(sum, r.SigmoidLossValue * -n);
        var lossLine = Regex.Match(printed.Formula("sigmoid loss L ="), @"^sigmoid loss L = -\(1/n\) sum = -\((\S+)\) / (\d+) = (\S+)$");
        Assert.True(lossLine.Success, "the sigmoid loss line has changed form");
        Assert.Equal(sum, lossLine.Groups[1].Value);
        Assert.Equal($"{n}", lossLine.Groups[2].Value);
        string loss = lossLine.Groups[3].Value;
        Scalar(loss, r.SigmoidLossValue, "sigmoid loss");
        ShownQuotientMatches(sum, n, loss);

        // Steps 9-12: the sigmoid backward.
        MatrixTable(printed.Matrix("dL/dl_ij", 0, n), r.SigmoidGradLogits, n, "sigmoid dL/dl");
        Scalar(printed.FormulaValue("sigmoid dL/dt' ="), r.SigmoidGradLogitScale, "sigmoid dL/dt'");
        Scalar(printed.FormulaValue("sigmoid dL/db ="), r.SigmoidGradLogitBias, "sigmoid dL/db");
        Vectors(printed.WithHeader(0, "pair i", "dL/dx_i", "dL/dy_i"), n, d, [r.SigmoidGradX, r.SigmoidGradY], ["sigmoid dL/dx", "sigmoid dL/dy"]);
        Vectors(printed.WithHeader(0, "pair i", "dL/du_i", "dL/dv_i"), n, d, [r.SigmoidGradU, r.SigmoidGradV], ["sigmoid dL/du", "sigmoid dL/dv"]);

        // Steps 13-19: the softmax loss.
        MatrixTable(printed.Matrix("logits l_ij", 1, n), r.SoftmaxLogits, n, "softmax logits");
        MatrixTable(printed.Matrix("P_ij (row softmax)", 0, n), r.P, n, "P", rowSums: true);
        var q = printed.Matrix("Q_ij (column softmax)", 0, n);
        MatrixTable(q, r.Q, n, "Q");
        Assert.Equal("column sum", q.Rows[n][0]);
        for (int j = 0; j < n; j++)
            Cell(q.Rows[n][j + 1], Enumerable.Range(0, n).Sum(i => r.Q[i * n + j]), $"Q column {j + 1} sum");
        var ce = printed.WithHeader(0, "pair i", "-log P_ii (image i -> text i)", "-log Q_ii (text i -> image i)");
        Assert.Equal(n + 1, ce.Rows.Length);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal($"{i + 1}", ce.Rows[i][0]);
            Cell(ce.Rows[i][1], r.RowLogSumExp[i] - r.SoftmaxLogits[i * n + i], $"-log P_{i + 1}{i + 1}");
            Cell(ce.Rows[i][2], r.ColumnLogSumExp[i] - r.SoftmaxLogits[i * n + i], $"-log Q_{i + 1}{i + 1}");
        }
        Assert.Equal("mean", ce.Rows[n][0]);
        double imageToText = Enumerable.Range(0, n).Average(i => r.RowLogSumExp[i] - r.SoftmaxLogits[i * n + i]);
        double textToImage = Enumerable.Range(0, n).Average(i => r.ColumnLogSumExp[i] - r.SoftmaxLogits[i * n + i]);
        Scalar(ce.Rows[n][1], imageToText, "image -> text loss");
        Scalar(ce.Rows[n][2], textToImage, "text -> image loss");
        var softmaxLine = Regex.Match(printed.Formula("softmax loss L ="), @"^softmax loss L = \((\S+) \+ (\S+)\) / 2 = (\S+)$");
        Assert.True(softmaxLine.Success, "the softmax loss line has changed form");
        Assert.Equal(ce.Rows[n][1], softmaxLine.Groups[1].Value);
        Assert.Equal(ce.Rows[n][2], softmaxLine.Groups[2].Value);
        Scalar(softmaxLine.Groups[3].Value, r.SoftmaxLossValue, "softmax loss");
        MatrixTable(printed.Matrix("dL/dl_ij", 1, n), r.SoftmaxGradLogits, n, "softmax dL/dl");
        Scalar(printed.FormulaValue("softmax dL/dt' ="), r.SoftmaxGradLogitScale, "softmax dL/dt'");
        Vectors(printed.WithHeader(1, "pair i", "dL/dx_i", "dL/dy_i"), n, d, [r.SoftmaxGradX, r.SoftmaxGradY], ["softmax dL/dx", "softmax dL/dy"]);
        Vectors(printed.WithHeader(1, "pair i", "dL/du_i", "dL/dv_i"), n, d, [r.SoftmaxGradU, r.SoftmaxGradV], ["softmax dL/du", "softmax dL/dv"]);

        // The contrast table's numbers: row sums and both losses.
        var contrast = printed.WithHeader(0, "", "sigmoid (SigLIP)", "softmax (CLIP)");
        var rowSums = contrast.Rows.Single(row => row[0] == "row sums of the probabilities");
        var sigmoidSums = rowSums[1].Split(", ");
        var softmaxSums = rowSums[2].Split(", ");
        Assert.Equal(n, sigmoidSums.Length);
        Assert.Equal(n, softmaxSums.Length);
        for (int i = 0; i < n; i++)
        {
            Cell(sigmoidSums[i], Enumerable.Range(0, n).Sum(j => r.Sigma[i * n + j]), $"contrast: sigmoid row {i + 1} sum");
            Cell(softmaxSums[i], Enumerable.Range(0, n).Sum(j => r.P[i * n + j]), $"contrast: softmax row {i + 1} sum");
        }
        var losses = contrast.Rows.Single(row => row[0] == "loss here");
        Scalar(losses[1].Split(' ')[0], r.SigmoidLossValue, "contrast: sigmoid loss");
        Scalar(losses[2].Split(' ')[0], r.SoftmaxLossValue, "contrast: softmax loss");
    }

    // Table cells (ExplainCommand.Num): 4 decimals, or 4 significant digits in scientific notation.
    private static void Cell(string cell, double expected, string name)
    {
        var allowed = cell.Contains('E') ? new Tolerance(1e-15, 5.0001e-4) : new Tolerance(5.0001e-5, 0);
        AssertClose.Scalar(ExplainOutput.Parse(cell), expected, allowed, $"{name} printed '{cell}'");
    }

    // Scalars in sentences (ExplainCommand.G): 8 significant digits.
    private static void Scalar(string printed, double expected, string name) =>
        AssertClose.Scalar(ExplainOutput.Parse(printed), expected, new Tolerance(1e-15, 5.0001e-8), $"{name} printed '{printed}'");

    // The sum is printed with 8 significant digits or, if that shows fewer decimals, as many as the loss.
    private static void SumOfLogSigmoids(string printed, double expected)
    {
        if (printed.Contains('E') || Decimals(printed) == 0) Scalar(printed, expected, "sum of log sigma");
        else AssertClose.Scalar(ExplainOutput.Parse(printed), expected, new Tolerance(0.50001 * Math.Pow(10, -Decimals(printed)), 5.0001e-8), $"sum of log sigma printed '{printed}'");
    }

    // -(shown sum) / n must round to the shown loss: at most half a unit in the loss's last printed
    // place from the sum's rounding (divided by n) plus half a unit from the loss's own.
    private static void ShownQuotientMatches(string sum, int n, string loss)
    {
        if (loss.Contains('E')) return;   // scientific: both carry 8 significant digits
        double unit = Math.Pow(10, -Decimals(loss));
        double quotient = -ExplainOutput.Parse(sum) / n;
        Assert.True(Decimals(sum) >= Decimals(loss), $"the sum '{sum}' shows fewer decimals than the loss '{loss}' it divides into");
        Assert.True(Math.Abs(quotient - ExplainOutput.Parse(loss)) <= 0.5 * unit * (1 + 1.0 / n) * (1 + 1e-9),
            $"-({sum}) / {n} = {quotient:R} does not round to the printed loss {loss}");
    }

    private static int Decimals(string shown) => shown.IndexOf('.') is int dot and >= 0 ? shown.Length - dot - 1 : 0;

    private static void MatrixTable(ExplainOutput.PrintedTable table, double[] expected, int n, string name, bool rowSums = false)
    {
        Assert.True(table.Rows.Length >= n, $"{name}: {table.Rows.Length} rows printed, {n} expected");
        Assert.Equal(n + 1 + (rowSums ? 1 : 0), table.Header.Length);
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++) Cell(table.Rows[i][j + 1], expected[i * n + j], $"{name}[{i + 1},{j + 1}]");
            if (rowSums)
            {
                Assert.Equal("row sum", table.Header[n + 1]);
                Cell(table.Rows[i][n + 1], Enumerable.Range(0, n).Sum(j => expected[i * n + j]), $"{name} row {i + 1} sum");
            }
        }
    }

    private static void Vectors(ExplainOutput.PrintedTable table, int n, int d, double[][] columns, string[] names)
    {
        Assert.Equal(n, table.Rows.Length);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal($"{i + 1}", table.Rows[i][0]);
            for (int c = 0; c < columns.Length; c++) VectorCell(table.Rows[i][c + 1], columns[c], i, d, $"{names[c]}_{i + 1}");
        }
    }

    private static void VectorCell(string cell, double[] rows, int i, int d, string name)
    {
        var parts = ExplainOutput.VectorCell(cell);
        Assert.True(parts.Length == d, $"{name} printed '{cell}' has {parts.Length} components, {d} expected");
        for (int k = 0; k < d; k++) Cell(parts[k], rows[i * d + k], $"{name}[{k + 1}] in '{cell}'");
    }

    [Theory]
    [InlineData("--n", "0", "--n 0 is out of range")]
    [InlineData("--n", "11", "--n 11 is out of range")]
    [InlineData("--dim", "0", "--dim 0 is out of range")]
    [InlineData("--dim", "9", "--dim 9 is out of range")]
    [InlineData("--logit-scale", "NaN", "--logit-scale NaN is out of range")]
    [InlineData("--logit-scale", "10.5", "--logit-scale 10.5 is out of range")]
    [InlineData("--logit-bias", "-101", "--logit-bias -101 is out of range")]
    [InlineData("--logit-bias", "Infinity", "--logit-bias Infinity is out of range")]
    public void Bad_arguments_exit_1_with_one_clear_line(string option, string value, string message)
    {
        var (code, stdout, stderr) = CliRunner.Run("explain", option, value, "--out", _folder);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var errorLines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(errorLines.Length == 1, $"expected one line, got: {stderr}");
        Assert.StartsWith("error: " + message, errorLines[0]);
        Assert.False(Directory.Exists(_folder) && Directory.EnumerateFileSystemEntries(_folder).Any(), "nothing may be written on bad input");
    }

    [Fact]
    public void An_out_path_that_is_a_file_is_refused()
    {
        Directory.CreateDirectory(_folder);
        string file = Path.Combine(_folder, "taken");
        File.WriteAllText(file, "x");
        var (code, _, stderr) = CliRunner.Run("explain", "--out", file);
        Assert.Equal(1, code);
        Assert.Contains("is a file, not a folder", stderr);
    }

    /// <summary>
    /// --out and --json are made ready before anything is printed: a path under a file, or in a
    /// folder where nothing can be created (/proc), exits 1 with one line naming the option and the
    /// path, prints nothing to stdout, and leaves no file or folder behind (not even an --out folder
    /// it had to create before the --json check failed).
    /// </summary>
    [Theory]
    [InlineData("--out", "file/sub", null)]
    [InlineData("--json", "file/all.json", "plots/nested")]
    [InlineData("--out", "/proc/siglip-explain-test", null)]
    [InlineData("--json", "/proc/siglip-explain-test.json", "plots/nested")]
    public void An_output_path_that_cannot_be_written_fails_before_anything_is_printed(string option, string path, string? outFolder)
    {
        Assert.True(Directory.Exists("/proc"), "this test needs Linux's /proc: a folder where no file can be created, even by root");
        Directory.CreateDirectory(_folder);
        string file = Path.Combine(_folder, "file");
        File.WriteAllText(file, "x");
        string target = path.StartsWith('/') ? path : Path.Combine(_folder, path);
        var args = new List<string> { "explain", option, target };
        if (outFolder is not null) args.AddRange(["--out", Path.Combine(_folder, outFolder)]);

        var (code, stdout, stderr) = CliRunner.Run([.. args]);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var errorLines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(errorLines.Length == 1, $"expected one line, got: {stderr}");
        Assert.StartsWith($"error: {option} {target}", errorLines[0]);
        Assert.Contains(option == "--out" ? "give a folder you can write to" : "give the path of a JSON file in a folder you can write to", errorLines[0]);
        Assert.Equal([file], Directory.GetFileSystemEntries(_folder));   // nothing written, no folder left behind
    }

    [Fact]
    public void The_default_out_folder_is_under_the_git_ignored_runs()
    {
        var (code, stdout, _) = CliRunner.Run("explain", "--help");
        Assert.Equal(0, code);
        Assert.Contains("[default: runs/explain]", stdout);
        string ignore = File.ReadAllText(Path.Combine(Docs.DocPaths.Root, ".gitignore"));
        Assert.Contains("/runs/", ignore.Split('\n').Select(l => l.Trim()));
    }

    private static Tensor Matrix(JsonElement parent, string name, int rows, int columns)
    {
        var element = parent.GetProperty(name);
        Assert.Equal(rows, element.GetArrayLength());
        var data = new double[rows * columns];
        int i = 0;
        foreach (var row in element.EnumerateArray())
        {
            Assert.Equal(columns, row.GetArrayLength());
            int j = 0;
            foreach (var value in row.EnumerateArray()) data[i * columns + j++] = value.GetDouble();
            i++;
        }
        return new Tensor([rows, columns], data);
    }
}
