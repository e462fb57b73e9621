using System.Runtime.InteropServices;

namespace SigLip.Reference.IO;

/// <summary>What is at a path, without following a final symbolic link and without opening it (opening a FIFO would block).</summary>
public enum FileKind
{
    /// <summary>Nothing is there.</summary>
    Missing,
    /// <summary>A regular file.</summary>
    RegularFile,
    /// <summary>A directory.</summary>
    Directory,
    /// <summary>A symbolic link (not followed).</summary>
    SymbolicLink,
    /// <summary>A character device such as /dev/null.</summary>
    CharacterDevice,
    /// <summary>A block device.</summary>
    BlockDevice,
    /// <summary>A FIFO (named pipe).</summary>
    Fifo,
    /// <summary>A Unix domain socket.</summary>
    Socket,
    /// <summary>Some other kind.</summary>
    Unknown,
}

/// <summary>Reads the <see cref="FileKind"/> of a path (lstat semantics: a symbolic link is reported as a link).</summary>
public static class FileKinds
{
    /// <summary>The kind of what is at <paramref name="path"/>; a symbolic link is <see cref="FileKind.SymbolicLink"/>, not its target.</summary>
    public static FileKind Of(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = new FileInfo(path);
        if (info.LinkTarget is not null) return FileKind.SymbolicLink;
        if (Directory.Exists(path)) return FileKind.Directory;
        if (!info.Exists) return FileKind.Missing;
        if (OperatingSystem.IsLinux() && LinuxStatxType(path) is { } kind) return kind;
        // Elsewhere .NET reports devices and FIFOs as files; Windows has none to worry about here.
        return FileKind.RegularFile;
    }

    /// <summary>
    /// What <paramref name="path"/> finally names, following symbolic links (stat semantics): the kind of the final
    /// target, with that target in <paramref name="linkTarget"/> (null when the path is not a link). A dangling link
    /// is <see cref="FileKind.Missing"/> with its target; a cycle of links is <see cref="FileKind.SymbolicLink"/> with
    /// no target. <see cref="DescribeTarget"/> says it in words.
    /// </summary>
    public static FileKind OfTarget(string path, out string? linkTarget)
    {
        linkTarget = null;
        var kind = Of(path);
        if (kind != FileKind.SymbolicLink) return kind;
        FileSystemInfo? target;
        try { target = new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true); }
        catch (IOException) { return FileKind.SymbolicLink; } // a cycle: the links never reach anything else
        if (target is null) return FileKind.Missing;
        linkTarget = target.FullName;
        return Of(linkTarget);
    }

    /// <summary>"it is a FIFO (named pipe)", "it is a symbolic link to /dev/zero, which is a character device", ... for <see cref="OfTarget"/>'s result.</summary>
    public static string DescribeTarget(FileKind kind, string? linkTarget) =>
        linkTarget is null
            ? kind == FileKind.SymbolicLink ? "it is a cycle of symbolic links" : $"it is {Describe(kind)}"
            : kind == FileKind.Missing ? $"it is a symbolic link to {linkTarget}, which does not exist" : $"it is a symbolic link to {linkTarget}, which is {Describe(kind)}";

    /// <summary>"a character device" etc., for messages.</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Missing => "nothing (missing)",
        FileKind.RegularFile => "a regular file",
        FileKind.Directory => "a directory",
        FileKind.SymbolicLink => "a symbolic link",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.Socket => "a socket",
        _ => "not a regular file",
    };

    // statx(2) has the same struct layout on every Linux architecture (unlike struct stat): stx_mode is a
    // u16 at byte 28 of a 256-byte buffer.
    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

    private static FileKind? LinuxStatxType(string path)
    {
        const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100;
        const uint StatxType = 0x1;
        var buffer = new byte[256];
        try
        {
            if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, buffer) != 0) return null;
        }
        catch (EntryPointNotFoundException) { return null; }
        catch (DllNotFoundException) { return null; }
        int mode = BitConverter.ToUInt16(buffer, 28) & 0xF000;
        return mode switch
        {
            0x8000 => FileKind.RegularFile,
            0x4000 => FileKind.Directory,
            0xA000 => FileKind.SymbolicLink,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            0x1000 => FileKind.Fifo,
            0xC000 => FileKind.Socket,
            _ => FileKind.Unknown,
        };
    }
}
