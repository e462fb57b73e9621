namespace SigLip.SpecTests.Docs;

/// <summary>A fenced code block of a Markdown file: its language tag, its lines and the line it starts on (1-based, the fence).</summary>
internal sealed record MarkdownBlock(string File, string Language, int Line, IReadOnlyList<string> Lines);

internal static class MarkdownBlocks
{
    /// <summary>Every ``` fenced block of a Markdown file, in order. An unclosed fence is an error (it would hide the rest of the page).</summary>
    public static IReadOnlyList<MarkdownBlock> Read(string path)
    {
        var lines = File.ReadAllLines(path);
        var blocks = new List<MarkdownBlock>();
        for (int i = 0; i < lines.Length; i++)
        {
            var open = lines[i].TrimStart();
            if (!open.StartsWith("```", StringComparison.Ordinal)) continue;
            string language = open[3..].Trim();
            int start = i;
            var body = new List<string>();
            for (i++; i < lines.Length && !lines[i].TrimStart().StartsWith("```", StringComparison.Ordinal); i++) body.Add(lines[i]);
            if (i >= lines.Length)
                throw new InvalidOperationException($"{path}:{start + 1}: the code fence opened here is never closed.");
            blocks.Add(new MarkdownBlock(path, language, start + 1, body));
        }
        return blocks;
    }
}
