using System.Runtime.CompilerServices;

namespace SigLip.SpecTests.Docs;

/// <summary>
/// The repository root for the documentation tests. Found from this source file's compile-time path
/// (so it works when the build output lives outside the repository, SIGLIP_ARTIFACTS), else from the
/// test binary's folder.
/// </summary>
internal static class DocPaths
{
    private static readonly Lazy<string> RootLazy = new(() =>
        FindUp(Path.GetDirectoryName(SourceFile())) ?? FindUp(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException($"Cannot find SigLip.Reference.sln above {SourceFile()} or {AppContext.BaseDirectory}."));

    public static string Root => RootLazy.Value;

    public static string Docs => Path.Combine(Root, "docs");

    private static string SourceFile([CallerFilePath] string path = "") => path;

    private static string? FindUp(string? start)
    {
        for (var dir = start is null ? null : new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "SigLip.Reference.sln"))) return dir.FullName;
        return null;
    }
}
