using System.Diagnostics;
using System.Text;
using SigLip.SpecTests.Data;
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
    /// Numbers the tutorial's prose quotes from a verb's output, where that output is the same on every
    /// machine (seeded, float64): each must still be in the tutorial and in what the verb prints.
    /// (Training numbers are not listed: thread counts and SIMD width may change their last digits.)
    /// </summary>
    private static readonly Dictionary<string, string[]> QuotedOutput = new()
    {
        ["explain"] = ["5.5808761", "1.395219", "0.54615356", "0.49327545", "0.51971451"],
    };

    [Fact]
    public void Every_command_of_the_tutorial_runs_as_written()
    {
        string tutorial = Path.Combine(DocPaths.Docs, Tutorial);
        var steps = Steps(tutorial);
        string prose = File.ReadAllText(tutorial);
        foreach (var (verb, numbers) in QuotedOutput)
            foreach (var number in numbers)
                Assert.True(prose.Contains(number, StringComparison.Ordinal), $"{Tutorial} no longer quotes {number} from `siglip {verb}`; update TutorialTests.QuotedOutput.");
        Assert.True(steps.Count(s => s.Arguments is not null) >= 5, $"{Tutorial} has only {steps.Count(s => s.Arguments is not null)} commands.");

        string work = Path.Combine(Path.GetTempPath(), "siglip-tutorial-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        // The tutorial runs from the repository root; golden verify and the training gate find golden/ there.
        string goldenLink = Path.Combine(work, "golden");
        Directory.CreateSymbolicLink(goldenLink, Path.Combine(DocPaths.Root, "golden"));
        string previous = Directory.GetCurrentDirectory();
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
                if (step.Arguments.Count > 0 && QuotedOutput.TryGetValue(step.Arguments[0], out var quoted))
                    foreach (var number in quoted)
                        Assert.True(stdout.Contains(number, StringComparison.Ordinal),
                            $"{step.Where}: the tutorial quotes {number} from '{step.Line}', but the command no longer prints it.\nstdout:\n{Tail(stdout)}");
                foreach (var path in PathArguments(step.Arguments))
                    Assert.True(File.Exists(path) || Directory.Exists(path), $"{step.Where}: '{step.Line}' did not create {path}.");
            }
            output.WriteLine($"tutorial: {total.Elapsed.TotalSeconds:0.0} s");
        }
        finally
        {
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

    private static string Tail(string text) => text.Length <= 4000 ? text : "...\n" + text[^4000..];
}
