namespace SigLip.SpecTests.Support;

/// <summary>Where the repository and ../shared are, found from the test binary's folder.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> RootLazy = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "SigLip.Reference.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException($"Cannot find SigLip.Reference.sln above {AppContext.BaseDirectory}.");
    });

    /// <summary>The repository root (the folder holding SigLip.Reference.sln).</summary>
    public static string Root => RootLazy.Value;

    /// <summary>../shared beside the repository, or SIGLIP_SHARED when set.</summary>
    public static string Shared => Environment.GetEnvironmentVariable("SIGLIP_SHARED") is { Length: > 0 } s
        ? s
        : Path.GetFullPath(Path.Combine(Root, "..", "shared"));

    public static string Fixture(string name) => Path.Combine(Shared, "fixtures", name);

    public static string Golden => Path.Combine(Root, "golden");
}
