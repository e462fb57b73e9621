using System.Text;
using FsCheck;
using FsCheck.Fluent;
using SigLip.Reference;
using SigLip.Reference.IO;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.IO;

/// <summary>Every malformed file gives a <see cref="SafeTensorsFormatException"/> naming the file and the problem.</summary>
public sealed class SafeTensorsBadFileTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    // A file with the given header text (padded to 8 bytes) and data area.
    private string Raw(string header, int dataBytes, long? declaredHeaderLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var padded = new byte[(json.Length + 7) / 8 * 8];
        json.CopyTo(padded, 0);
        padded.AsSpan(json.Length).Fill((byte)' ');
        var path = _temp.File($"bad-{Guid.NewGuid():N}.safetensors");
        using var s = File.Create(path);
        s.Write(BitConverter.GetBytes(declaredHeaderLength ?? padded.Length));
        s.Write(padded);
        s.Write(new byte[dataBytes]);
        return path;
    }

    private SafeTensorsFormatException Fails(string path, params string[] mentions)
    {
        var ex = Assert.Throws<SafeTensorsFormatException>(() =>
        {
            using var f = SafeTensorsFile.Open(path);
            foreach (var e in f.Entries) if (e.DType.IsFloat()) f.ReadTensor(e.Name); else f.ReadInt64(e.Name);
        });
        output.WriteLine(ex.Message);
        Assert.Contains(path, ex.Message);
        foreach (var m in mentions) Assert.Contains(m, ex.Message);
        return ex;
    }

    private const string Good = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F64\",\"shape\":[1,1],\"data_offsets\":[8,16]}}";

    [Fact]
    public void A_well_formed_hand_made_file_opens()
    {
        using var f = SafeTensorsFile.Open(Raw(Good, 16));
        Assert.Equal(["a", "b"], f.Entries.Select(e => e.Name));
        Assert.Equal([0.0, 0.0], f.ReadTensor("a").Data);
    }

    [Fact]
    public void Truncated_file_names_the_tensor_that_runs_past_the_end()
    {
        var src = Path.Combine(RepoPaths.Fixture("hf-siglip-tiny"), "model.safetensors");
        var bytes = File.ReadAllBytes(src);
        var path = _temp.File("truncated.safetensors");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        Fails(path, "tensor '", "past the end", "truncated");
    }

    [Fact]
    public void File_shorter_than_the_length_prefix() => Fails(WriteBytes([1, 2, 3]), "too short");

    [Fact]
    public void Empty_file() => Fails(WriteBytes([]), "too short");

    [Fact]
    public void Header_length_larger_than_the_file() => Fails(Raw(Good, 16, declaredHeaderLength: 1 << 20), "header length", "larger than");

    [Fact]
    public void Invalid_json() => Fails(Raw("{\"a\":{\"dtype\":\"F32\",", 0), "not valid", "JSON");

    [Fact]
    public void Header_not_an_object() => Fails(Raw("[1,2]", 0), "JSON Array", "object");

    [Fact]
    public void Invalid_utf8_in_header()
    {
        var path = Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
        var bytes = File.ReadAllBytes(path);
        bytes[10] = 0xFF;   // inside the name "a"
        File.WriteAllBytes(path, bytes);
        Fails(path, "UTF-8");
    }

    [Fact]
    public void Offsets_out_of_range() =>
        Fails(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]}}", 12), "'b'", "past the end");

    [Fact]
    public void Overlapping_offsets() =>
        Fails(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "'b'", "overlap", "'a'");

    [Fact]
    public void Gap_between_tensors() =>
        Fails(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16), "'b'", "gap of 4 bytes");

    [Fact]
    public void Trailing_bytes_no_tensor_owns() =>
        Fails(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 24), "16 trailing bytes");

    [Fact]
    public void End_before_begin() =>
        Fails(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8), "'a'", "end before they begin");

    [Fact]
    public void Unknown_dtype() =>
        Fails(Raw("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8), "'a'", "F8_E4M3", "supported dtypes are F64, F32, F16, BF16, I64, I32");

    [Fact]
    public void Shape_not_matching_byte_size() =>
        Fails(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "'a'", "needs 12 bytes", "span 8 bytes");

    [Fact]
    public void Negative_dimension() =>
        Fails(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "'a'", "negative dimension");

    [Fact]
    public void Duplicate_names() =>
        Fails(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "'a'", "twice");

    [Fact]
    public void Missing_field() =>
        Fails(Raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), "'a'", "data_offsets");

    [Fact]
    public void Metadata_value_not_a_string() =>
        Fails(Raw("{\"__metadata__\":{\"format\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "__metadata__", "format", "strings");

    [Fact]
    public void Missing_file_says_so() =>
        Assert.Contains("no-such.safetensors", Assert.Throws<FileNotFoundException>(() => SafeTensorsFile.Open(_temp.File("no-such.safetensors"))).Message);

    [Fact]
    public void Asking_for_an_absent_tensor_names_it()
    {
        using var f = SafeTensorsFile.Open(Raw(Good, 16));
        var ex = Assert.Throws<SafeTensorsFormatException>(() => f.ReadTensor("nope"));
        Assert.Contains("'nope'", ex.Message);
        Assert.Contains("a, b", ex.Message);
    }

    [Fact]
    public void Random_corruption_never_crashes()
    {
        // Any byte of a small valid file replaced by any value, or the file cut anywhere: opening and
        // reading either works or throws SafeTensorsFormatException, nothing else.
        var valid = _temp.File("valid.safetensors");
        SafeTensorsWriter.Write(valid, [
            SafeTensorEntry.Float("w", new Tensor([2, 3], [1, 2, 3, 4, 5, 6]), SafeTensorDType.BF16),
            SafeTensorEntry.Int64("ids", [1, 2], [3, 4]),
        ], new Dictionary<string, string> { ["format"] = "pt" });
        var original = File.ReadAllBytes(valid);
        var gen = from position in Gen.Choose(0, original.Length - 1)
                  from value in Gen.Choose(0, 255)
                  from cut in Gen.Frequency((4, Gen.Constant(-1)), (1, Gen.Choose(0, original.Length - 1)))
                  select (position, value, cut);
        int run = 0;
        Props.Check(gen, c =>
        {
            var bytes = (byte[])original.Clone();
            bytes[c.position] = (byte)c.value;
            if (c.cut >= 0) bytes = bytes[..c.cut];
            var path = _temp.File($"mutant{run++}.safetensors");
            File.WriteAllBytes(path, bytes);
            try
            {
                using var f = SafeTensorsFile.Open(path);
                foreach (var e in f.Entries) if (e.DType.IsFloat()) f.ReadTensor(e.Name); else f.ReadInt64(e.Name);
                return true;
            }
            catch (SafeTensorsFormatException ex)
            {
                return ex.Message.Contains(path, StringComparison.Ordinal);
            }
        }, seed: 4242UL, output, maxTest: 400);
    }

    private string WriteBytes(byte[] bytes)
    {
        var path = _temp.File($"raw-{Guid.NewGuid():N}.safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
