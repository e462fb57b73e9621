using System.Text;

namespace SigLip.Reference.IO;

/// <summary>
/// Writes user files atomically: into a temporary file in the same folder, flushed to disk, then
/// renamed over the target. A crash or an exception leaves either the old file or the new one,
/// never a half-written file.
/// </summary>
public static class AtomicFile
{
    /// <summary>Calls <paramref name="write"/> with a stream on a temporary file beside <paramref name="path"/>, then moves it over <paramref name="path"/> (creating the folder if needed). If <paramref name="write"/> throws, the temporary file is deleted and the target is left as it was.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        var full = Path.GetFullPath(path);
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

    /// <summary>Writes UTF-8 text (no byte-order mark) atomically.</summary>
    public static void WriteAllText(string path, string text)
    {
        var bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text);
        Write(path, s => s.Write(bytes));
    }

    /// <summary>Writes bytes atomically.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));
}
