using System.Text.Json.Nodes;
using SigLip.Data;
using SigLip.Reference.Data;
using Spectre.Console;

namespace SigLip.Cli;

/// <summary>
/// What an image-caption folder skipped, as `train` and `eval` print it and put it in their report JSON:
/// the total, then one line per reason with its count and first example.
/// </summary>
internal static class FolderSkips
{
    /// <summary>Prints the counts by reason (nothing when <paramref name="data"/> is no folder or skipped nothing).</summary>
    public static void Print(IImageTextSource data)
    {
        if (data is not ImageCaptionFolder folder || folder.Skipped == 0) return;
        foreach (var line in folder.SkipSummary().Split(Environment.NewLine))
            AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(line)}[/]");
    }

    /// <summary>
    /// The report's "skipped" object: {"total": N, "lines_read": L, "by_reason": {"invalid-json": 3, ...},
    /// "first": {"invalid-json": "line 4: ...", ...}}; null when <paramref name="data"/> is not a folder.
    /// </summary>
    public static JsonObject? ToJson(IImageTextSource data)
    {
        if (data is not ImageCaptionFolder folder) return null;
        var tally = folder.Tally;
        var byReason = new JsonObject();
        var first = new JsonObject();
        foreach (var c in tally.ByReason)
        {
            byReason[c.Key] = c.Count;
            first[c.Key] = c.FirstExample.ToString();
        }
        return new JsonObject { ["total"] = tally.Total, ["lines_read"] = tally.LinesRead, ["by_reason"] = byReason, ["first"] = first };
    }
}
