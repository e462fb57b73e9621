namespace SigLip.Reference.IO;

/// <summary>
/// A file the project reads is damaged or not what it should be, including failures raised inside a
/// library while it reads the file (Microsoft.ML.Tokenizers, System.Text.Json), translated. The message
/// names the file, the position where known, and what would be right. An <see cref="IOException"/>
/// (<see cref="InvalidDataException"/> is sealed), so code that catches I/O failures keeps catching it.
/// </summary>
public sealed class InputFormatException(string message, string file, long? position = null, Exception? inner = null)
    : IOException(message, inner)
{
    /// <summary>The file that was read.</summary>
    public string File { get; } = file;

    /// <summary>The byte offset of the problem in <see cref="File"/>, where known.</summary>
    public long? Position { get; } = position;
}
