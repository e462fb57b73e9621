using SigLip.Reference.IO.Golden;
using SigLip.SpecTests.IO;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Golden;

/// <summary>
/// The one golden-folder locator (`siglip train`'s gate and `siglip golden verify` both use it):
/// the option, then SIGLIP_GOLDEN, then golden/ beside the executable, then the repository's
/// golden/ above the working folder, then above the executable.
/// </summary>
public sealed class GoldenLocatorTests
{
    private sealed class Layout : IDisposable
    {
        private readonly TempFolder _root = new();
        public Layout()
        {
            // A repository (marked by its .sln) with golden cases and a working folder inside it;
            // an executable folder elsewhere with its own copy; an explicit folder; an environment folder.
            Repository = Make("repo");
            File.WriteAllText(Path.Combine(Repository, GoldenLocator.RepositoryMarker), "");
            RepositoryGolden = MakeCases(Path.Combine(Repository, "golden"));
            Working = Make(Path.Combine("repo", "src", "work"));
            Executable = Make("tool");
            BesideExecutable = MakeCases(Path.Combine(Executable, "golden"));
            Explicit = MakeCases(Path.Combine(_root.Path, "explicit"));
            FromEnvironment = MakeCases(Path.Combine(_root.Path, "environment"));
            Outside = Make("outside");
        }

        public string Repository { get; }
        public string RepositoryGolden { get; }
        public string Working { get; }
        public string Executable { get; }
        public string BesideExecutable { get; }
        public string Explicit { get; }
        public string FromEnvironment { get; }
        public string Outside { get; }

        private string Make(string relative) => Directory.CreateDirectory(Path.Combine(_root.Path, relative)).FullName;

        private static string MakeCases(string dir)
        {
            Directory.CreateDirectory(Path.Combine(dir, "loss-n1"));
            return dir;
        }

        public void Dispose() => _root.Dispose();
    }

    [Fact]
    public void TheResolutionOrderIsOptionEnvironmentBesideTheExecutableThenTheRepository()
    {
        using var l = new Layout();
        Assert.Equal(l.Explicit, GoldenLocator.Find(l.Explicit, "--golden", l.FromEnvironment, l.Working, l.Executable));
        Assert.Equal(l.FromEnvironment, GoldenLocator.Find(null, "--golden", l.FromEnvironment, l.Working, l.Executable));
        Assert.Equal(l.BesideExecutable, GoldenLocator.Find(null, "--golden", null, l.Working, l.Executable));

        // No copy beside the executable (an empty golden/ does not count): the repository above the working folder.
        Directory.Delete(Path.Combine(l.BesideExecutable, "loss-n1"));
        Assert.Equal(l.RepositoryGolden, GoldenLocator.Find(null, "--golden", null, l.Working, l.Executable));

        // Working outside any repository, the executable inside one: that repository's golden/.
        Assert.Equal(l.RepositoryGolden, GoldenLocator.Find(null, "--golden", null, l.Outside, Path.Combine(l.Repository, "src")));

        // An empty string is no choice, like null.
        Assert.Equal(l.RepositoryGolden, GoldenLocator.Find("", "--cases", "", l.Working, l.Executable));
    }

    [Fact]
    public void ANamedFolderThatDoesNotExistIsAnErrorNotAFallback()
    {
        using var l = new Layout();
        string missing = Path.Combine(l.Outside, "nope");
        var e = Assert.Throws<DirectoryNotFoundException>(() => GoldenLocator.Find(missing, "--cases", l.FromEnvironment, l.Working, l.Executable));
        Assert.StartsWith($"--cases '{missing}': no such folder", e.Message);
        e = Assert.Throws<DirectoryNotFoundException>(() => GoldenLocator.Find(null, "--golden", missing, l.Working, l.Executable));
        Assert.StartsWith($"{GoldenLocator.EnvironmentVariable} '{missing}': no such folder", e.Message);
    }

    [Fact]
    public void NothingFoundListsEveryPlaceTriedAndWhatToPass()
    {
        using var l = new Layout();
        var e = Assert.Throws<DirectoryNotFoundException>(() => GoldenLocator.Find(null, "--golden", null, l.Outside, l.Outside));
        Assert.Contains(Path.Combine(l.Outside, "golden"), e.Message);
        Assert.Contains($"above {l.Outside}", e.Message);
        Assert.Contains("Pass --golden DIR", e.Message);
        Assert.Contains(GoldenLocator.EnvironmentVariable, e.Message);
    }

    [Fact]
    public void TheRepositorysGoldenFolderIsFoundUpwards()
    {
        using var l = new Layout();
        Assert.Equal(Path.Combine(l.Repository, "golden"), GoldenLocator.RepositoryGolden(l.Working));
        Assert.Null(GoldenLocator.RepositoryGolden(l.Outside));
    }
}
