using System.Runtime.CompilerServices;

namespace SigLip.SpecTests.Support;

/// <summary>
/// Where the repository and ../shared are. The root is found from this source file's compile-time
/// path first (so it works when the build output lives outside the repository: SIGLIP_ARTIFACTS),
/// then from the test binary's folder (builds whose paths are mapped to /_/, CI=true).
/// </summary>
public static class RepoPaths
{
    public const string SolutionFile = "SigLip.Reference.sln";

    private static readonly Lazy<string> RootLazy = new(() => FindRoot(Path.GetDirectoryName(SourceFile()), AppContext.BaseDirectory));

    /// <summary>The repository root (the folder holding SigLip.Reference.sln).</summary>
    public static string Root => RootLazy.Value;

    /// <summary>../shared beside the repository, or SIGLIP_SHARED when set.</summary>
    public static string Shared => Environment.GetEnvironmentVariable("SIGLIP_SHARED") is { Length: > 0 } s
        ? s
        : Path.GetFullPath(Path.Combine(Root, "..", "shared"));

    public static string Fixture(string name) => Path.Combine(Shared, "fixtures", name);

    public static string Golden => Path.Combine(Root, "golden");

    /// <summary>
    /// The nearest folder holding SigLip.Reference.sln at or above the first of <paramref name="starts"/>
    /// that has one (null or missing folders are skipped).
    /// </summary>
    public static string FindRoot(params string?[] starts)
    {
        foreach (var start in starts)
        {
            if (string.IsNullOrEmpty(start)) continue;
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, SolutionFile))) return dir.FullName;
        }
        throw new InvalidOperationException(
            $"Cannot find {SolutionFile} in or above any of: {string.Join(", ", starts.Select(s => s ?? "(none)"))}. " +
            "Run the tests from a build of a checkout of the repository.");
    }

    private static string SourceFile([CallerFilePath] string path = "") => path;
}
