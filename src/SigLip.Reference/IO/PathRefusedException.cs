namespace SigLip.Reference.IO;

/// <summary>
/// A path the project will not read or write: outside the folder it belongs to, a device, FIFO,
/// socket or directory where a regular file was expected, or a dangling symbolic link. The message
/// names the path, the folder where one applies, and why.
/// </summary>
public sealed class PathRefusedException(string message, string path) : IOException(message)
{
    /// <summary>The path as it was given (before resolution).</summary>
    public string PathGiven { get; } = path;
}
