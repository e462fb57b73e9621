using System.Text;

namespace SigLip.Reference.IO;

/// <summary>
/// Writes user files atomically: into a temporary file in the same folder, flushed to disk, then
/// renamed over the target. A crash or an exception leaves either the old file or the new one,
/// never a half-written file.
/// <para>
/// Only a regular file, or nothing, is replaced. A target that is a directory, a device, a FIFO or a
/// socket is refused with a <see cref="PathRefusedException"/> (as root, `--report /dev/full` would
/// otherwise replace the device node with a JSON file).
/// </para>
/// <para>
/// Symbolic links: a target that is a symbolic link is followed, and the file it finally points to is
/// written atomically (the temporary file goes beside that file); the link itself stays as it was.
/// The final target must be a regular file that exists: a dangling link, or a link to a directory,
/// device, FIFO or socket, is refused.
/// </para>
/// </summary>
public static class AtomicFile
{
    /// <summary>Calls <paramref name="write"/> with a stream on a temporary file beside <paramref name="path"/>, then moves it over <paramref name="path"/> (creating the folder if needed). If <paramref name="write"/> throws, the temporary file is deleted and the target is left as it was.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        var full = WritableTarget(Path.GetFullPath(path));
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        // Same folder, so the final rename stays on one file system (and is atomic there).
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>
    /// Throws the <see cref="PathRefusedException"/> that <see cref="Write"/> would throw for <paramref name="path"/>
    /// (a directory, device, FIFO, socket, or a dangling link or link to one), without writing anything: lets a
    /// command refuse an output path before it does its work.
    /// </summary>
    public static void CheckWritable(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        WritableTarget(Path.GetFullPath(path));
    }

    /// <summary>
    /// Refuses an output folder that cannot be one: something that exists and is not a directory (or a link to
    /// one), such as a regular file, /dev/null or a FIFO. Checked before the work, so a run is not wasted and
    /// nothing is written; the message names <paramref name="option"/>. A missing folder is fine (it is created).
    /// </summary>
    public static void CheckFolderWritable(string path, string option)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        var kind = FileKinds.OfTarget(full, out var target);
        if (kind == FileKind.Directory || kind == FileKind.Missing && target is null) return;
        throw new PathRefusedException($"Refusing {option} {full}: {FileKinds.DescribeTarget(kind, target)}; " +
                                       $"{option} names a folder (an existing one, or a new path that is created).", full);
    }

    /// <summary>
    /// The path to rename onto: <paramref name="full"/> itself when it is missing or a regular file, the
    /// final target of a symbolic link when that is a regular file; anything else is refused.
    /// </summary>
    private static string WritableTarget(string full)
    {
        var kind = FileKinds.OfTarget(full, out var target);
        if (kind == FileKind.RegularFile) return target ?? full;
        if (kind == FileKind.Missing && target is null) return full;
        throw new PathRefusedException($"Refusing to write {full}: {FileKinds.DescribeTarget(kind, target)}, and only a regular file (or a new path) is replaced; " +
                                       "give a file path instead (a link must point at an existing regular file).", full);
    }

    /// <summary>Writes UTF-8 text (no byte-order mark) atomically.</summary>
    public static void WriteAllText(string path, string text)
    {
        var bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text);
        Write(path, s => s.Write(bytes));
    }

    /// <summary>Writes bytes atomically.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));
}
