using System.Reflection;
using System.Text.RegularExpressions;

namespace SigLip.SpecTests.Docs;

/// <summary>
/// The documentation quotes code; these tests keep the quotes true. A ```csharp block whose first
/// line is <c>// path/to/File.cs, Type.Method</c> must occur verbatim in that file (lines compared
/// with their indentation trimmed), after the named method's declaration; a line <c>// ...</c>
/// inside the block skips ahead. docs/derivations.md must quote the backward of every layer and
/// loss, and every test it names must exist.
/// </summary>
public sealed partial class DocSnippetTests
{
    private const string Derivations = "derivations.md";
    private const string Elision = "// ...";

    [GeneratedRegex(@"^//\s+(?<file>[\w./-]+\.cs)(,\s+(?<type>\w+)\.(?<method>\w+))?\s*$")]
    private static partial Regex HeaderPattern();

    [GeneratedRegex(@"`(?<type>\w+Tests)\.(?<method>\w+)`")]
    private static partial Regex TestNamePattern();

    /// <summary>The quoted (tagged) snippets of one Markdown file; in derivations.md every csharp block must be tagged.</summary>
    private static IEnumerable<(MarkdownBlock Block, string File, string? Type, string? Method)> Snippets(string markdown, List<string> problems)
    {
        foreach (var block in MarkdownBlocks.Read(markdown).Where(b => b.Language is "csharp" or "cs" or "c#"))
        {
            var header = block.Lines.Count == 0 ? null : HeaderPattern().Match(block.Lines[0].Trim());
            if (header is null || !header.Success)
            {
                if (Path.GetFileName(markdown) == Derivations)
                    problems.Add($"{Where(block)}: a csharp block without a '// src/.../File.cs, Type.Method' first line (every quote there must name its source).");
                continue;
            }
            yield return (block, header.Groups["file"].Value,
                header.Groups["type"].Success ? header.Groups["type"].Value : null,
                header.Groups["method"].Success ? header.Groups["method"].Value : null);
        }
    }

    private static string Where(MarkdownBlock b) => $"{Path.GetRelativePath(DocPaths.Root, b.File)}:{b.Line}";

    private static IEnumerable<string> MarkdownFiles() =>
        Directory.EnumerateFiles(DocPaths.Docs, "*.md", SearchOption.AllDirectories).Order(StringComparer.Ordinal);

    /// <summary>Checks one snippet; returns the problem, or null when it is a faithful quote.</summary>
    internal static string? CheckSnippet(MarkdownBlock block, string file, string? type, string? method)
    {
        string path = Path.Combine(DocPaths.Root, file);
        if (!File.Exists(path)) return $"{Where(block)}: names {file}, which does not exist.";
        var source = File.ReadAllLines(path).Select(l => l.Trim()).ToArray();

        int from = 0;
        if (type is not null)
        {
            var typeDecl = new Regex($@"\b(class|record|struct|interface)\s+{Regex.Escape(type)}\b");
            int typeLine = Array.FindIndex(source, l => typeDecl.IsMatch(l));
            if (typeLine < 0) return $"{Where(block)}: {file} declares no type {type}.";
            var methodDecl = new Regex($@"\b(public|internal|private|protected)\b.*\b{Regex.Escape(method!)}\s*(<[^>]*>)?\s*\(");
            int methodLine = Array.FindIndex(source, typeLine, l => methodDecl.IsMatch(l));
            if (methodLine < 0) return $"{Where(block)}: {file} declares no method {type}.{method}.";
            from = methodLine;
        }

        // Runs of quoted lines, separated by "// ..." lines; each run must be contiguous, in order.
        var runs = new List<List<string>> { new() };
        foreach (var line in block.Lines.Skip(1).Select(l => l.Trim()))
        {
            if (line == Elision) { runs.Add([]); continue; }
            runs[^1].Add(line);
        }
        runs.RemoveAll(r => r.Count == 0);
        if (runs.Count == 0) return $"{Where(block)}: the quote of {file} is empty.";
        foreach (var run in runs)
        {
            int at = Find(source, run, from);
            if (at < 0)
            {
                string first = run[0];
                int anywhere = Find(source, run, 0);
                string hint = anywhere >= 0 ? $" (it occurs at line {anywhere + 1}, before {type}.{method} or the previous quoted lines)"
                    : Array.FindIndex(source, l => l == first) is var single and >= 0 ? $" (its first line is at line {single + 1}, but the lines after it differ)"
                    : " (its first line is not in the file)";
                return $"{Where(block)}: these lines are not in {file} as quoted{hint}:\n    " + string.Join("\n    ", run);
            }
            from = at + run.Count;
        }
        return null;
    }

    private static int Find(string[] source, List<string> run, int from)
    {
        for (int i = from; i + run.Count <= source.Length; i++)
        {
            int k = 0;
            while (k < run.Count && source[i + k] == run[k]) k++;
            if (k == run.Count) return i;
        }
        return -1;
    }

    [Fact]
    public void Every_quoted_code_snippet_occurs_verbatim_in_the_file_it_names()
    {
        var problems = new List<string>();
        int checkedSnippets = 0;
        foreach (var markdown in MarkdownFiles())
            foreach (var (block, file, type, method) in Snippets(markdown, problems).ToList())
            {
                checkedSnippets++;
                if (CheckSnippet(block, file, type, method) is { } problem) problems.Add(problem);
            }
        Assert.True(problems.Count == 0, $"{problems.Count} quote(s) no longer match the code:\n" + string.Join("\n", problems));
        Assert.True(checkedSnippets >= 25, $"only {checkedSnippets} tagged snippets found under docs/: has derivations.md lost its quotes?");
    }

    [Fact]
    public void The_checker_rejects_a_changed_a_misplaced_and_an_unknown_quote()
    {
        // A quote check that cannot fail proves nothing: feed the checker deliberate mistakes, on a file of its own.
        string file = Path.Combine(Path.GetTempPath(), "siglip-doc-snippet-" + Guid.NewGuid().ToString("N") + ".cs");
        File.WriteAllLines(file,
        [
            "public static class Layer",
            "{",
            "    public static void Forward(double[] y, double[] x) { y[0] = 2 * x[0]; }",
            "    public static void Backward(double[] dx, double[] dy)",
            "    {",
            "        double d = dy[0];",
            "        dx[0] += 2 * d;",
            "    }",
            "}",
        ]);
        try
        {
            string Check(params string[] lines) =>
                CheckSnippet(new MarkdownBlock("test.md", "csharp", 1, ["// header", .. lines]), file, "Layer", "Backward") ?? "ok";
            Assert.Equal("ok", Check("dx[0] += 2 * d;"));
            Assert.Equal("ok", Check("double d = dy[0];", "dx[0] += 2 * d;"));
            Assert.Equal("ok", Check("    double d = dy[0];", Elision, "dx[0] += 2 * d;"));  // indentation does not matter
            Assert.Contains("not in", Check("dx[0] -= 2 * d;"));                              // a changed line
            Assert.Contains("lines after it differ", Check("double d = dy[0];", "dx[0] += d;"));
            Assert.Contains("not in", Check("dx[0] += 2 * d;", Elision, "double d = dy[0];")); // out of order
            Assert.Contains("before Layer.Backward", Check("public static void Forward(double[] y, double[] x) { y[0] = 2 * x[0]; }"));
            Assert.Contains("no method", CheckSnippet(new MarkdownBlock("t.md", "csharp", 1, ["// h", "x"]), file, "Layer", "Sideways"));
            Assert.Contains("no type", CheckSnippet(new MarkdownBlock("t.md", "csharp", 1, ["// h", "x"]), file, "Other", "Backward"));
            Assert.Contains("does not exist", CheckSnippet(new MarkdownBlock("t.md", "csharp", 1, ["// h", "x"]), "src/Nope.cs", null, null));
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Every public static Backward (and ForwardBackward) of the layers and losses is quoted in derivations.md under its type's name.</summary>
    [Fact]
    public void Derivations_quote_the_backward_of_every_layer_loss_and_model_part()
    {
        var problems = new List<string>();
        var quoted = Snippets(Path.Combine(DocPaths.Docs, Derivations), problems)
            .Where(s => s.Type is not null).Select(s => $"{s.Type}.{s.Method}").ToHashSet(StringComparer.Ordinal);

        var assembly = typeof(SigLip.Reference.Tensor).Assembly;
        var required = assembly.GetTypes()
            .Where(t => t.IsPublic && t.Namespace is "SigLip.Reference.Layers" or "SigLip.Reference.Loss" or "SigLip.Reference.Models")
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly)
                .Where(m => m.Name is "Backward" or "ForwardBackward" or "Derivative")
                .Select(m => $"{t.Name}.{m.Name}"))
            .Distinct()
            .ToList();
        // Parts whose backward lives in a private helper or a non-Backward name.
        required.AddRange(["SigmoidLoss.BlockBackward", "PatchEmbedding.ScatterPatches", "MapHead.AddRows"]);
        Assert.Contains("Linear.Backward", required); // the reflection found the layers at all

        foreach (var name in required.Distinct().Order(StringComparer.Ordinal))
            if (!quoted.Contains(name)) problems.Add($"docs/{Derivations} quotes no code from {name}.");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void Tests_named_in_the_derivations_exist()
    {
        string text = File.ReadAllText(Path.Combine(DocPaths.Docs, Derivations));
        var tests = typeof(DocSnippetTests).Assembly.GetTypes().Where(t => t.Name.EndsWith("Tests", StringComparison.Ordinal))
            .GroupBy(t => t.Name).ToDictionary(g => g.Key, g => g.ToList());
        var problems = new List<string>();
        int named = 0;
        foreach (Match m in TestNamePattern().Matches(text))
        {
            named++;
            string type = m.Groups["type"].Value, method = m.Groups["method"].Value;
            bool found = tests.TryGetValue(type, out var types) && types.Any(t => t.GetMethod(method) is { } mi
                && mi.GetCustomAttributes().Any(a => a is FactAttribute));
            if (!found) problems.Add($"{m.Value}: no test method {method} in a test class {type}.");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(named >= 15, $"docs/{Derivations} names only {named} tests; each backward should point to the test that proves it.");
    }
}
