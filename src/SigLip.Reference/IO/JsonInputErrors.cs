using System.Text.Json;

namespace SigLip.Reference.IO;

/// <summary>
/// System.Text.Json's failures on a file, translated into <see cref="InputFormatException"/>s that name the
/// file and the byte: a <see cref="JsonException"/> (the text is not JSON) and the
/// <see cref="InvalidOperationException"/> it throws when a string it is asked for cannot be converted
/// (an escaped lone surrogate such as "\ud800", or a value of another JSON type).
/// </summary>
public static class JsonInputErrors
{
    /// <summary>
    /// The byte offset in <paramref name="utf8"/> where <paramref name="ex"/> stopped (System.Text.Json gives a
    /// line and a byte within it), or null when it does not say.
    /// </summary>
    public static long? Offset(ReadOnlySpan<byte> utf8, JsonException ex)
    {
        ArgumentNullException.ThrowIfNull(ex);
        if (ex.LineNumber is not long line || ex.BytePositionInLine is not long inLine) return null;
        long offset = 0;
        for (long l = 0; l < line; l++)
        {
            int next = utf8[(int)offset..].IndexOf((byte)'\n');
            if (next < 0) return null;
            offset += next + 1;
        }
        return Math.Min(offset + inLine, utf8.Length);
    }

    /// <summary>"FILE: not valid JSON at byte N (...); expected WHAT."; <paramref name="utf8"/> starts at byte <paramref name="firstByte"/> of the file.</summary>
    public static InputFormatException NotJson(string file, ReadOnlySpan<byte> utf8, JsonException ex, string expected, long firstByte = 0)
    {
        long? offset = Offset(utf8, ex) + firstByte;
        string at = offset is long o ? $" at byte {o}" : "";
        return new InputFormatException($"{file}: not valid JSON{at} ({OneLine(ex.Message)}); expected {expected}.", file, offset, ex);
    }

    /// <summary>"FILE: a value could not be read (...); expected WHAT." for System.Text.Json's InvalidOperationException.</summary>
    public static InputFormatException BadValue(string file, InvalidOperationException ex, string expected) =>
        new($"{file}: a value could not be read ({OneLine(ex.Message)}); expected {expected} (strings must be text: no unpaired surrogate escapes such as \\ud800).", file, null, ex);

    /// <summary><paramref name="s"/> with line breaks made spaces: for a text from a file (or a library's message) quoted in a one-line error.</summary>
    public static string OneLine(string s) => s.Replace("\r", " ").Replace("\n", " ");
}
