using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SigLip.Cli.Plots;
using SigLip.Data;
using SigLip.Reference;
using SigLip.Reference.IO;
using SigLip.Reference.Loss;
using Spectre.Console;

namespace SigLip.Cli.Commands;

/// <summary>
/// `siglip explain [--n 4] [--dim 3] [--seed 0] [--out DIR] [--json FILE]`: the sigmoid loss worked
/// by hand on a few seeded random embeddings, printed step by step (embeddings, normalisation,
/// logits, labels, log-sigmoids, loss, gradients), then the softmax (CLIP) loss on the same
/// embeddings and a table contrasting the two. Writes PNG heatmaps of the logits and probabilities.
/// The numbers come from <see cref="WorkedExample"/>.
/// </summary>
internal static class ExplainCommand
{
    /// <summary>Largest n: an n x n table still fits a terminal.</summary>
    public const int MaxPairs = 10;

    /// <summary>Largest d: a vector (u_1, ..., u_d) still fits a table cell.</summary>
    public const int MaxWidth = 8;

    /// <summary>Bound on |t'|: t = exp(t') stays within [4.5e-5, 22026].</summary>
    public const double MaxAbsLogitScale = 10;

    /// <summary>Bound on |b|.</summary>
    public const double MaxAbsLogitBias = 100;

    /// <summary>Where the PNGs go without --out: under runs/, which git ignores.</summary>
    public const string DefaultOutput = "runs/explain";

    /// <summary>The PNG files written into --out.</summary>
    public static readonly IReadOnlyList<string> PlotFiles = ["sigmoid-logits.png", "sigmoid-probabilities.png", "softmax-probabilities.png"];

    public static Command Create()
    {
        var pairs = new Option<int>("--n") { Description = $"Number of image-text pairs n (1 to {MaxPairs}).", DefaultValueFactory = _ => WorkedExample.DefaultPairs };
        var width = new Option<int>("--dim") { Description = $"Embedding width d (1 to {MaxWidth}).", DefaultValueFactory = _ => WorkedExample.DefaultWidth };
        var seed = new Option<long>("--seed") { Description = "Seed of the random embeddings (the same numbers on every machine).", DefaultValueFactory = _ => 0 };
        var logitScale = new Option<double>("--logit-scale") { Description = $"t', the log-temperature: t = exp(t'). Default: the paper's starting value ln 10 (t = 10). Between -{MaxAbsLogitScale} and {MaxAbsLogitScale}.", DefaultValueFactory = _ => SigmoidLoss.PaperInitialLogitScale };
        var logitBias = new Option<double>("--logit-bias") { Description = $"b, the bias of the sigmoid loss. Default: the paper's starting value -10. Between -{MaxAbsLogitBias} and {MaxAbsLogitBias}.", DefaultValueFactory = _ => SigmoidLoss.PaperInitialLogitBias };
        var output = new Option<string>("--out") { Description = $"Folder for the PNG heatmaps ({string.Join(", ", PlotFiles)}); created if missing.", DefaultValueFactory = _ => DefaultOutput };
        var json = new Option<string?>("--json") { Description = "Also write every number (full precision) to this JSON file." };
        var command = new Command("explain", "A worked example of the sigmoid (SigLIP) loss and its gradient, step by step, beside the softmax (CLIP) loss; PNG heatmaps.");
        foreach (var o in new Option[] { pairs, width, seed, logitScale, logitBias, output, json }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            int n = parse.GetValue(pairs), d = parse.GetValue(width);
            double scale = parse.GetValue(logitScale), bias = parse.GetValue(logitBias);
            long seedValue = parse.GetValue(seed);
            string folder = parse.GetValue(output)!;
            string? jsonPath = parse.GetValue(json);
            Validate(n, d, scale, bias, folder, jsonPath);
            // Before anything is printed: a path that cannot be written fails now, not after the whole printout.
            PrepareOutputs(folder, jsonPath);

            var example = WorkedExample.Random(n, d, seedValue, scale, bias);
            // A console bound to the current Console.Out, so redirected output gets the tables too.
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
            if (Console.IsOutputRedirected || Console.Out is StringWriter) console.Profile.Width = Math.Max(console.Profile.Width, 132);
            new Printer(console, example, seedValue).PrintAll();

            var written = new List<string>();
            foreach (var (file, matrix, title, range) in Plots(example))
            {
                string path = Path.Combine(folder, file);
                // The heatmaps are what explain writes: without SkiaSharp's native library there is nothing to
                // keep, so the command stops with one line (the printed tables above are already out).
                try { MatrixHeatmapPlot.Save(ContainedPath.ForWriting(folder, file), matrix, title, range); }
                catch (Exception ex) when (ImageLibraryException.Translate(ex, $"{path} was not written") is { } library) { throw library; }
                written.Add(path);
            }
            if (jsonPath is not null)
            {
                AtomicFile.WriteAllBytes(jsonPath, ToJson(example, seedValue));
                written.Add(jsonPath);
            }
            console.WriteLine();
            console.MarkupLine("[bold]Files[/]");
            foreach (var path in written) console.WriteLine("  " + path);
            return 0;
        });
        return command;
    }

    private static void Validate(int n, int d, double scale, double bias, string folder, string? jsonPath)
    {
        if (n < 1 || n > MaxPairs)
            throw new ArgumentException($"--n {n} is out of range: the number of pairs must be between 1 and {MaxPairs} (an n x n table must fit the screen).");
        if (d < 1 || d > MaxWidth)
            throw new ArgumentException($"--dim {d} is out of range: the embedding width must be between 1 and {MaxWidth} (each vector is printed in one cell).");
        if (!double.IsFinite(scale) || Math.Abs(scale) > MaxAbsLogitScale)
            throw new ArgumentException($"--logit-scale {Show(scale)} is out of range: t' must be a finite number between -{MaxAbsLogitScale} and {MaxAbsLogitScale} (t = exp(t'); the paper starts at ln 10 = 2.3026).");
        if (!double.IsFinite(bias) || Math.Abs(bias) > MaxAbsLogitBias)
            throw new ArgumentException($"--logit-bias {Show(bias)} is out of range: b must be a finite number between -{MaxAbsLogitBias} and {MaxAbsLogitBias} (the paper starts at -10).");
        if (string.IsNullOrWhiteSpace(folder))
            throw new ArgumentException("--out is empty: give a folder for the PNG heatmaps (it is created if missing).");
        if (jsonPath is not null && (string.IsNullOrWhiteSpace(jsonPath) || Directory.Exists(jsonPath)))
            throw new ArgumentException($"--json '{jsonPath}' is not a file name: give the path of a JSON file to write.");
    }

    /// <summary>
    /// Creates the --out folder and the --json file's folder and checks that a file can be created in
    /// each. A path that cannot be used throws, naming the option and the path, and leaves behind no
    /// folder that this call created.
    /// </summary>
    private static void PrepareOutputs(string folder, string? jsonPath)
    {
        const string outAdvice = "give a folder you can write to for the PNG heatmaps (it is created if missing)";
        const string jsonAdvice = "give the path of a JSON file in a folder you can write to (the folder is created if missing)";
        var created = new List<string>();   // outermost first
        // A target that is a FIFO, device or folder is refused now, not after the plots are written.
        if (jsonPath is not null) AtomicFile.CheckWritable(jsonPath);
        foreach (var file in PlotFiles) AtomicFile.CheckWritable(ContainedPath.ForWriting(folder, file));
        try
        {
            // Both checked before either is created, so a bad --json cannot leave an --out folder behind.
            var outMissing = MissingFolders("--out", folder, Path.GetFullPath(folder), outAdvice);
            string? jsonFolder = jsonPath is null ? null : Path.GetDirectoryName(Path.GetFullPath(jsonPath));
            var jsonMissing = jsonFolder is null ? [] : MissingFolders("--json", jsonPath!, jsonFolder, jsonAdvice);
            CreateWritable("--out", folder, Path.GetFullPath(folder), outMissing, created, outAdvice);
            if (jsonFolder is not null) CreateWritable("--json", jsonPath!, jsonFolder, jsonMissing, created, jsonAdvice);
        }
        catch
        {
            for (int k = created.Count - 1; k >= 0; k--)
            {
                try { Directory.Delete(created[k]); }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
            throw;
        }
    }

    /// <summary>The folders from the nearest existing ancestor down to <paramref name="folder"/> that do not exist yet, outermost first.</summary>
    private static List<string> MissingFolders(string option, string given, string folder, string advice)
    {
        var missing = new List<string>();
        for (string? path = folder; path is not null && !Directory.Exists(path); path = Path.GetDirectoryName(path))
        {
            if (File.Exists(path))
                throw new ArgumentException(path == folder && option == "--out"
                    ? $"--out {given} is a file, not a folder: {advice}."
                    : $"{option} {given} cannot be used: {path} is a file, not a folder; {advice}.");
            missing.Insert(0, path);
        }
        return missing;
    }

    private static void CreateWritable(string option, string given, string folder, List<string> missing, List<string> created, string advice)
    {
        foreach (var path in missing)
        {
            if (Directory.Exists(path)) continue;   // created just before, for the other option
            try { Directory.CreateDirectory(path); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"{option} {given}: the folder {path} cannot be created ({Reason(ex)}); {advice}.", ex);
            }
            created.Add(path);
        }
        // A file that deletes itself: proves that the PNGs / the JSON can be created there.
        string probe = Path.Combine(folder, $".siglip-explain-{Guid.NewGuid():N}.tmp");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"{option} {given}: no file can be created in the folder {folder} ({Reason(ex)}); {advice}.", ex);
        }
    }

    private static string Reason(Exception ex) => ex.Message.ReplaceLineEndings(" ").TrimEnd('.');

    private static IEnumerable<(string File, Tensor Matrix, string Title, (double, double)? Range)> Plots(WorkedExampleResult e)
    {
        string t = e.Temperature.ToString("G5", CultureInfo.InvariantCulture), b = e.LogitBias.ToString("G5", CultureInfo.InvariantCulture);
        yield return (PlotFiles[0], e.Sigmoid.Logits, $"Sigmoid logits l_ij = {t} <x_i, y_j> + ({b})", null);
        yield return (PlotFiles[1], e.Sigmoid.Probabilities, "Sigmoid: P(image i matches text j) = sigmoid(l_ij)", (0.0, 1.0));
        yield return (PlotFiles[2], e.Softmax.ImageToTextProbabilities, "Softmax: image i's distribution over the texts (rows sum to 1)", (0.0, 1.0));
    }

    /// <summary>Prints the worked example, one numbered step at a time.</summary>
    private sealed class Printer(IAnsiConsole console, WorkedExampleResult e, long seed)
    {
        private readonly int _n = e.Pairs;
        private readonly int _d = e.Width;
        private int _step;

        public void PrintAll()
        {
            Introduction();
            SigmoidLoss();
            SoftmaxLoss();
            Contrast();
        }

        private void Introduction()
        {
            console.Write(new Rule("[bold]The SigLIP sigmoid loss, worked by hand[/]").LeftJustified());
            Say($"A batch of n = {_n} image-text pairs with embeddings of width d = {_d}. They are random but seeded " +
                $"(seed {seed}; the same numbers on every machine, --seed changes them): image i is a standard normal vector, " +
                $"text i is image i plus noise (std {Fixed(WorkedExample.TextNoise, 1)}), so matching pairs point roughly the same way, " +
                "as after some training. Values are rounded to two decimals, so what you see is exactly what is used.");
            Say($"Parameters: t' = {G(e.LogitScale)} (t = exp(t') = {G(e.Temperature)}) and b = {G(e.LogitBias)}" +
                (e.LogitScale == Reference.Loss.SigmoidLoss.PaperInitialLogitScale && e.LogitBias == Reference.Loss.SigmoidLoss.PaperInitialLogitBias
                    ? ", the paper's starting values (t' = ln 10, b = -10; change them with --logit-scale, --logit-bias)."
                    : " (set with --logit-scale, --logit-bias; the paper starts at t' = ln 10, b = -10)."));
            Say("Rows and columns count from 1. Row i of every n x n matrix is image i, column j is text j; pair (i, i) is a match.");
        }

        private void SigmoidLoss()
        {
            var s = e.Sigmoid;
            Step("The raw embeddings", "u_i is image i's embedding, v_i is text i's (what the two towers output).");
            Vectors(("image u_i", e.ImageEmbeds, false), ("text v_i", e.TextEmbeds, false));

            Step("L2-normalise", "x_i = u_i / ||u_i||, y_j = v_j / ||v_j||: every embedding gets length 1, so <x_i, y_j> is a cosine in [-1, 1].");
            var norms = new Table().AddColumn("pair i").AddColumn(new TableColumn("||u_i||").RightAligned()).AddColumn("x_i").AddColumn(new TableColumn("||v_i||").RightAligned()).AddColumn("y_i");
            for (int i = 0; i < _n; i++)
                norms.AddRow($"{i + 1}", Num(e.ImageNorms[i]), Vector(e.ImageNormed, i), Num(e.TextNorms[i]), Vector(e.TextNormed, i));
            console.Write(norms);

            Step("Cosine similarities", "c_ij = <x_i, y_j> for every image i and text j: the diagonal holds the matching pairs.");
            Matrix("c_ij = <x_i, y_j>", e.Cosines);

            Step("Logits", $"l_ij = t c_ij + b = {G(e.Temperature)} c_ij + ({G(e.LogitBias)}). The paper starts b at -10, far on the 'no match' side for every pair, because most pairs in a batch are not matches.");
            Matrix("logits l_ij", s.Logits);

            Step("Labels", "z_ij = +1 for a matching pair (the diagonal), -1 for every other pair.");
            Matrix("labels z_ij", s.Labels, Label);

            Step("Probabilities", "sigma(l_ij) = 1 / (1 + exp(-l_ij)) is the model's probability that image i and text j match, each pair on its own: the rows need not sum to 1.");
            Matrix("sigma(l_ij)", s.Probabilities, rowSums: true);

            Step("Each pair's log-likelihood", "log sigma(z_ij l_ij): close to 0 when the pair is classified right (match with large l, non-match with very negative l), very negative when wrong.");
            Matrix("log sigma(z_ij l_ij)", s.LogSigmoids);

            double sum = 0;
            foreach (var v in s.LogSigmoids.Data) sum += v;
            string shownSum = AtLeastAsPrecise(sum, s.Loss);
            Step("The loss", "Sum the n x n log-likelihoods, negate, divide by n (not by n^2: the paper's choice).");
            console.MarkupLine(Markup.Escape($"    sum_ij log sigma(z_ij l_ij) = {shownSum}"));
            console.MarkupLine(Markup.Escape($"    sigmoid loss L = -(1/n) sum = -({shownSum}) / {_n} = ") + $"[bold]{G(s.Loss)}[/]");

            Step("Gradient with respect to the logits", "dL/dl_ij = -z_ij sigma(-z_ij l_ij) / n: negative on the diagonal (pull matches up), positive elsewhere (push non-matches down). Each entry depends on its own l_ij alone.");
            Matrix("dL/dl_ij", s.GradLogits);

            Step("Gradient with respect to t' and b", "l_ij = t c_ij + b and dt/dt' = t, so dL/dt' = sum_ij dL/dl_ij t c_ij and dL/db = sum_ij dL/dl_ij.");
            console.WriteLine($"    sigmoid dL/dt' = {G(s.GradLogitScale)}");
            console.WriteLine($"    sigmoid dL/db = {G(s.GradLogitBias)}");

            Step("Gradient with respect to the normalised embeddings", "dL/dx_i = sum_j dL/dl_ij t y_j, dL/dy_j = sum_i dL/dl_ij t x_i.");
            Vectors(("dL/dx_i", s.GradImageNormed, true), ("dL/dy_i", s.GradTextNormed, true));

            Step("Gradient with respect to the raw embeddings", "Back through the normalisation: dL/du_i = (dL/dx_i - x_i <dL/dx_i, x_i>) / ||u_i||. The part along x_i would only change the length, which normalising throws away.");
            Vectors(("dL/du_i", s.GradImageEmbeds, true), ("dL/dv_i", s.GradTextEmbeds, true));
        }

        private void SoftmaxLoss()
        {
            var s = e.Softmax;
            console.WriteLine();
            console.Write(new Rule("[bold]The same embeddings under the softmax (CLIP) loss[/]").LeftJustified());
            Say("CLIP reads the logits as n-way classifications: which text belongs to image i (a softmax over row i), and which image belongs to text j (a softmax over column j).");

            Step("Logits", $"l_ij = t c_ij = {G(e.Temperature)} c_ij. No bias: adding the same b to a whole row or column cancels in its softmax.");
            Matrix("logits l_ij", s.Logits);

            Step("Image -> text probabilities", "P_ij = exp(l_ij) / sum_k exp(l_ik): each ROW is normalised, so the texts of a row compete for image i.");
            Matrix("P_ij (row softmax)", s.ImageToTextProbabilities, rowSums: true);

            Step("Text -> image probabilities", "Q_ij = exp(l_ij) / sum_k exp(l_kj): each COLUMN is normalised, so the images of a column compete for text j.");
            Matrix("Q_ij (column softmax)", s.TextToImageProbabilities, columnSums: true);

            Step("The loss", "Cross-entropy of the matching pair in each row (-log P_ii) and each column (-log Q_ii), averaged, then the two directions averaged.");
            var table = new Table().AddColumn("pair i").AddColumn(new TableColumn("-log P_ii (image i -> text i)").RightAligned()).AddColumn(new TableColumn("-log Q_ii (text i -> image i)").RightAligned());
            for (int i = 0; i < _n; i++) table.AddRow($"{i + 1}", Num(s.ImageLosses[i]), Num(s.TextLosses[i]));
            table.AddRow("mean", G(s.ImageToTextLoss), G(s.TextToImageLoss));
            console.Write(table);
            console.MarkupLine(Markup.Escape($"    softmax loss L = ({G(s.ImageToTextLoss)} + {G(s.TextToImageLoss)}) / 2 = ") + $"[bold]{G(s.Loss)}[/]");

            Step("Gradient with respect to the logits", "dL/dl_ij = (P_ij + Q_ij - 2 [i = j]) / 2n: every entry depends on its whole row and column, through P and Q.");
            Matrix("dL/dl_ij", s.GradLogits);

            Step("Gradient with respect to t'", "dL/dt' = sum_ij dL/dl_ij t c_ij (there is no b).");
            console.WriteLine($"    softmax dL/dt' = {G(s.GradLogitScale)}");

            Step("Gradient with respect to the embeddings", "The same chain as for the sigmoid loss: dL/dx_i = sum_j dL/dl_ij t y_j, then back through the normalisation.");
            Vectors(("dL/dx_i", s.GradImageNormed, true), ("dL/dy_i", s.GradTextNormed, true));
            Vectors(("dL/du_i", s.GradImageEmbeds, true), ("dL/dv_i", s.GradTextEmbeds, true));
        }

        private void Contrast()
        {
            var s = e.Sigmoid;
            var m = e.Softmax;
            console.WriteLine();
            console.Write(new Rule("[bold]Sigmoid against softmax[/]").LeftJustified());
            var table = new Table().AddColumn("").AddColumn("sigmoid (SigLIP)").AddColumn("softmax (CLIP)");
            table.AddRow("each pair is", "its own yes/no question: match or not", "one option in an n-way choice (its row, and its column)");
            table.AddRow("a probability depends on", "its own logit only", "every logit in its row (P) or column (Q)");
            table.AddRow("row sums of the probabilities", string.Join(", ", RowSums(s.Probabilities).Select(Num)), string.Join(", ", RowSums(m.ImageToTextProbabilities).Select(Num)));
            table.AddRow("bias b", $"learned; the paper starts it at -10 (here {G(e.LogitBias)})", "none (it would cancel)");
            table.AddRow("loss here", $"{G(s.Loss)} (n^2 pair terms, divided by n)", $"{G(m.Loss)} (mean cross-entropy)");
            table.AddRow("dL/dl_ij needs", "l_ij alone", "the whole row and column");
            table.AddRow("across devices", "blocks of (n/D)^2 logits, one at a time", "all-gathers: the whole row and column at once");
            console.Write(table);
            Say("Because a sigmoid pair needs nothing from its neighbours, SigLIP can split the n x n logits into blocks and never hold them all (paper section 3.1). " +
                "The paper also reports that the sigmoid loss does better than softmax at small batch sizes; `siglip experiment batch-size` puts that claim to the test on the built-in data (docs/builtin-dataset.md).");
        }

        private void Step(string title, string explanation)
        {
            _step++;
            console.WriteLine();
            console.MarkupLine($"[bold]Step {_step}. {Markup.Escape(title)}[/]");
            Say(explanation);
        }

        // Wrapped at word boundaries to the console width, indented by two spaces (no trailing blanks, so it copies cleanly).
        private void Say(string text)
        {
            int width = Math.Max(40, console.Profile.Width - 2);
            var line = new System.Text.StringBuilder();
            foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (line.Length > 0 && line.Length + 1 + word.Length > width)
                {
                    console.WriteLine("  " + line);
                    line.Clear();
                }
                if (line.Length > 0) line.Append(' ');
                line.Append(word);
            }
            if (line.Length > 0) console.WriteLine("  " + line);
        }

        private void Matrix(string title, Tensor matrix, Func<double, string>? format = null, bool rowSums = false, bool columnSums = false)
        {
            format ??= Num;
            var table = new Table().Title(Markup.Escape(title)).AddColumn(new TableColumn(""));
            for (int j = 0; j < _n; j++) table.AddColumn(new TableColumn($"text {j + 1}").RightAligned());
            if (rowSums) table.AddColumn(new TableColumn("row sum").RightAligned());
            var sums = RowSums(matrix);
            for (int i = 0; i < _n; i++)
            {
                var row = new List<string> { $"image {i + 1}" };
                for (int j = 0; j < _n; j++)
                {
                    string cell = Markup.Escape(format(matrix.Data[i * _n + j]));
                    row.Add(i == j ? $"[bold]{cell}[/]" : cell);
                }
                if (rowSums) row.Add(Num(sums[i]));
                table.AddRow(row.ToArray());
            }
            if (columnSums)
            {
                var row = new List<string> { "column sum" };
                for (int j = 0; j < _n; j++)
                {
                    double sum = 0;
                    for (int i = 0; i < _n; i++) sum += matrix.Data[i * _n + j];
                    row.Add(Num(sum));
                }
                table.AddRow(row.ToArray());
            }
            console.Write(table);
        }

        private void Vectors(params (string Title, Tensor Rows, bool Gradient)[] columns)
        {
            var table = new Table().AddColumn("pair i");
            foreach (var c in columns) table.AddColumn(Markup.Escape(c.Title));
            for (int i = 0; i < _n; i++)
            {
                var row = new List<string> { $"{i + 1}" };
                foreach (var c in columns) row.Add(Vector(c.Rows, i));
                table.AddRow(row.ToArray());
            }
            console.Write(table);
        }

        private string Vector(Tensor rows, int i) =>
            Markup.Escape("(" + string.Join(", ", Enumerable.Range(0, _d).Select(k => Num(rows.Data[i * _d + k]))) + ")");

        private double[] RowSums(Tensor matrix)
        {
            var sums = new double[_n];
            for (int i = 0; i < _n; i++)
                for (int j = 0; j < _n; j++)
                    sums[i] += matrix.Data[i * _n + j];
            return sums;
        }
    }

    /// <summary>Table cells: four decimals, or scientific notation for small values (so 4.5e-5 keeps its digits).</summary>
    internal static string Num(double v) => v == 0 || (Math.Abs(v) >= 1e-3 && Math.Abs(v) < 1e5)
        ? v.ToString("0.0000", CultureInfo.InvariantCulture)
        : v.ToString("0.000E+0", CultureInfo.InvariantCulture);

    /// <summary>Scalars in sentences: eight significant digits.</summary>
    internal static string G(double v) => v.ToString("G8", CultureInfo.InvariantCulture);

    /// <summary>
    /// <paramref name="value"/> with eight significant digits, or with as many decimals as
    /// <paramref name="other"/> shows if that is more, so that dividing it by n gives what is printed
    /// for the loss: a sum of -1199.99996 is not shown as -1200 beside a loss of 299.99999.
    /// </summary>
    internal static string AtLeastAsPrecise(double value, double other)
    {
        string own = G(value), theirs = G(other);
        if (own.Contains('E') || theirs.Contains('E')) return own;   // both keep eight significant digits
        int decimals = Math.Max(Decimals(own), Decimals(theirs));
        return value.ToString("F" + decimals, CultureInfo.InvariantCulture);
    }

    private static int Decimals(string shown) => shown.IndexOf('.') is int dot and >= 0 ? shown.Length - dot - 1 : 0;

    private static string Label(double z) => z > 0 ? "+1" : "-1";

    private static string Fixed(double v, int decimals) => v.ToString("F" + decimals, CultureInfo.InvariantCulture);

    private static string Show(double v) => double.IsInfinity(v) ? (v > 0 ? "Infinity" : "-Infinity") : v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Every number at full precision (round-trip doubles), matrices as arrays of rows.</summary>
    private static byte[] ToJson(WorkedExampleResult e, long seed)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("n", e.Pairs);
            w.WriteNumber("d", e.Width);
            w.WriteNumber("seed", seed);
            w.WriteNumber("logit_scale", e.LogitScale);
            w.WriteNumber("temperature", e.Temperature);
            w.WriteNumber("logit_bias", e.LogitBias);
            Matrix(w, "image_embeds", e.ImageEmbeds);
            Matrix(w, "text_embeds", e.TextEmbeds);
            List(w, "image_norms", e.ImageNorms);
            List(w, "text_norms", e.TextNorms);
            Matrix(w, "image_normed", e.ImageNormed);
            Matrix(w, "text_normed", e.TextNormed);
            Matrix(w, "cosines", e.Cosines);

            var s = e.Sigmoid;
            w.WriteStartObject("sigmoid");
            Matrix(w, "logits", s.Logits);
            Matrix(w, "labels", s.Labels);
            Matrix(w, "probabilities", s.Probabilities);
            Matrix(w, "log_sigmoids", s.LogSigmoids);
            w.WriteNumber("loss", s.Loss);
            Matrix(w, "grad_logits", s.GradLogits);
            Matrix(w, "grad_image_normed", s.GradImageNormed);
            Matrix(w, "grad_text_normed", s.GradTextNormed);
            w.WriteNumber("grad_logit_scale", s.GradLogitScale);
            w.WriteNumber("grad_logit_bias", s.GradLogitBias);
            Matrix(w, "grad_image_embeds", s.GradImageEmbeds);
            Matrix(w, "grad_text_embeds", s.GradTextEmbeds);
            w.WriteEndObject();

            var m = e.Softmax;
            w.WriteStartObject("softmax");
            Matrix(w, "logits", m.Logits);
            List(w, "row_log_sum_exp", m.RowLogSumExp);
            List(w, "column_log_sum_exp", m.ColumnLogSumExp);
            Matrix(w, "image_to_text_probabilities", m.ImageToTextProbabilities);
            Matrix(w, "text_to_image_probabilities", m.TextToImageProbabilities);
            List(w, "image_losses", m.ImageLosses);
            List(w, "text_losses", m.TextLosses);
            w.WriteNumber("image_to_text_loss", m.ImageToTextLoss);
            w.WriteNumber("text_to_image_loss", m.TextToImageLoss);
            w.WriteNumber("loss", m.Loss);
            Matrix(w, "grad_logits", m.GradLogits);
            Matrix(w, "grad_image_normed", m.GradImageNormed);
            Matrix(w, "grad_text_normed", m.GradTextNormed);
            w.WriteNumber("grad_logit_scale", m.GradLogitScale);
            Matrix(w, "grad_image_embeds", m.GradImageEmbeds);
            Matrix(w, "grad_text_embeds", m.GradTextEmbeds);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static void Matrix(Utf8JsonWriter w, string name, Tensor t)
    {
        int rows = t.Shape[0], columns = t.Shape[1];
        w.WriteStartArray(name);
        for (int i = 0; i < rows; i++)
        {
            w.WriteStartArray();
            for (int j = 0; j < columns; j++) w.WriteNumberValue(t.Data[i * columns + j]);
            w.WriteEndArray();
        }
        w.WriteEndArray();
    }

    private static void List(Utf8JsonWriter w, string name, IReadOnlyList<double> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }
}
