using System.Buffers.Binary;
using System.Text;
using SigLip.Data;
using SigLip.Fuzzing;
using SigLip.Fuzzing.Targets;
using SigLip.Reference.IO;
using SigLip.Reference.IO.Golden;
using SigLip.Reference.Training;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Robustness;

/// <summary>
/// The holes `siglip fuzz` found (docs/fuzzing.md), one class per format, each test with the smallest input
/// that showed one: every one used to end in an exception from the BCL or System.Text.Json
/// (InvalidDataException, InvalidOperationException, NotSupportedException) and now ends in the project's own
/// typed error, whose one-line message names the file (and the byte where known) and says what would be
/// right; a bad caption line is skipped and counted instead.
/// </summary>
public abstract class FuzzFoundTestBase : IDisposable
{
    protected readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    protected string Write(string name, string text) => Write(name, Encoding.UTF8.GetBytes(text));

    protected string Write(string name, byte[] bytes)
    {
        string path = _temp.File(name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    protected static void OneLine(Exception ex, string file)
    {
        Assert.Contains(file, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    /// <summary>A .safetensors file with this JSON header (padded) and no data.</summary>
    protected static byte[] SafeTensors(string header)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)h.Length);
        h.CopyTo(b, 8);
        return b;
    }
}
