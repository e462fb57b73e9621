using System.Security.Cryptography;
using SigLip.Reference.IO;

namespace SigLip.SpecTests.Support;

/// <summary>
/// Every entry under a folder at one moment: relative path, kind, size, last-write time, SHA-256 of a
/// regular file's bytes and a link's target. Symbolic links are recorded, not followed; a FIFO, socket
/// or device is recorded, never opened (opening a FIFO would block). Two snapshots compare to the list
/// of what was added, removed or changed, in words.
/// </summary>
public sealed class FolderSnapshot
{
    /// <summary>One entry under the root.</summary>
    public sealed record Entry(string Path, FileKind Kind, long Size, DateTime LastWriteUtc, string? Sha256, string? LinkTarget);

    private FolderSnapshot(string root, IReadOnlyDictionary<string, Entry> entries)
    {
        Root = root;
        Entries = entries;
    }

    public string Root { get; }

    /// <summary>Entries by path relative to <see cref="Root"/> ("." is the root itself).</summary>
    public IReadOnlyDictionary<string, Entry> Entries { get; }

    /// <summary>Walks <paramref name="root"/> (a missing root gives an empty snapshot).</summary>
    public static FolderSnapshot Take(string root)
    {
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        if (Directory.Exists(root)) Walk(root, root, entries);
        return new FolderSnapshot(root, entries);
    }

    private static void Walk(string root, string path, Dictionary<string, Entry> entries)
    {
        string rel = System.IO.Path.GetRelativePath(root, path);
        var kind = FileKinds.Of(path);
        switch (kind)
        {
            case FileKind.Directory:
                entries[rel] = new Entry(rel, kind, 0, Directory.GetLastWriteTimeUtc(path), null, null);
                foreach (var child in Directory.EnumerateFileSystemEntries(path)) Walk(root, child, entries);
                break;
            case FileKind.RegularFile:
                var file = new FileInfo(path);
                using (var stream = File.OpenRead(path))
                    entries[rel] = new Entry(rel, kind, file.Length, file.LastWriteTimeUtc, Convert.ToHexString(SHA256.HashData(stream)), null);
                break;
            case FileKind.SymbolicLink:
                entries[rel] = new Entry(rel, kind, 0, File.GetLastWriteTimeUtc(path), null, new FileInfo(path).LinkTarget);
                break;
            default:
                entries[rel] = new Entry(rel, kind, 0, File.GetLastWriteTimeUtc(path), null, null);
                break;
        }
    }

    /// <summary>What differs from <paramref name="before"/> to this snapshot, one line each ("added x", "removed y", "changed z: ..."); empty when nothing does.</summary>
    public IReadOnlyList<string> ChangesSince(FolderSnapshot before)
    {
        var changes = new List<string>();
        foreach (var (path, now) in Entries.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            if (!before.Entries.TryGetValue(path, out var was)) changes.Add($"added {path} ({Describe(now)})");
            else if (now != was) changes.Add($"changed {path}: {Describe(was)} -> {Describe(now)}");
        }
        foreach (var path in before.Entries.Keys.Where(p => !Entries.ContainsKey(p)).OrderBy(p => p, StringComparer.Ordinal))
            changes.Add($"removed {path}");
        return changes;
    }

    /// <summary>The changes outside <paramref name="inside"/> (a path relative to the root, its entries included).</summary>
    public IReadOnlyList<string> ChangesOutside(FolderSnapshot before, string inside)
    {
        string prefix = inside.TrimEnd('/') + "/";
        var after = Entries.Where(e => !e.Key.StartsWith(prefix, StringComparison.Ordinal) && e.Key != inside.TrimEnd('/')).ToDictionary();
        var was = before.Entries.Where(e => !e.Key.StartsWith(prefix, StringComparison.Ordinal) && e.Key != inside.TrimEnd('/')).ToDictionary();
        return new FolderSnapshot(Root, after).ChangesSince(new FolderSnapshot(before.Root, was));
    }

    private static string Describe(Entry e) =>
        $"{FileKinds.Describe(e.Kind)}, {e.Size} bytes, written {e.LastWriteUtc:O}{(e.Sha256 is null ? "" : $", sha256 {e.Sha256[..12]}")}{(e.LinkTarget is null ? "" : $", -> {e.LinkTarget}")}";
}
