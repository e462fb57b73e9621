using System.Globalization;
using System.Text.RegularExpressions;

namespace SigLip.SpecTests.Explain;

/// <summary>
/// What `siglip explain` printed, read back: every box-drawn table (its title line, header and body
/// cells) and every indented formula line ("    name = value"). Tests mark what they checked, so a
/// table or formula line that no test reads is itself a failure (<see cref="AssertAllChecked"/>).
/// </summary>
internal sealed class ExplainOutput
{
    /// <summary>One printed table: the line above its top border (a title, or the explanation before it), its header and its body rows.</summary>
    internal sealed record PrintedTable(int Index, string Above, string[] Header, string[][] Rows);

    private readonly HashSet<int> _checkedTables = [];
    private readonly HashSet<string> _checkedFormulas = [];

    public ExplainOutput(string stdout)
    {
        Lines = Regex.Replace(stdout, @"\x1b\[[0-9;]*m", "").Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        var tables = new List<PrintedTable>();
        for (int k = 0; k < Lines.Length; k++)
        {
            if (!Lines[k].StartsWith('┌')) continue;
            string above = k > 0 ? Lines[k - 1].Trim() : "";
            var header = Cells(Lines[k + 1]);
            Assert.StartsWith("├", Lines[k + 2]);
            var rows = new List<string[]>();
            int r = k + 3;
            for (; !Lines[r].StartsWith('└'); r++) rows.Add(Cells(Lines[r]));
            tables.Add(new PrintedTable(tables.Count, above, header, rows.ToArray()));
            k = r;
        }
        Tables = tables;
        Formulas = Lines.Where(l => l.StartsWith("    ", StringComparison.Ordinal) && !l.StartsWith("     ", StringComparison.Ordinal) && l.Contains(" = "))
            .Select(l => l.Trim()).ToArray();
    }

    public string[] Lines { get; }

    public IReadOnlyList<PrintedTable> Tables { get; }

    /// <summary>The indented formula lines, trimmed ("sigmoid dL/db = -0.51300068").</summary>
    public IReadOnlyList<string> Formulas { get; }

    /// <summary>The printed text with line breaks turned into spaces (explanations are wrapped at word boundaries).</summary>
    public string Prose => string.Join(" ", Lines.Select(l => l.Trim()));

    /// <summary>The occurrence-th n x n table titled <paramref name="title"/>: header "", text 1..n (and maybe "row sum").</summary>
    public PrintedTable Matrix(string title, int occurrence, int n)
    {
        var matches = Tables.Where(t => t.Above == title).ToArray();
        Assert.True(matches.Length > occurrence, $"table '{title}' #{occurrence + 1} was not printed");
        var table = matches[occurrence];
        for (int j = 0; j < n; j++) Assert.Equal($"text {j + 1}", table.Header[j + 1]);
        for (int i = 0; i < n; i++) Assert.Equal($"image {i + 1}", table.Rows[i][0]);
        _checkedTables.Add(table.Index);
        return table;
    }

    /// <summary>The occurrence-th table whose header is exactly <paramref name="header"/>.</summary>
    public PrintedTable WithHeader(int occurrence, params string[] header)
    {
        var matches = Tables.Where(t => t.Header.SequenceEqual(header)).ToArray();
        Assert.True(matches.Length > occurrence, $"table with header [{string.Join(" | ", header)}] #{occurrence + 1} was not printed");
        _checkedTables.Add(matches[occurrence].Index);
        return matches[occurrence];
    }

    /// <summary>The one formula line that starts with <paramref name="prefix"/>, whole.</summary>
    public string Formula(string prefix)
    {
        var line = Formulas.Where(l => l.StartsWith(prefix, StringComparison.Ordinal)).ToArray();
        Assert.True(line.Length == 1, $"expected one printed line starting '{prefix}', found {line.Length}");
        _checkedFormulas.Add(line[0]);
        return line[0];
    }

    /// <summary>The last word of the formula line that starts with <paramref name="prefix"/>.</summary>
    public string FormulaValue(string prefix) => Formula(prefix).Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1];

    /// <summary>Fails naming every printed table and formula line that no check read.</summary>
    public void AssertAllChecked()
    {
        var tables = Tables.Where(t => !_checkedTables.Contains(t.Index)).Select(t => $"table #{t.Index + 1} [{string.Join(" | ", t.Header)}] under '{t.Above}'");
        var formulas = Formulas.Where(f => !_checkedFormulas.Contains(f)).Select(f => $"line '{f}'");
        var unread = tables.Concat(formulas).ToArray();
        Assert.True(unread.Length == 0, "printed but not checked against the loss module:\n" + string.Join("\n", unread));
    }

    /// <summary>"(a, b, c)", a vector cell, as its numbers' printed forms.</summary>
    public static string[] VectorCell(string cell)
    {
        Assert.True(cell.StartsWith('(') && cell.EndsWith(')'), $"'{cell}' is not a vector cell '(a, b, ...)'");
        return cell[1..^1].Split(", ");
    }

    public static double Parse(string printed) => double.Parse(printed, NumberStyles.Float, CultureInfo.InvariantCulture);

    private static string[] Cells(string line)
    {
        Assert.True(line.StartsWith('│') && line.EndsWith('│'), $"not a table row: '{line}'");
        return line.Split('│', StringSplitOptions.TrimEntries)[1..^1];
    }
}
