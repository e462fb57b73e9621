namespace SigLip.Reference.IO;

/// <summary>
/// The check for every file a user names (or a folder of theirs names) before the project opens it to read:
/// after symbolic links it must be a regular file. Opening a FIFO blocks for ever, a socket cannot be opened,
/// and reading a device such as /dev/zero or /dev/urandom never ends (or ends with a 2 GiB array error), so
/// those are refused with one line naming the path and what it is. A missing file is left to the caller,
/// which knows what file it wanted and says so.
/// </summary>
public static class InputFile
{
    /// <summary>Throws <see cref="PathRefusedException"/> when <paramref name="path"/> exists and is not (a link to) a regular file.</summary>
    /// <param name="path">The file about to be read.</param>
    /// <param name="what">What the file is for, for the message ("config.json", "an image", "a SentencePiece model").</param>
    public static void CheckReadable(string path, string what)
    {
        if (Problem(path) is { } problem)
            throw new PathRefusedException($"Refusing to read {path} ({what}): {problem}; expected a regular file.", path);
    }

    /// <summary>Why <paramref name="path"/> cannot be read as a regular file, or null when it can (or is missing).</summary>
    public static string? Problem(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var kind = FileKinds.OfTarget(path, out var target);
        return kind == FileKind.RegularFile || kind == FileKind.Missing && target is null ? null : FileKinds.DescribeTarget(kind, target);
    }

    /// <summary><see cref="File.ReadAllBytes"/> after <see cref="CheckReadable"/>.</summary>
    public static byte[] ReadAllBytes(string path, string what)
    {
        CheckReadable(path, what);
        return File.ReadAllBytes(path);
    }
}
