namespace SigLip.Reference.IO;

/// <summary>
/// A .safetensors file (or a checkpoint folder) is malformed. The message names the file, the
/// tensor or field when there is one, what was wrong and what would be right.
/// </summary>
public sealed class SafeTensorsFormatException : Exception
{
    /// <summary>A malformed file: <paramref name="tensor"/> may be null when the problem is not with one tensor.</summary>
    public SafeTensorsFormatException(string path, string? tensor, string problem, Exception? inner = null)
        : base(Compose(path, tensor, problem), inner)
    {
        FilePath = path;
        TensorName = tensor;
        Problem = problem;
    }

    /// <summary>The file that is wrong.</summary>
    public string FilePath { get; }
    /// <summary>The tensor (or header entry) that is wrong, when the problem is with one.</summary>
    public string? TensorName { get; }
    /// <summary>What is wrong and what would be right, without the file name.</summary>
    public string Problem { get; }

    private static string Compose(string path, string? tensor, string problem) =>
        tensor is null ? $"{path}: {problem}" : $"{path}: tensor '{tensor}': {problem}";
}
