namespace SigLip.Fuzzing;

/// <summary>One file of a case: its name in the case's folder and its bytes.</summary>
public sealed record FuzzFile(string Name, byte[] Bytes);

/// <summary>
/// One input of a target: the files it writes before calling the parser (most formats have one file;
/// the caption folder has captions and classes.txt). The first file is the one mutated most often.
/// </summary>
public sealed record FuzzCase(IReadOnlyList<FuzzFile> Files)
{
    public FuzzCase(string name, byte[] bytes) : this([new FuzzFile(name, bytes)]) { }

    /// <summary>A copy with file <paramref name="index"/> replaced by <paramref name="bytes"/>.</summary>
    public FuzzCase With(int index, byte[] bytes) =>
        new(Files.Select((f, i) => i == index ? f with { Bytes = bytes } : f).ToList());

    public long TotalBytes => Files.Sum(f => (long)f.Bytes.Length);
}
