using System.Text;
using System.Text.RegularExpressions;

namespace SigLip.SpecTests.Docs;

/// <summary>
/// Every relative Markdown link in docs/ and the README points to a file that exists, and every
/// #anchor to a heading of that file (GitHub's heading ids), so pages can be moved or renamed only
/// together with the links to them.
/// </summary>
public sealed partial class DocLinkTests
{
    [GeneratedRegex(@"\[(?<text>[^\]]*)\]\((?<target>[^)\s]+)\)")]
    private static partial Regex LinkPattern();

    [GeneratedRegex(@"^#{1,6}\s+(?<heading>.+?)\s*#*\s*$", RegexOptions.Multiline)]
    private static partial Regex HeadingPattern();

    [GeneratedRegex(@"^\s*```.*?^\s*```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex FencePattern();

    /// <summary>GitHub's id for a heading: lower case, only letters, digits, '-', '_' and spaces kept, spaces to '-'.</summary>
    internal static string Slug(string heading)
    {
        var sb = new StringBuilder();
        foreach (char ch in heading.Trim().ToLowerInvariant())
            if (char.IsLetterOrDigit(ch) || ch is '-' or '_') sb.Append(ch);
            else if (ch == ' ') sb.Append('-');
        return sb.ToString();
    }

    private static string WithoutCode(string markdown) => FencePattern().Replace(markdown, "");

    [Fact]
    public void Slugs_follow_githubs_rule()
    {
        Assert.Equal("4-temperature-t-and-bias-b", Slug("4. Temperature t' and bias b"));
        Assert.Equal("see-it-worked-siglip-explain", Slug("See it worked: `siglip explain`"));
        Assert.Equal("3-the-sigmoid-loss-dense-sigmoidloss", Slug("3. The sigmoid loss, dense (`SigmoidLoss`)"));
    }

    [Fact]
    public void Links_in_the_docs_and_the_readme_point_to_files_and_headings_that_exist()
    {
        var pages = Directory.EnumerateFiles(DocPaths.Docs, "*.md", SearchOption.AllDirectories)
            .Append(Path.Combine(DocPaths.Root, "README.md"))
            .Order(StringComparer.Ordinal);
        var problems = new List<string>();
        int links = 0;
        foreach (var page in pages)
        {
            string text = WithoutCode(File.ReadAllText(page));
            foreach (Match m in LinkPattern().Matches(text))
            {
                string target = m.Groups["target"].Value;
                if (Regex.IsMatch(target, @"^[a-z]+:", RegexOptions.IgnoreCase)) continue; // http:, https:, mailto:
                links++;
                int hash = target.IndexOf('#');
                string path = hash < 0 ? target : target[..hash];
                string? anchor = hash < 0 ? null : target[(hash + 1)..];
                string file = path.Length == 0 ? page : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(page)!, Uri.UnescapeDataString(path)));
                string where = $"{Path.GetRelativePath(DocPaths.Root, page)}: [{m.Groups["text"].Value}]({target})";
                if (!File.Exists(file) && !Directory.Exists(file)) { problems.Add($"{where}: {Path.GetRelativePath(DocPaths.Root, file)} does not exist."); continue; }
                if (anchor is null || !file.EndsWith(".md", StringComparison.OrdinalIgnoreCase)) continue;
                var ids = HeadingPattern().Matches(WithoutCode(File.ReadAllText(file))).Select(h => Slug(h.Groups["heading"].Value)).ToHashSet();
                if (!ids.Contains(anchor)) problems.Add($"{where}: no heading with id '{anchor}' in {Path.GetFileName(file)}.");
            }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.True(links >= 20, $"only {links} relative links found: is the link pattern still right?");
    }
}
