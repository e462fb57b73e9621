using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using SigLip.SpecTests.Data;
using Spectre.Console;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Docs;

/// <summary>Runs alone: it changes the process's working folder while the tutorial runs.</summary>
[CollectionDefinition(nameof(TutorialTests), DisableParallelization = true)]
public sealed class TutorialCollection;

/// <summary>
/// docs/siglip-in-15-minutes.md promises that its commands run as written. This runs every line of
/// its ```sh blocks, in order, in a fresh temporary folder standing in for the repository root (with
/// the repository's golden/ linked in), each `siglip ...` command in-process through the program's
/// entry point (SigLip.Cli.Cli.Run), and requires exit code 0 and every --out/--report path to exist
/// afterwards. A line it does not know how to run fails the test, so the tutorial cannot rot.
/// </summary>
[Collection(nameof(TutorialTests))]
public sealed class TutorialTests(ITestOutputHelper output)
{
    private const string Tutorial = "siglip-in-15-minutes.md";

    /// <summary>The shell function the tutorial defines; in-process there is nothing to define.</summary>
    internal const string Definition = "siglip() { dotnet run --project src/SigLip.Cli -c Release -- \"$@\"; }";

    /// <summary>The same program run without the function: mapped to an in-process run of what follows "--".</summary>
    internal const string DotnetRun = "dotnet run --project src/SigLip.Cli -c Release --";

    /// <summary>One runnable line of the tutorial: where it is, and the siglip arguments (null for the definition).</summary>
    internal sealed record Step(string Where, string Line, IReadOnlyList<string>? Arguments);

    /// <summary>The tutorial's shell lines as steps; a line that cannot be run in-process throws, naming it.</summary>
    internal static IReadOnlyList<Step> Steps(string markdown)
    {
        var steps = new List<Step>();
        bool defined = false;
        foreach (var block in MarkdownBlocks.Read(markdown))
        {
            if (block.Language is not ("sh" or "bash" or "shell" or "console" or "zsh")) continue;
            var lines = block.Lines;
            for (int i = 0; i < lines.Count; i++)
            {
                string where = $"{Path.GetFileName(markdown)}:{block.Line + 1 + i}";
                string line = lines[i].Trim();
                while (line.EndsWith('\\') && i + 1 < lines.Count) line = line[..^1] + " " + lines[++i].Trim();
                if (line.Length == 0 || line.StartsWith('#')) continue;
                if (line == Definition)
                {
                    defined = true;
                    steps.Add(new Step(where, line, null));
                    continue;
                }
                IReadOnlyList<string> words;
                try { words = ShellWords(line); }
                catch (FormatException ex) { throw new InvalidOperationException($"{where}: '{line}': {ex.Message}"); }
                if (words.Count >= 1 && words[0] == "siglip")
                {
                    if (!defined)
                        throw new InvalidOperationException($"{where}: '{line}' uses siglip before the tutorial defines it with: {Definition}");
                    steps.Add(new Step(where, line, words.Skip(1).ToArray()));
                }
                else if (line == DotnetRun || line.StartsWith(DotnetRun + " ", StringComparison.Ordinal))
                    steps.Add(new Step(where, line, ShellWords(line[DotnetRun.Length..])));
                else
                    throw new InvalidOperationException(
                        $"{where}: the tutorial test does not know how to run '{line}'. Tutorial lines must be `siglip ...`, " +
                        $"`{DotnetRun} ...`, the definition `{Definition}`, or comments; teach TutorialTests any other command before adding it.");
            }
        }
        return steps;
    }

    /// <summary>Splits a command line as a POSIX shell would for plain words and quotes; refuses what needs a real shell.</summary>
    internal static IReadOnlyList<string> ShellWords(string line)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        bool inWord = false;
        for (int i = 0; i < line.Length; i++)
        {
            char ch = line[i];
            if (ch == '\'' || ch == '"')
            {
                int end = line.IndexOf(ch, i + 1);
                if (end < 0) throw new FormatException($"unclosed {ch} quote");
                string quoted = line[(i + 1)..end];
                if (ch == '"' && quoted.IndexOfAny(['$', '`', '\\']) >= 0)
                    throw new FormatException("a double-quoted word with $, ` or \\ needs a real shell");
                word.Append(quoted);
                inWord = true;
                i = end;
            }
            else if (char.IsWhiteSpace(ch))
            {
                if (inWord) words.Add(word.ToString());
                word.Clear();
                inWord = false;
            }
            else if ("|&;<>()$`\\*?[]{}~".Contains(ch))
                throw new FormatException($"'{ch}' needs a real shell (pipes, redirections, variables, globs); the test runs commands in-process");
            else
            {
                word.Append(ch);
                inWord = true;
            }
        }
        if (inWord) words.Add(word.ToString());
        return words;
    }

    [Fact]
    public void The_line_reader_maps_what_it_knows_and_refuses_the_rest()
    {
        string file = Path.Combine(Path.GetTempPath(), "siglip-tutorial-reader-" + Guid.NewGuid().ToString("N") + ".md");
        try
        {
            string Write(params string[] lines) { File.WriteAllLines(file, ["```sh", .. lines, "```"]); return file; }
            var steps = Steps(Write(Definition, "# a comment", "siglip train --steps 3 --out 'runs/a b'", DotnetRun + " backends"));
            Assert.Equal(3, steps.Count);
            Assert.Null(steps[0].Arguments);
            Assert.Equal(["train", "--steps", "3", "--out", "runs/a b"], steps[1].Arguments);
            Assert.Equal(["backends"], steps[2].Arguments);
            Assert.Contains("does not know how to run 'ls runs'", Assert.Throws<InvalidOperationException>(() => Steps(Write(Definition, "ls runs"))).Message);
            Assert.Contains("before the tutorial defines it", Assert.Throws<InvalidOperationException>(() => Steps(Write("siglip backends"))).Message);
            Assert.Contains("needs a real shell", Assert.Throws<InvalidOperationException>(() => Steps(Write(Definition, "siglip backends > out.txt"))).Message);
            Assert.Contains("needs a real shell", Assert.Throws<InvalidOperationException>(() => Steps(Write(Definition, "siglip eval --checkpoint $RUN"))).Message);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// What the tutorial's prose quotes from a verb's output, where that output is the same on every
    /// machine (seeded, float64, counts): each Prose text must still be in the tutorial and each
    /// Printed text in what the verb prints (both with line breaks read as spaces). Training and
    /// evaluation numbers are not listed: thread counts and SIMD width may change their last digits.
    /// </summary>
    private static readonly (string Verb, string Prose, string Printed)[] QuotedOutput =
    [
        ("explain", "Step 4, the logits", "Step 4. Logits"),
        ("explain", "Step 6, the probabilities", "Step 6. Probabilities"),
        ("explain", "Step 8, the loss", "Step 8. The loss"),
        ("explain", "Step 9, the gradient", "Step 9. Gradient with respect to the logits"),
        ("explain", "the 16 log-likelihoods sum to −5.5808761", "sum_ij log sigma(z_ij l_ij) = -5.5808761"),
        ("explain", "L = 5.5808761 / 4 = 1.395219", "-(-5.5808761) / 4 = 1.395219"),
        ("explain", "(0.54615356 + 0.49327545) / 2 = 0.51971451", "softmax loss L = (0.54615356 + 0.49327545) / 2 = 0.51971451"),
        ("golden", "It runs 19 cases", "all 19 cases pass"),
        ("golden", "ends with `all 19 cases pass`", "all 19 cases pass"),
        ("train", "two heads: 30,306 parameters", "30,306 parameters"),
    ];

    /// <summary>
    /// The numbers section 2 quotes rounded from explain's tables, rebuilt from what `siglip explain
    /// --n 4` printed (cells rounded to 2 decimals, minus signs as U+2212 like the prose).
    /// </summary>
    private static IEnumerable<string> ExplainQuotes(string stdout)
    {
        const int n = 4;
        var printed = new Explain.ExplainOutput(stdout);
        var logits = printed.Matrix("logits l_ij", 0, n);
        var sigma = printed.Matrix("sigma(l_ij)", 0, n);
        var p = printed.Matrix("P_ij (row softmax)", 0, n);
        string Two(string cell) => Math.Round(decimal.Parse(cell, System.Globalization.CultureInfo.InvariantCulture), 2, MidpointRounding.AwayFromZero)
            .ToString("0.00", System.Globalization.CultureInfo.InvariantCulture).Replace('-', '−');
        yield return $"({string.Join(", ", Enumerable.Range(0, n).Select(i => Two(logits.Rows[i][i + 1])))} on the diagonal)";
        yield return $"row 1 sums to {Two(sigma.Rows[0][n + 1])}";
        yield return $"Image 4's own text gets {Two(sigma.Rows[3][4])} from the sigmoid but {Two(p.Rows[3][4])} from the softmax";
        yield return $"({Two(sigma.Rows[2][1])} against {Two(sigma.Rows[2][3])} under the sigmoid, {Two(p.Rows[2][1])} against {Two(p.Rows[2][3])} under the softmax)";
    }

    [Fact]
    public void Every_command_of_the_tutorial_runs_as_written()
    {
        string tutorial = Path.Combine(DocPaths.Docs, Tutorial);
        var steps = Steps(tutorial);
        string prose = OneLine(File.ReadAllText(tutorial));
        foreach (var (verb, quote, _) in QuotedOutput)
            Assert.True(prose.Contains(quote, StringComparison.Ordinal), $"{Tutorial} no longer says '{quote}' (from `siglip {verb}`); update TutorialTests.QuotedOutput.");
        foreach (var verb in QuotedOutput.Select(q => q.Verb).Distinct())
            Assert.True(steps.Any(s => s.Arguments is { Count: > 0 } a && a[0] == verb), $"{Tutorial} quotes `siglip {verb}` but no longer runs it.");
        Assert.True(steps.Count(s => s.Arguments is not null) >= 5, $"{Tutorial} has only {steps.Count(s => s.Arguments is not null)} commands.");

        string work = Path.Combine(Path.GetTempPath(), "siglip-tutorial-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        // The tutorial runs from the repository root; golden verify and the training gate find golden/ there.
        string goldenLink = Path.Combine(work, "golden");
        Directory.CreateSymbolicLink(goldenLink, Path.Combine(DocPaths.Root, "golden"));
        string previous = Directory.GetCurrentDirectory();
        // Verbs that print through Spectre's static AnsiConsole (train, golden) would write to whatever
        // Console.Out was when it was first used; bind it to the Console.Out of each run instead, so
        // their output is captured too. Safe: this collection runs alone.
        var previousConsole = AnsiConsole.Console;
        AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(new CurrentConsoleOut()),
        });
        AnsiConsole.Console.Profile.Width = 132;
        var total = Stopwatch.StartNew();
        try
        {
            Directory.SetCurrentDirectory(work);
            foreach (var step in steps)
            {
                if (step.Arguments is null) continue;
                var watch = Stopwatch.StartNew();
                var (code, stdout, stderr) = CliRunner.Run([.. step.Arguments]);
                output.WriteLine($"{step.Where}: {step.Line}  -> exit {code} in {watch.Elapsed.TotalSeconds:0.0} s");
                Assert.True(code == 0,
                    $"{step.Where}: '{step.Line}' exited with {code}.\nstderr:\n{Tail(stderr)}\nstdout:\n{Tail(stdout)}");
                if (step.Arguments.Count > 0)
                {
                    foreach (var (verb, quote, shown) in QuotedOutput.Where(q => q.Verb == step.Arguments[0]))
                        Assert.True(OneLine(stdout).Contains(shown, StringComparison.Ordinal),
                            $"{step.Where}: the tutorial says '{quote}' about '{step.Line}', but the command no longer prints '{shown}'.\nstdout:\n{Tail(stdout)}");
                    if (step.Arguments[0] == "explain")
                        foreach (var quote in ExplainQuotes(stdout))
                            Assert.True(prose.Contains(quote, StringComparison.Ordinal),
                                $"{step.Where}: from what '{step.Line}' printed, section 2 of {Tutorial} should say '{quote}'.");
                }
                foreach (var path in PathArguments(step.Arguments))
                    Assert.True(File.Exists(path) || Directory.Exists(path), $"{step.Where}: '{step.Line}' did not create {path}.");
            }
            output.WriteLine($"tutorial: {total.Elapsed.TotalSeconds:0.0} s");
        }
        finally
        {
            AnsiConsole.Console = previousConsole;
            Directory.SetCurrentDirectory(previous);
            // Remove the link itself first, so that no recursive delete can ever reach the repository's golden/.
            Directory.Delete(goldenLink);
            try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static IEnumerable<string> PathArguments(IReadOnlyList<string> args)
    {
        for (int i = 0; i + 1 < args.Count; i++)
            if (args[i] is "--out" or "--report" or "--json") yield return args[i + 1];
    }

    // Line breaks (the prose's and a console's wrapping) as single spaces, so a quote may span lines.
    private static string OneLine(string text) => Regex.Replace(text, @"\s+", " ");

    /// <summary>Writes to whatever Console.Out is at the moment of writing.</summary>
    private sealed class CurrentConsoleOut : TextWriter
    {
        public override Encoding Encoding => Console.Out.Encoding;
        public override void Write(char value) => Console.Out.Write(value);
        public override void Write(string? value) => Console.Out.Write(value);
        public override void Flush() => Console.Out.Flush();
    }

    private static string Tail(string text) => text.Length <= 4000 ? text : "...\n" + text[^4000..];
}
