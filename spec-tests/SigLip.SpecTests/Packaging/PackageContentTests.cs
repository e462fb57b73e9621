using System.IO.Compression;
using System.Reflection.Metadata;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;
using static SigLip.SpecTests.Packaging.PackagingFixture;

namespace SigLip.SpecTests.Packaging;

/// <summary>What `dotnet pack` puts in the library and backend packages: assembly, XML docs, README, metadata, symbols with sources.</summary>
[Collection(PackagingCollection.Name)]
public sealed class PackageContentTests(PackagingFixture packages, ITestOutputHelper output)
{
    // Portable PDB custom debug information kinds (System.Reflection.Metadata does not name them).
    internal static readonly Guid EmbeddedSourceKind = new("0E8A571B-6926-466E-B4AD-8AB04611F5FE");
    internal static readonly Guid SourceLinkKind = new("CC110556-A091-4D38-9FEC-25AB9A351A6A");

    [Theory]
    [InlineData(LibraryId, "Loss/PairwiseLoss.cs", "M:SigLip.Reference.Loss.PairwiseLoss.Compute(SigLip.Reference.Tensor,SigLip.Reference.Tensor,System.Double,System.Double,SigLip.Reference.Backends.LossOptions,System.Boolean)")]
    [InlineData(BackendId, "TorchBackends.cs", "T:SigLip.Backends.TorchSharp.TorchBackends")]
    [InlineData(ManagedId, "ManagedOps.cs", "T:SigLip.Backends.Managed.ManagedOps")]
    public void A_library_package_holds_the_assembly_its_XML_docs_a_README_and_its_metadata(string id, string sourceFile, string documentedMember)
    {
        foreach (var (step, elapsed) in packages.Timings) output.WriteLine($"{step}: {elapsed.TotalSeconds:0.0} s");
        var nupkg = packages.Package(id);
        var entries = Entries(nupkg);
        output.WriteLine($"{Path.GetFileName(nupkg)}: {new FileInfo(nupkg).Length:N0} bytes\n  " + string.Join("\n  ", entries));

        Assert.Contains($"lib/net10.0/{id}.dll", entries);
        Assert.Contains($"README.md", entries);
        var xmlDocs = $"lib/net10.0/{id}.xml";
        Assert.Contains(xmlDocs, entries);
        var docs = XDocument.Load(new MemoryStream(ReadEntry(nupkg, xmlDocs)));
        var member = docs.Descendants("member").FirstOrDefault(m => (string?)m.Attribute("name") == documentedMember);
        Assert.True(member is not null, $"{xmlDocs} documents no {documentedMember}");
        Assert.False(string.IsNullOrWhiteSpace(member!.Element("summary")?.Value), $"{documentedMember} has an empty summary");

        var readme = System.Text.Encoding.UTF8.GetString(ReadEntry(nupkg, "README.md"));
        Assert.StartsWith($"# {id}", readme);

        var metadata = Metadata(nupkg);
        string Field(string name) => (string?)metadata.Child(name) ?? throw new Xunit.Sdk.XunitException($"{id}'s nuspec has no <{name}>:\n{metadata}");
        Assert.Equal(id, Field("id"));
        Assert.Matches(@"^\d+\.\d+\.\d+", Field("version"));
        Assert.Equal("README.md", Field("readme"));
        Assert.Equal("MIT", Field("license"));
        Assert.Equal("expression", (string?)metadata.Child("license")!.Attribute("type"));
        Assert.False(string.IsNullOrWhiteSpace(Field("authors")));
        Assert.True(Field("description").Length > 40, "the description says what the package is");
        Assert.Contains("siglip", Field("tags").Split(' '));

        var repository = metadata.Child("repository");
        Assert.True(repository is not null, $"{id}'s nuspec has no <repository> element:\n{metadata}");
        Assert.Equal("git", (string?)repository!.Attribute("type"));

        // Symbols: a .snupkg whose portable PDB lets a debugger reach the sources without the repository
        // (embedded sources; a Source Link map as well when the clone has a hosted origin: SourceLinkTests).
        var snupkg = packages.SymbolPackage(id);
        var pdbBytes = ReadEntry(snupkg, $"lib/net10.0/{id}.pdb");
        using var pdbProvider = MetadataReaderProvider.FromPortablePdbStream(new MemoryStream(pdbBytes));
        var pdb = pdbProvider.GetMetadataReader();
        bool hasSourceLink = pdb.GetCustomDebugInformation(EntityHandle.ModuleDefinition)
            .Any(h => pdb.GetGuid(pdb.GetCustomDebugInformation(h).Kind) == SourceLinkKind);
        var document = pdb.Documents.Select(h => (Handle: h, Name: pdb.GetString(pdb.GetDocument(h).Name)))
            .FirstOrDefault(d => d.Name.Replace('\\', '/').EndsWith("/" + sourceFile, StringComparison.Ordinal));
        Assert.True(document.Name is not null, $"{id}.pdb lists no document ending in {sourceFile}; it lists {pdb.Documents.Count} documents");
        var embedded = pdb.GetCustomDebugInformation(document.Handle)
            .Select(h => pdb.GetCustomDebugInformation(h))
            .Where(c => pdb.GetGuid(c.Kind) == EmbeddedSourceKind)
            .Select(c => pdb.GetBlobBytes(c.Value))
            .SingleOrDefault();
        output.WriteLine($"{id}.pdb: {pdb.Documents.Count} documents, source link map: {hasSourceLink}, {sourceFile} embedded: {embedded is not null}");
        Assert.True(embedded is not null, $"{id}.pdb does not embed {document.Name}");
        var projectDir = Path.GetDirectoryName(Path.Combine(RepoPaths.Root, PackedProjects.Single(p => p.EndsWith($"/{id}.csproj", StringComparison.Ordinal))))!;
        Assert.Equal(File.ReadAllBytes(Path.Combine(projectDir, sourceFile)), EmbeddedSourceText(embedded!));
    }

    [SkippableTheory]
    [InlineData(LibraryId)]
    [InlineData(BackendId)]
    [InlineData(ManagedId)]
    [InlineData(ToolId)]
    public void The_nuspec_names_the_commit_it_was_packed_from(string id)
    {
        var head = GitHead();
        Skip.If(head is null, $"{RepoPaths.Root} is not a git checkout: there is no commit to compare the nuspec's <repository commit> with");
        var repository = Metadata(packages.Package(id)).Child("repository");
        Assert.True(repository is not null, $"{id}'s nuspec has no <repository> element");
        Assert.Equal(head, (string?)repository!.Attribute("commit"));
    }

    [Theory]
    [InlineData(LibraryId)]
    [InlineData(BackendId)]
    [InlineData(ManagedId)]
    [InlineData(ToolId)]
    public void Every_package_declares_MIT_and_carries_the_LICENSE_text(string id)
    {
        var license = Path.Combine(RepoPaths.Root, "LICENSE");
        Assert.True(File.Exists(license), $"the repository has no LICENSE file at {license}");
        var text = File.ReadAllText(license);
        Assert.StartsWith("MIT License", text);
        Assert.Contains("Copyright (c) 2026 SigLip.Reference contributors", text);

        var nupkg = packages.Package(id);
        Assert.True(Entries(nupkg).Contains("LICENSE"), $"{Path.GetFileName(nupkg)} has no LICENSE at its root: {string.Join(", ", Entries(nupkg).Where(e => !e.Contains('/')))}");
        Assert.Equal(File.ReadAllBytes(license), ReadEntry(nupkg, "LICENSE"));
        var metadata = Metadata(nupkg);
        Assert.Equal("MIT", (string?)metadata.Child("license"));
        Assert.Equal("expression", (string?)metadata.Child("license")?.Attribute("type"));
        Assert.Contains("2026 SigLip.Reference contributors", (string?)metadata.Child("copyright") ?? "");
    }

    [Fact]
    public void The_backend_package_depends_on_the_same_library_version_TorchSharp_and_the_CPU_libtorch_and_carries_the_ELF_patch()
    {
        var entries = Entries(packages.Package(BackendId));
        Assert.Contains($"buildTransitive/{BackendId}.targets", entries);
        Assert.Equal(File.ReadAllBytes(Path.Combine(RepoPaths.Root, "build", "ElfWeakVersionPatcher.cs")),
                     ReadEntry(packages.Package(BackendId), "buildTransitive/ElfWeakVersionPatcher.cs"));

        var metadata = Metadata(packages.Package(BackendId));
        var dependencies = metadata.Descendants().Where(d => d.Name.LocalName == "dependency").ToDictionary(d => (string)d.Attribute("id")!, d => (string)d.Attribute("version")!);
        output.WriteLine(string.Join("\n", dependencies.Select(d => $"{d.Key} {d.Value}")));
        Assert.Equal(packages.Version(LibraryId), dependencies.GetValueOrDefault(LibraryId));
        Assert.Contains("TorchSharp", dependencies.Keys);
        Assert.Contains("libtorch-cpu-linux-x64", dependencies.Keys);
    }

    [Fact]
    public void The_tool_package_is_a_dotnet_tool_that_carries_the_golden_cases_and_a_patched_TorchSharp()
    {
        var nupkg = packages.Package(ToolId);
        output.WriteLine($"{Path.GetFileName(nupkg)}: {new FileInfo(nupkg).Length / 1e6:0.0} MB");
        var entries = Entries(nupkg);
        var metadata = Metadata(nupkg);
        Assert.Equal("DotnetTool", (string?)metadata.Child("packageTypes")?.Child("packageType")?.Attribute("name"));
        Assert.Equal("README.md", (string?)metadata.Child("readme"));
        Assert.Contains("README.md", entries);
        var toolDir = entries.Single(e => e.EndsWith("/DotnetToolSettings.xml", StringComparison.Ordinal))[..^"DotnetToolSettings.xml".Length];
        var settings = XDocument.Load(new MemoryStream(ReadEntry(nupkg, toolDir + "DotnetToolSettings.xml")));
        var command = settings.Descendants("Command").Single();
        Assert.Equal("siglip", (string?)command.Attribute("Name"));
        Assert.Equal("siglip.dll", (string?)command.Attribute("EntryPoint"));
        Assert.Contains(toolDir + "siglip.dll", entries);

        // Every committed golden case file travels with the tool, byte for byte.
        var golden = RepoPaths.Golden;
        foreach (var file in Directory.EnumerateFiles(golden, "*", SearchOption.AllDirectories).Where(f => !Path.GetFileName(f).StartsWith('.')))
        {
            var name = toolDir + "golden/" + Path.GetRelativePath(golden, file).Replace('\\', '/');
            Assert.True(entries.Contains(name), $"the tool package lacks {name}");
        }
        Assert.Equal(File.ReadAllBytes(Path.Combine(golden, "manifest.json")), ReadEntry(nupkg, toolDir + "golden/manifest.json"));

        // libtorch for the `torch` backend, and TorchSharp's native library with the Debian 12 patch applied.
        Assert.Contains(toolDir + "runtimes/linux-x64/native/libtorch_cpu.so", entries);
        var library = Path.Combine(packages.Root, "libLibTorchSharp-from-tool.so");
        File.WriteAllBytes(library, ReadEntry(nupkg, toolDir + "runtimes/linux-x64/native/libLibTorchSharp.so"));
        var need = SigLip.Build.ElfWeakVersionPatcher.ReadVersionNeeds(library).Single(n => n.Name == SigLip.Build.ElfWeakVersionPatcher.GlibcxxVersion);
        Assert.True((need.Flags & SigLip.Build.ElfWeakVersionPatcher.VerFlagWeak) != 0,
            $"libLibTorchSharp.so in the tool package still needs {need.Name} strictly (flags 0x{need.Flags:x}): the ELF patch did not run on the tool's publish output");
    }

    /// <summary>An embedded-source blob: int32 uncompressed size (0: stored as is), then the text, deflated.</summary>
    internal static byte[] EmbeddedSourceText(byte[] blob)
    {
        int size = BitConverter.ToInt32(blob, 0);
        if (size == 0) return blob[4..];
        using var inflate = new DeflateStream(new MemoryStream(blob, 4, blob.Length - 4), CompressionMode.Decompress);
        var text = new byte[size];
        inflate.ReadExactly(text);
        return text;
    }

    /// <summary>HEAD's commit, or null where the repository is not a git checkout (or git is missing).</summary>
    internal static string? GitHead()
    {
        if (!Path.Exists(Path.Combine(RepoPaths.Root, ".git"))) return null;
        var git = Run("git", ["rev-parse", "HEAD"], RepoPaths.Root, TimeSpan.FromMinutes(1));
        Assert.True(git.ExitCode == 0, $"the repository has .git but git rev-parse HEAD failed:\n{git.Describe()}");
        var head = git.Stdout.Trim();
        Assert.Matches(new Regex("^[0-9a-f]{40}$"), head);
        return head;
    }
}
