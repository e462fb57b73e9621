using System.Reflection.Metadata;
using System.Text.Json;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;
using static SigLip.SpecTests.Packaging.PackagingFixture;

namespace SigLip.SpecTests.Packaging;

/// <summary>
/// Source Link for a published clone. The repository's own clone (CI: origin is a local path) gets no
/// URL map, so this packs SigLip.Reference alone from a temporary clone of HEAD whose origin is a
/// GitHub URL, and reads what a debugger would: the PDB's Source Link JSON and the nuspec's repository.
/// The clone borrows the repository's objects (--shared) and checks out only what the library builds
/// from (sparse), so it costs one small `dotnet pack` (about 10 s). Committed sources only: uncommitted
/// edits do not matter here, the map does.
/// </summary>
[Collection(PackagingCollection.Name)]
public sealed class SourceLinkTests(PackagingFixture packages, ITestOutputHelper output)
{
    private const string HostedOrigin = "https://github.com/siglip-reference/SigLip.Reference";
    private const string RawContent = "https://raw.githubusercontent.com/siglip-reference/SigLip.Reference";
    private const string SourceFile = "src/SigLip.Reference/Loss/PairwiseLoss.cs";

    [SkippableFact]
    public void Packing_from_a_clone_with_a_GitHub_origin_maps_the_sources_to_raw_githubusercontent_at_the_commit()
    {
        var head = PackageContentTests.GitHead();
        Skip.If(head is null, $"{RepoPaths.Root} is not a git checkout: there is no commit to clone");

        var clone = Path.Combine(packages.Root, "hosted-origin-clone");
        Git(packages.Root, "clone", "--quiet", "--shared", "--no-checkout", RepoPaths.Root, clone);
        Git(clone, "sparse-checkout", "set", "--cone", "src/SigLip.Reference", "build");
        Git(clone, "checkout", "--quiet", "--detach", head!);
        Git(clone, "remote", "set-url", "origin", HostedOrigin);

        var feed = Path.Combine(packages.Root, "hosted-origin-feed");
        var pack = Run("dotnet", ["pack", "src/SigLip.Reference/SigLip.Reference.csproj", "-c", "Release", "-o", feed, "--disable-build-servers", "-nodeReuse:false"],
            clone, TimeSpan.FromMinutes(10));
        packages.Timings.Add(("dotnet pack SigLip.Reference from a clone with a GitHub origin", pack.Elapsed));
        output.WriteLine(pack.Describe(2000));
        Assert.True(pack.ExitCode == 0, $"dotnet pack of SigLip.Reference in the clone failed.\n{pack.Describe()}");
        var nupkg = Directory.EnumerateFiles(feed, LibraryId + ".*.nupkg").Single();
        var snupkg = Path.ChangeExtension(nupkg, ".snupkg");

        var repository = Metadata(nupkg).Child("repository");
        Assert.True(repository is not null, $"the nuspec has no <repository>:\n{Metadata(nupkg)}");
        Assert.Equal(HostedOrigin, (string?)repository!.Attribute("url"));
        Assert.Equal(head, (string?)repository.Attribute("commit"));

        var pdbBytes = ReadEntry(snupkg, $"lib/net10.0/{LibraryId}.pdb");
        using var pdbProvider = MetadataReaderProvider.FromPortablePdbStream(new MemoryStream(pdbBytes));
        var pdb = pdbProvider.GetMetadataReader();
        var sourceLink = pdb.GetCustomDebugInformation(EntityHandle.ModuleDefinition)
            .Select(h => pdb.GetCustomDebugInformation(h))
            .Where(c => pdb.GetGuid(c.Kind) == PackageContentTests.SourceLinkKind)
            .Select(c => System.Text.Encoding.UTF8.GetString(pdb.GetBlobBytes(c.Value)))
            .SingleOrDefault();
        Assert.True(sourceLink is not null, $"{LibraryId}.pdb has no Source Link map although origin is {HostedOrigin}");
        output.WriteLine($"Source Link: {sourceLink}");
        var map = JsonDocument.Parse(sourceLink!).RootElement.GetProperty("documents").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.GetString()!);

        // The PDB's path of the file (the clone's path, or /_/... in a CI build), resolved through the
        // map as a debugger does: the longest "prefix*" key that matches, its "*" replaced by the rest.
        var document = pdb.Documents.Select(h => pdb.GetString(pdb.GetDocument(h).Name))
            .Single(n => n.Replace('\\', '/').EndsWith("/" + SourceFile, StringComparison.Ordinal));
        var url = Resolve(map, document);
        Assert.True(url is not null, $"the Source Link map covers no prefix of {document}: {sourceLink}");
        Assert.Equal($"{RawContent}/{head}/{SourceFile}", url);

        // The text at that URL (the file at that commit, freshly checked out in the clone) is the text the PDB embeds.
        var embedded = pdb.Documents.Where(h => pdb.GetString(pdb.GetDocument(h).Name) == document)
            .SelectMany(h => pdb.GetCustomDebugInformation(h)).Select(h => pdb.GetCustomDebugInformation(h))
            .Single(c => pdb.GetGuid(c.Kind) == PackageContentTests.EmbeddedSourceKind);
        Assert.Equal(File.ReadAllBytes(Path.Combine(clone, SourceFile)), PackageContentTests.EmbeddedSourceText(pdb.GetBlobBytes(embedded.Value)));
    }

    private static string? Resolve(IReadOnlyDictionary<string, string> map, string document)
    {
        var path = document.Replace('\\', '/');
        var best = map.Where(e => e.Key.EndsWith('*') && path.StartsWith(e.Key[..^1].Replace('\\', '/'), StringComparison.Ordinal))
            .OrderByDescending(e => e.Key.Length).Select(e => (KeyValuePair<string, string>?)e).FirstOrDefault();
        if (best is not { } hit) return null;
        return hit.Value.Replace("*", path[(hit.Key.Length - 1)..]);
    }

    private static void Git(string directory, params string[] args)
    {
        var git = Run("git", args, directory, TimeSpan.FromMinutes(2));
        Assert.True(git.ExitCode == 0, $"git failed.\n{git.Describe()}");
    }
}
