using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Xunit.Abstractions;
using static SigLip.SpecTests.Packaging.PackagingFixture;

namespace SigLip.SpecTests.Packaging;

/// <summary>
/// The `siglip` tool installed from the local folder with `dotnet tool install --tool-path`, run from a
/// folder outside the repository: it must find its own golden cases and (Linux x64) its own libtorch.
/// </summary>
[Collection(PackagingCollection.Name)]
public sealed class ToolPackageTests(PackagingFixture packages, ITestOutputHelper output)
{
    private string OutsideTheRepository => Directory.CreateDirectory(Path.Combine(packages.Root, "work")).FullName;

    private ProcessResult Siglip(params string[] args)
    {
        var result = Run(packages.ToolPath, args, OutsideTheRepository, TimeSpan.FromMinutes(10));
        packages.Timings.Add(("siglip " + string.Join(" ", args), result.Elapsed));
        output.WriteLine(result.Describe(3000));
        return result;
    }

    private static readonly bool LinuxX64 = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    [Fact]
    public void The_installed_tool_prints_help_listing_the_same_verbs_as_the_built_CLI()
    {
        var help = Siglip("--help");
        Assert.True(help.ExitCode == 0, $"siglip --help failed.\n{help.Describe()}");
        var verbs = Verbs(help.Stdout);
        foreach (var verb in new[] { "train", "eval", "golden", "backends", "experiment" })
            Assert.True(verbs.Contains(verb), $"siglip --help does not list '{verb}':\n{help.Stdout}");

        // The CLI this test project was built with (siglip.dll beside the tests) lists the same verbs.
        var built = Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "siglip.dll"), "--help"], OutsideTheRepository, TimeSpan.FromMinutes(2));
        Assert.True(built.ExitCode == 0, built.Describe());
        Assert.Equal(Verbs(built.Stdout).Order(), verbs.Order());
    }

    [SkippableFact]
    public void The_installed_tool_verifies_the_torch_backend_against_its_own_golden_cases()
    {
        var backends = Siglip("backends");
        Assert.True(backends.ExitCode == 0, $"siglip backends failed.\n{backends.Describe()}");
        Assert.Matches(new Regex(@"reference\s*│\s*yes"), backends.Stdout);
        // Reported as Skipped (with the reason), never as a pass: the torch half cannot run here.
        Skip.IfNot(LinuxX64, $"{RuntimeInformation.RuntimeIdentifier}: the tool carries libtorch for linux-x64 only, so its torch backend " +
                             "cannot start here (only `siglip backends` and the reference backend were checked)");
        Assert.True(Regex.IsMatch(backends.Stdout, @"torch\s*│\s*yes"),
            $"the installed tool's torch backend cannot start (its libtorch or patched libLibTorchSharp.so did not load):\n{backends.Describe()}");

        var verify = Siglip("golden", "verify", "--backend", "torch", "--failures-only");
        Assert.True(verify.ExitCode == 0, $"siglip golden verify --backend torch failed in the installed tool.\n{verify.Describe()}");
        // The cases beside the installed executable (the output may wrap the path).
        Assert.Matches(new Regex(@"casesfrom.*" + Regex.Escape(Path.Combine("tools", "net10.0", "any", "golden"))), Regex.Replace(verify.Stdout, @"\s+", ""));
        Assert.Matches(new Regex(@"all \d+ cases pass"), verify.Stdout);
    }

    [Fact]
    public void The_installed_tools_training_gate_finds_the_shipped_golden_cases()
    {
        var run = Path.Combine(packages.Root, "train-run");
        var train = Siglip("train", "--steps", "1", "--batch-size", "4", "--out", run);
        Assert.True(train.ExitCode == 0, $"siglip train (with its golden gate) failed in the installed tool.\n{train.Describe()}");
        var text = Regex.Replace(train.Stdout, @"\s+", "");
        Assert.Contains("Goldencheckpassedon'managed'", text); // train's default backend
        Assert.Matches(new Regex(Regex.Escape(Path.Combine("tools", "net10.0", "any", "golden"))), text);
    }

    /// <summary>The verb names under "Commands:" in System.CommandLine's help.</summary>
    private static List<string> Verbs(string help) =>
        help.Split('\n').SkipWhile(l => !l.StartsWith("Commands:", StringComparison.Ordinal)).Skip(1)
            .Select(l => Regex.Match(l, @"^  (\S+)"))
            .Where(m => m.Success)
            .Select(m => m.Groups[1].Value)
            .ToList();
}
