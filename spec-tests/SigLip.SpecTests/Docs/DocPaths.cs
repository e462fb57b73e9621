using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Docs;

/// <summary>The repository root and docs/ for the documentation tests (see <see cref="RepoPaths"/>: works with SIGLIP_ARTIFACTS too).</summary>
internal static class DocPaths
{
    public static string Root => RepoPaths.Root;

    public static string Docs => Path.Combine(Root, "docs");
}
