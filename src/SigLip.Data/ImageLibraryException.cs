using System.Runtime.InteropServices;

namespace SigLip.Data;

/// <summary>
/// SkiaSharp's native library (libSkiaSharp) could not be loaded, so no image can be decoded or written.
/// Not a bad image: a folder does not skip and count it (every image would be skipped), it stops the run.
/// The message is one line: what failed, why .NET could not load the library, and where it must be.
/// </summary>
public sealed class ImageLibraryException : Exception
{
    private ImageLibraryException(string message, Exception inner) : base(message, inner) { }

    /// <summary>
    /// The translated error when <paramref name="ex"/> (or an exception it wraps, such as the
    /// TypeInitializationException of SkiaSharp.SKData) says the native library could not be loaded;
    /// null for any other exception. <paramref name="what"/> names what failed ("cannot decode images").
    /// </summary>
    public static ImageLibraryException? Translate(Exception ex, string what)
    {
        ArgumentNullException.ThrowIfNull(ex);
        if (ex is ImageLibraryException already) return already;
        for (var e = ex; e is not null; e = e.InnerException)
            if (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
                return new ImageLibraryException(
                    $"{what}: SkiaSharp's native library libSkiaSharp could not be loaded ({Reason(e)}); " +
                    $"it comes from the package SkiaSharp.NativeAssets.Linux.NoDependencies (referenced by SigLip.Data) " +
                    $"and must be in runtimes/{RuntimeInformation.RuntimeIdentifier}/native beside siglip.dll.", ex);
        return null;
    }

    // .NET's DllNotFoundException message spans many lines: a first sentence, advice about strace and LD_DEBUG,
    // then one line per path tried (12 on Linux). The first path tried is where deps.json puts the library, and
    // its line says what went wrong there (no such file, or a dependency such as libfontconfig missing): keep
    // the first sentence and that line, and count the others, so the message stays one readable line.
    private static string Reason(Exception e)
    {
        var lines = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (lines.Length == 0) return e.GetType().Name;
        string first = lines[0];
        int sentence = first.IndexOf(". ", StringComparison.Ordinal);
        if (sentence > 0) first = first[..(sentence + 1)];
        if (lines.Length == 1) return first;
        string tried = lines[1].TrimEnd(':', ' ');
        return lines.Length > 2 ? $"{first} {tried}; {lines.Length - 2} other path(s) tried" : $"{first} {tried}";
    }
}
