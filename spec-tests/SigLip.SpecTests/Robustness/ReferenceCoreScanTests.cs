using System.Text;
using System.Text.RegularExpressions;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Robustness;

/// <summary>
/// The reference core (src/SigLip.Reference) is the specification and nothing else (issue 13): no
/// SIMD, no thread-local or async-local state, no kernel switch anywhere in it; no parallel loops and
/// no thread count in its layers, loss, models and tensors (Evaluation may run experiments in
/// parallel; the backend contract may carry a thread option for backends that take one).
/// The scan reads the C# source with comments removed (string literals are kept, so an environment
/// variable named in code is seen), and a failure names file:line and the rule of every hit.
/// </summary>
public sealed class ReferenceCoreScanTests
{
    private sealed record Rule(string Name, Regex Pattern);

    /// <summary>Forbidden anywhere in src/SigLip.Reference.</summary>
    private static readonly Rule[] Everywhere =
    [
        new("SIMD intrinsics (System.Runtime.Intrinsics)", new Regex(@"System\.Runtime\.Intrinsics", RegexOptions.Compiled)),
        new("SIMD vectors (Vector128/256/512, Vector<T>)", new Regex(@"\bVector(128|256|512)\b|\bVector\s*<", RegexOptions.Compiled)),
        new("thread-local state ([ThreadStatic], ThreadLocal<T>)", new Regex(@"\bThreadStatic\b|\bThreadLocal\s*<", RegexOptions.Compiled)),
        new("async-local state (AsyncLocal)", new Regex(@"\bAsyncLocal\b", RegexOptions.Compiled)),
        new("a kernel mode switch (KernelSettings, KernelMode, UseFastPath, SIGLIP_KERNELS)",
            new Regex(@"\bKernelSettings\b|\bKernelMode\b|\bUseFastPath\b|\bFastPath\b|SIGLIP_KERNELS", RegexOptions.Compiled)),
    ];

    /// <summary>The folders holding the maths, where nothing may run in parallel or take a thread count.</summary>
    private static readonly string[] MathsFolders = ["Layers", "Loss", "Models", "Tensors"];

    /// <summary>Forbidden in <see cref="MathsFolders"/>.</summary>
    private static readonly Rule[] InTheMaths =
    [
        new("a parallel loop (Parallel.For / ForEach / Invoke)", new Regex(@"\bParallel\s*\.", RegexOptions.Compiled)),
        new("a thread count (Threads, ThreadCount, ProcessorCount, MaxDegreeOfParallelism)",
            new Regex(@"\b(Threads|threads|ThreadCount|threadCount|numThreads|NumThreads|ProcessorCount|MaxDegreeOfParallelism|ParallelOptions)\b", RegexOptions.Compiled)),
        new("a thread pool or task (ThreadPool, Task.Run, new Thread)", new Regex(@"\bThreadPool\b|\bTask\s*\.\s*Run\b|\bnew\s+Thread\s*\(", RegexOptions.Compiled)),
    ];

    private static string Core => Path.Combine(RepoPaths.Root, "src", "SigLip.Reference");

    /// <summary>Every .cs file of the core outside bin/ and obj/.</summary>
    private static IEnumerable<string> SourceFiles(string folder) =>
        Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories)
            .Where(f => !Path.GetRelativePath(Core, f).Split(Path.DirectorySeparatorChar).Any(p => p is "bin" or "obj"))
            .Order(StringComparer.Ordinal);

    /// <summary>"path:line: rule: the line" for every line of <paramref name="files"/> matching a rule.</summary>
    public static IEnumerable<string> Hits(IEnumerable<string> files, IReadOnlyList<(string Name, Regex Pattern)> rules)
    {
        foreach (var file in files)
        {
            var lines = WithoutComments(File.ReadAllText(file)).Split('\n');
            for (int i = 0; i < lines.Length; i++)
                foreach (var (name, pattern) in rules)
                    if (pattern.IsMatch(lines[i]))
                        yield return $"{Path.GetRelativePath(RepoPaths.Root, file)}:{i + 1}: {name}: {lines[i].Trim()}";
        }
    }

    /// <summary>
    /// The source with // and /* */ comments blanked out (line breaks kept, so line numbers stay),
    /// string and character literals kept. Handles "..." with escapes, @"..." and '...'; enough for
    /// this repository's sources (raw and interpolated-verbatim literals are read as ordinary strings).
    /// </summary>
    public static string WithoutComments(string source)
    {
        var sb = new StringBuilder(source.Length);
        int i = 0;
        while (i < source.Length)
        {
            char c = source[i];
            char next = i + 1 < source.Length ? source[i + 1] : '\0';
            if (c == '/' && next == '/')
            {
                while (i < source.Length && source[i] != '\n') i++;
            }
            else if (c == '/' && next == '*')
            {
                i += 2;
                while (i < source.Length && !(source[i] == '*' && i + 1 < source.Length && source[i + 1] == '/'))
                {
                    if (source[i] == '\n') sb.Append('\n');
                    i++;
                }
                i += 2;
            }
            else if (c == '@' && next == '"')
            {
                sb.Append("@\"");
                i += 2;
                while (i < source.Length)
                {
                    if (source[i] == '"' && i + 1 < source.Length && source[i + 1] == '"') { sb.Append("\"\""); i += 2; continue; }
                    sb.Append(source[i]);
                    if (source[i++] == '"') break;
                }
            }
            else if (c is '"' or '\'')
            {
                sb.Append(c);
                i++;
                while (i < source.Length && source[i] != c && source[i] != '\n')
                {
                    if (source[i] == '\\' && i + 1 < source.Length) sb.Append(source[i++]);
                    sb.Append(source[i++]);
                }
                if (i < source.Length) sb.Append(source[i++]);
            }
            else
            {
                sb.Append(c);
                i++;
            }
        }
        return sb.ToString();
    }

    private static (string, Regex)[] AsPairs(Rule[] rules) => rules.Select(r => (r.Name, r.Pattern)).ToArray();

    [Fact]
    public void The_core_has_no_SIMD_no_thread_or_async_local_state_and_no_kernel_switch()
    {
        var files = SourceFiles(Core).ToList();
        Assert.True(files.Count > 50, $"expected the core's sources under {Core}, found {files.Count} files");
        var hits = Hits(files, AsPairs(Everywhere)).ToList();
        Assert.True(hits.Count == 0, $"{hits.Count} forbidden construct(s) in src/SigLip.Reference (the specification holds readable loops only):\n" + string.Join("\n", hits));
    }

    [Fact]
    public void The_layers_loss_models_and_tensors_run_no_parallel_loops_and_take_no_thread_count()
    {
        var files = MathsFolders.SelectMany(f =>
        {
            var folder = Path.Combine(Core, f);
            Assert.True(Directory.Exists(folder), $"{folder} is missing: the scan's folder list is out of date");
            return SourceFiles(folder);
        }).ToList();
        var hits = Hits(files, AsPairs(InTheMaths)).ToList();
        Assert.True(hits.Count == 0, $"{hits.Count} parallel loop(s) or thread count(s) in the core's maths (a backend's business, not the specification's):\n" + string.Join("\n", hits));
    }

    [Fact]
    public void The_scan_sees_code_and_strings_but_not_comments()
    {
        // The scanner's own check: a planted line is found with its line number; a comment is not.
        var dir = Directory.CreateTempSubdirectory("siglip-scan-");
        try
        {
            var file = Path.Combine(dir.FullName, "Planted.cs");
            File.WriteAllText(file, string.Join("\n",
                "// Parallel.For and Vector256 mentioned in a comment are fine",
                "/* [ThreadStatic] in a block comment",
                "   is fine too */",
                "var url = \"http://example\"; Parallel.For(0, n, i => { });",
                "var v = Vector256.Create(1.0); // trailing comment",
                "var s = @\"a \"\" quote\"; var e = Environment.GetEnvironmentVariable(\"SIGLIP_KERNELS\");",
                "int threads = Environment.ProcessorCount;"));
            var hits = Hits([file], AsPairs(Everywhere.Concat(InTheMaths).ToArray())).ToList();
            Assert.Collection(hits,
                h => Assert.Contains("Planted.cs:4: a parallel loop", h),
                h => Assert.Contains("Planted.cs:5: SIMD vectors", h),
                h => Assert.Contains("Planted.cs:6: a kernel mode switch", h),
                h => Assert.Contains("Planted.cs:7: a thread count", h));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
