namespace SigLip.Reference.IO;

/// <summary>
/// The one check for every path that is read from a file (a golden manifest entry, an image path in a
/// captions file, a checkpoint's <c>latest</c>, a fixed file name inside a checkpoint): it must be
/// relative, and after every symbolic link on the way is resolved (a link inside the folder pointing
/// outside counts as outside) it must stay inside the folder it belongs to. What it names must be a
/// regular file (or a directory, where a folder is asked for): never a device, FIFO or socket, which
/// would block or never end. A refusal is a <see cref="PathRefusedException"/> whose message names the
/// path, the file it came from, the folder, and why.
/// </summary>
public static class ContainedPath
{
    private const int MaxLinkHops = 40;

    /// <summary>
    /// The real (symbolic links resolved) full path of <paramref name="relative"/> inside <paramref name="folder"/>,
    /// which must be <paramref name="expected"/> (<see cref="FileKind.RegularFile"/> or <see cref="FileKind.Directory"/>).
    /// </summary>
    /// <param name="folder">The folder the path belongs to.</param>
    /// <param name="relative">The path as read.</param>
    /// <param name="readFrom">Where it was read (a file name, for the message).</param>
    /// <param name="expected">What it must name.</param>
    /// <param name="allowMissing">When true a path that names nothing (yet) is returned; otherwise it is refused.</param>
    public static string Resolve(string folder, string relative, string readFrom, FileKind expected = FileKind.RegularFile, bool allowMissing = false) =>
        TryResolve(folder, relative, expected, allowMissing, out var full, out var reason)
            ? full!
            : throw new PathRefusedException($"Refusing path '{relative}' read from {readFrom}: {reason}.", relative);

    /// <summary>
    /// Where to write <paramref name="name"/>, a file this program names itself (a run folder's <c>latest</c> or
    /// <c>loss.png</c>, a plot, a golden case's manifest), inside the output folder <paramref name="folder"/> the user
    /// named: the real path, symbolic links resolved. A link that leads out of the folder, or a path that is not a
    /// regular file (or missing), is refused, so that no write lands outside the named folder. (A file the user names
    /// directly, such as <c>--report</c>, is the user's choice: <see cref="AtomicFile"/> follows its link.)
    /// </summary>
    public static string ForWriting(string folder, string name)
    {
        string path = Path.Combine(folder, name);
        return TryResolve(folder, name, FileKind.RegularFile, allowMissing: true, out var full, out var reason)
            ? full!
            : throw new PathRefusedException($"Refusing to write {path}: {reason}; the files a command names itself stay inside the output folder (remove the link, or give another folder).", path);
    }

    /// <summary>Like <see cref="Resolve"/>, but returns false with the reason (e.g. to skip and count a bad line).</summary>
    public static bool TryResolve(string folder, string relative, FileKind expected, bool allowMissing, out string? full, out string? reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        full = null;
        string realFolder = RealPath(Path.GetFullPath(folder)) ?? Path.GetFullPath(folder);
        if (relative.Length == 0) { reason = "it is empty"; return false; }
        if (relative.Contains('\0')) { reason = "it holds a NUL character"; return false; }
        if (Path.IsPathRooted(relative)) { reason = $"it is absolute; paths must be relative to the folder {realFolder}"; return false; }
        string? real = RealPath(Path.Combine(realFolder, relative), realFolder.Length);
        if (real is null) { reason = "it has a cycle of symbolic links"; return false; }
        string root = Path.EndsInDirectorySeparator(realFolder) ? realFolder : realFolder + Path.DirectorySeparatorChar;
        if (!real.StartsWith(root, StringComparison.Ordinal) && real != realFolder)
        {
            reason = $"it leaves the folder {realFolder}: it resolves to {real} (after '..' and symbolic links)";
            return false;
        }
        var kind = FileKinds.Of(real);
        if (kind == FileKind.Missing && allowMissing) { full = real; reason = null; return true; }
        if (kind != expected)
        {
            reason = kind == FileKind.Missing
                ? $"{real} does not exist"
                : $"{real} is {FileKinds.Describe(kind)}; expected {FileKinds.Describe(expected)}";
            return false;
        }
        full = real;
        reason = null;
        return true;
    }

    /// <summary>
    /// <paramref name="path"/> (absolute) with every symbolic link resolved, component by component, so that
    /// '..' after a link climbs from the link's target, as the kernel does. Components past a missing one are
    /// appended as they are. Null on a link cycle. The first <paramref name="trustedPrefix"/> characters are
    /// taken as already resolved.
    /// </summary>
    private static string? RealPath(string path, int trustedPrefix = 0)
    {
        string root = Path.GetPathRoot(path)!;
        string current = trustedPrefix > 0 ? path[..trustedPrefix] : root;
        var pending = new List<string>(Split(path[(trustedPrefix > 0 ? trustedPrefix : root.Length)..]));
        int hops = 0;
        bool missing = false;
        while (pending.Count > 0)
        {
            string part = pending[0];
            pending.RemoveAt(0);
            if (part == ".") continue;
            if (part == "..") { current = Path.GetDirectoryName(current) ?? root; continue; }
            string next = Path.Combine(current, part);
            if (!missing && FileKinds.Of(next) is var kind && kind == FileKind.SymbolicLink)
            {
                if (++hops > MaxLinkHops) return null;
                string target = new FileInfo(next).LinkTarget!;
                if (Path.IsPathRooted(target)) current = Path.GetPathRoot(target)!;
                pending.InsertRange(0, Split(Path.IsPathRooted(target) ? target[Path.GetPathRoot(target)!.Length..] : target));
                continue;
            }
            if (!missing && FileKinds.Of(next) == FileKind.Missing) missing = true;
            current = next;
        }
        return current;
    }

    private static string[] Split(string s) => s.Split([Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar], StringSplitOptions.RemoveEmptyEntries);
}
