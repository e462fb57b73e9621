using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Robustness;

/// <summary>
/// The tests find the repository (golden/, ../shared fixtures) also when the binaries live outside it
/// (SIGLIP_ARTIFACTS=/tmp/x), where searching up from the binary's folder finds nothing.
/// </summary>
public sealed class RepoPathsTests : IDisposable
{
    // temp/repo/SigLip.Reference.sln, temp/repo/spec-tests/Suite (the sources), temp/artifacts/bin/release (the binaries)
    private readonly string _temp = Path.Combine(Path.GetTempPath(), "siglip-repopaths-" + Guid.NewGuid().ToString("N"));
    private string Repo => Path.Combine(_temp, "repo");
    private string Sources => Path.Combine(Repo, "spec-tests", "Suite");
    private string Artifacts => Path.Combine(_temp, "artifacts", "bin", "release");

    public RepoPathsTests()
    {
        Directory.CreateDirectory(Sources);
        Directory.CreateDirectory(Artifacts);
        File.WriteAllText(Path.Combine(Repo, RepoPaths.SolutionFile), "");
    }

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [Fact]
    public void Binaries_outside_the_repository_find_it_from_the_source_files_folder() =>
        Assert.Equal(Path.GetFullPath(Repo), RepoPaths.FindRoot(Sources, Artifacts));

    [Fact]
    public void Mapped_source_paths_fall_back_to_the_binarys_folder()
    {
        // CI=true maps source paths to /_/..., which is not a folder on disk.
        var binaries = Path.Combine(Repo, "bin", "release");
        Directory.CreateDirectory(binaries);
        Assert.Equal(Path.GetFullPath(Repo), RepoPaths.FindRoot("/_/spec-tests/Suite", binaries));
    }

    [Fact]
    public void No_repository_anywhere_says_where_it_looked()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => RepoPaths.FindRoot(null, Artifacts));
        Assert.Contains(RepoPaths.SolutionFile, ex.Message);
        Assert.Contains(Artifacts, ex.Message);
    }

    [Fact]
    public void The_root_of_this_build_holds_the_solution_and_the_golden_cases()
    {
        Assert.True(File.Exists(Path.Combine(RepoPaths.Root, RepoPaths.SolutionFile)));
        Assert.True(Directory.Exists(RepoPaths.Golden), $"{RepoPaths.Golden} is missing");
    }
}
