using System.CommandLine;
using System.Reflection;
using System.Text.RegularExpressions;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Packaging;

/// <summary>
/// The tool package's README (src/SigLip.Cli/README.md, shown on nuget.org) names every verb the CLI
/// registers: no packing, just the CLI assembly the tests are built with.
/// </summary>
public sealed class CliReadmeTests
{
    [Fact]
    public void The_tool_README_lists_every_verb_and_subverb_the_CLI_registers()
    {
        var readme = File.ReadAllText(Path.Combine(RepoPaths.Root, "src", "SigLip.Cli", "README.md"));
        var paths = RegisteredCommandPaths();
        Assert.Contains("train", paths);   // the catalogue was read at all
        // Each as `siglip <verb> [<subverb>]`, possibly followed by its arguments inside the backticks.
        var missing = paths.Where(p => !Regex.IsMatch(readme, "`siglip " + Regex.Escape(p) + "[` ]")).ToList();
        Assert.True(missing.Count == 0,
            $"src/SigLip.Cli/README.md does not list {string.Join(", ", missing.Select(p => $"`siglip {p}`"))} " +
            $"(registered in src/SigLip.Cli/CommandCatalog.cs); it lists the verbs as `siglip <verb> ...`");
    }

    /// <summary>"verb" and "verb subverb" for every command of SigLip.Cli.CommandCatalog.All() (internal: read by reflection).</summary>
    private static List<string> RegisteredCommandPaths()
    {
        var cli = Assembly.Load("siglip");
        var catalog = cli.GetType("SigLip.Cli.CommandCatalog", throwOnError: true)!;
        var all = catalog.GetMethod("All", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            ?? throw new InvalidOperationException("SigLip.Cli.CommandCatalog has no static All()");
        var verbs = ((IEnumerable<Command>)all.Invoke(null, null)!).ToList();
        var paths = new List<string>();
        foreach (var verb in verbs)
        {
            paths.Add(verb.Name);
            paths.AddRange(verb.Subcommands.Select(s => verb.Name + " " + s.Name));
        }
        return paths;
    }
}
