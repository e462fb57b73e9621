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
    /// The console shows the loss module's numbers, to the digits it prints: scalars with 8
    /// significant digits (rtol 5e-8, allowed 1e-7), table cells with 4 decimals (atol 5e-5) or
    /// 4 significant digits in scientific notation (rtol 5e-4).
    /// </summary>
    [Fact]
    public void The_printed_numbers_are_the_loss_modules()
    {
        const int n = 5, d = 3;
        const long seed = 7;
        var (code, stdout, stderr) = CliRunner.Run("explain", "--n", $"{n}", "--dim", $"{d}", "--seed", $"{seed}", "--out", _folder);
        Assert.True(code == 0, $"exit {code}: {stderr}");
        var lines = Regex.Replace(stdout, @"\x1b\[[0-9;]*m", "").Split('\n').Select(l => l.TrimEnd('\r')).ToArray();

        var (u, v) = WorkedExample.RandomEmbeddings(n, d, seed);
        double t = SigmoidLoss.PaperInitialLogitScale, b = SigmoidLoss.PaperInitialLogitBias;
        var dense = SigmoidLoss.Compute<double>(u.Data, v.Data, n, d, t, b, returnLogits: true);
        var full = SoftmaxLoss.Compute<double>(u.Data, v.Data, n, d, t, b, returnLogits: true);

        var scalar = new Tolerance(Atol: 0, Rtol: 1e-7);
        AssertClose.Scalar(LastNumber(lines, "sigmoid loss L ="), dense.Loss, scalar, "printed sigmoid loss");
        AssertClose.Scalar(LastNumber(lines, "sigmoid dL/dt' ="), dense.GradLogitScale, scalar, "printed sigmoid dL/dt'");
        AssertClose.Scalar(LastNumber(lines, "sigmoid dL/db ="), dense.GradLogitBias, scalar, "printed sigmoid dL/db");
        AssertClose.Scalar(LastNumber(lines, "softmax loss L ="), full.Loss, scalar, "printed softmax loss");
        AssertClose.Scalar(LastNumber(lines, "softmax dL/dt' ="), full.GradLogitScale, scalar, "printed softmax dL/dt'");

        // Tables: the first "logits l_ij" is the sigmoid's, the second the softmax's.
        AssertTable(Table(lines, "logits l_ij", 0, n), dense.LogitsPerImage!, "printed sigmoid logits");
        AssertTable(Table(lines, "logits l_ij", 1, n), full.LogitsPerImage!, "printed softmax logits");
        var probabilities = dense.LogitsPerImage!.Select(l => 1 / (1 + Math.Exp(-l))).ToArray();
        AssertTable(Table(lines, "sigma(l_ij)", 0, n), probabilities, "printed sigma(l_ij)");
        var labels = Table(lines, "labels z_ij", 0, n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                Assert.Equal(i == j ? "+1" : "-1", labels[i][j]);
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

    private static double LastNumber(string[] lines, string prefix)
    {
        var line = lines.Single(l => l.TrimStart().StartsWith(prefix, StringComparison.Ordinal));
        return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1], CultureInfo.InvariantCulture);
    }

    /// <summary>The n data rows (cells after the row label) of the occurrence-th table titled <paramref name="title"/>.</summary>
    private static string[][] Table(string[] lines, string title, int occurrence, int n)
    {
        var starts = lines.Select((l, k) => (l, k)).Where(p => p.l.Trim() == title).Select(p => p.k).ToArray();
        Assert.True(starts.Length > occurrence, $"table '{title}' #{occurrence + 1} not printed");
        var rows = lines.Skip(starts[occurrence]).Where(l => l.StartsWith("│ image ", StringComparison.Ordinal)).Take(n).ToArray();
        Assert.Equal(n, rows.Length);
        return rows.Select(r => r.Split('│', StringSplitOptions.TrimEntries)[2..^1].Take(n).ToArray()).ToArray();
    }

    private static void AssertTable(string[][] cells, double[] expected, string name)
    {
        int n = cells.Length;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                string cell = cells[i][j];
                double printed = double.Parse(cell, CultureInfo.InvariantCulture), e = expected[i * n + j];
                // Half a unit in the last printed place (plus a hair for the decimal conversion).
                var allowed = cell.Contains('E') ? new Tolerance(0, 5.0001e-4) : new Tolerance(5.0001e-5, 0);
                AssertClose.Scalar(printed, e, allowed, $"{name}[{i},{j}] printed '{cell}'");
            }
    }
}
