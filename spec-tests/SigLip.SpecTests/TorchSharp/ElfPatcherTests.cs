using SigLip.Build;
using Xunit.Abstractions;

namespace SigLip.SpecTests.TorchSharp;

/// <summary>
/// The build's ELF patch (build/ElfWeakVersionPatcher.cs, compiled into this project too) on a copy of
/// the real libLibTorchSharp.so from the NuGet cache, checked by parsing the result again.
/// </summary>
public sealed class ElfPatcherTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("siglip-elf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The package's unpatched library; skips the test (with the path) when the cache is elsewhere.</summary>
    private static string PackagedLibrary()
    {
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p
            ? p : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var path = Path.Combine(cache, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Skip.IfNot(File.Exists(path), $"no TorchSharp 0.107.0 package at {path}");
        return path;
    }

    [SkippableFact]
    public void Patch_makes_the_GLIBCXX_3_4_32_need_and_its_one_symbol_weak_and_changes_nothing_else()
    {
        var original = PackagedLibrary();
        var before = ElfWeakVersionPatcher.ReadVersionNeeds(original).Single(n => n.Name == ElfWeakVersionPatcher.GlibcxxVersion);
        Assert.Equal(0, before.Flags & ElfWeakVersionPatcher.VerFlagWeak);
        var symbolBefore = ElfWeakVersionPatcher.ReadDynamicSymbols(original).Single(s => s.Name == ElfWeakVersionPatcher.IosBaseLibraryInit);
        Assert.Equal(before.Index, symbolBefore.VersionIndex);

        var copy = Path.Combine(_dir, "libLibTorchSharp.so");
        File.Copy(original, copy);
        var result = ElfWeakVersionPatcher.PatchFile(copy);
        foreach (var edit in result.Edits) output.WriteLine(edit);
        Assert.True(result.Changed);
        Assert.Equal(3, result.Edits.Count);

        var need = ElfWeakVersionPatcher.ReadVersionNeeds(copy).Single(n => n.Name == ElfWeakVersionPatcher.GlibcxxVersion);
        Assert.Equal("libstdc++.so.6", need.File);
        Assert.Equal(ElfWeakVersionPatcher.VerFlagWeak, need.Flags & ElfWeakVersionPatcher.VerFlagWeak);
        var symbol = ElfWeakVersionPatcher.ReadDynamicSymbols(copy).Single(s => s.Name == ElfWeakVersionPatcher.IosBaseLibraryInit);
        Assert.True(symbol.Undefined);
        Assert.Equal(2, symbol.Binding);        // STB_WEAK
        Assert.Equal(1, symbol.VersionIndex);   // global: needs no version

        // Exactly three bytes differ: the flags, the symbol's binding, its version index.
        var a = File.ReadAllBytes(original);
        var b = File.ReadAllBytes(copy);
        Assert.Equal(a.Length, b.Length);
        Assert.Equal(3, a.Zip(b).Count(p => p.First != p.Second));
        // Every other need and symbol reads back as before.
        Assert.Equal(ElfWeakVersionPatcher.ReadVersionNeeds(original).Where(n => n.Name != need.Name).Select(n => (n.File, n.Name, n.Flags)),
                     ElfWeakVersionPatcher.ReadVersionNeeds(copy).Where(n => n.Name != need.Name).Select(n => (n.File, n.Name, n.Flags)));
    }

    [SkippableFact]
    public void Patching_a_patched_file_changes_nothing()
    {
        var original = PackagedLibrary();
        var copy = Path.Combine(_dir, "libLibTorchSharp.so");
        File.Copy(original, copy);
        ElfWeakVersionPatcher.PatchFile(copy);
        var bytes = File.ReadAllBytes(copy);
        var stamp = File.GetLastWriteTimeUtc(copy);
        var again = ElfWeakVersionPatcher.PatchFile(copy);
        Assert.False(again.Changed);
        Assert.Empty(again.Edits);
        Assert.Equal(bytes, File.ReadAllBytes(copy));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(copy));
    }

    [SkippableFact]
    public void The_library_in_this_build_output_is_patched_exactly_when_the_host_needs_it()
    {
        var host = ElfWeakVersionPatcher.CheckHost();
        output.WriteLine($"host: {host.Reason}");
        var built = Directory.GetFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).SingleOrDefault();
        Skip.If(built is null || host.NeedsPatch is null, $"no libLibTorchSharp.so under {AppContext.BaseDirectory} or no host libstdc++");
        var need = ElfWeakVersionPatcher.ReadVersionNeeds(built).Single(n => n.Name == ElfWeakVersionPatcher.GlibcxxVersion);
        Assert.Equal(host.NeedsPatch.Value, (need.Flags & ElfWeakVersionPatcher.VerFlagWeak) != 0);
    }

    [Fact]
    public void A_file_that_is_not_ELF_gets_a_clear_error()
    {
        var path = Path.Combine(_dir, "libLibTorchSharp.so");
        File.WriteAllText(path, "<html>not a library, perhaps a proxy's error page</html>");
        var e = Assert.Throws<InvalidDataException>(() => ElfWeakVersionPatcher.PatchFile(path));
        Assert.Contains("not an ELF file", e.Message);
        Assert.Contains(path, e.Message);
    }

    [SkippableFact]
    public void A_truncated_library_gets_a_clear_error_and_is_left_alone()
    {
        var original = PackagedLibrary();
        var path = Path.Combine(_dir, "libLibTorchSharp.so");
        var head = File.ReadAllBytes(original).AsSpan(0, 100_000).ToArray();
        File.WriteAllBytes(path, head);
        var e = Assert.Throws<InvalidDataException>(() => ElfWeakVersionPatcher.PatchFile(path));
        Assert.Contains("truncated", e.Message);
        Assert.Equal(head, File.ReadAllBytes(path));
    }
}
