using System.Buffers.Binary;
using System.Text.Json;
using SigLip.Reference;
using SigLip.Reference.Models;

namespace SigLip.SpecTests.TorchSharp;

/// <summary>
/// A private reader of ../shared/fixtures/hf-siglip-tiny (safetensors F64/I64 and config.json), so the
/// TorchSharp tests do not wait for the io engineer's SafeTensorsFile / HfConfig. Minimal on purpose.
/// </summary>
internal sealed class TinyFixture
{
    public required SiglipConfig Config { get; init; }
    public required NamedTensors Parameters { get; init; }
    public required Dictionary<string, Tensor> Expected { get; init; }
    public required SiglipBatch Batch { get; init; }

    private static readonly Lazy<TinyFixture> Cached = new(() => Load(Support.RepoPaths.Fixture("hf-siglip-tiny")));
    public static TinyFixture Instance => Cached.Value;

    public static TinyFixture Load(string folder)
    {
        var config = ReadConfig(Path.Combine(folder, "config.json"));
        var model = ReadSafeTensors(Path.Combine(folder, "model.safetensors"), out _);
        var expected = ReadSafeTensors(Path.Combine(folder, "expected.safetensors"), out var ids);
        var parameters = new NamedTensors(ParameterLayout.For(config).Select(s => new KeyValuePair<string, Tensor>(s.Name, model[s.Name])));
        var (idShape, idValues) = ids["input_ids"];
        var tokenIds = new TokenIds(idShape[0], idShape[1], idValues.Select(v => (int)v).ToArray());
        return new TinyFixture { Config = config, Parameters = parameters, Expected = expected, Batch = new SiglipBatch(expected["pixel_values"], tokenIds) };
    }

    private static SiglipConfig ReadConfig(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var t = doc.RootElement.GetProperty("text_config");
        var v = doc.RootElement.GetProperty("vision_config");
        int I(JsonElement e, string n) => e.GetProperty(n).GetInt32();
        var text = new TextConfig(I(t, "vocab_size"), I(t, "hidden_size"), I(t, "intermediate_size"), I(t, "num_hidden_layers"),
            I(t, "num_attention_heads"), I(t, "max_position_embeddings"), I(t, "projection_size"), t.GetProperty("layer_norm_eps").GetDouble());
        var vision = new VisionConfig(I(v, "hidden_size"), I(v, "intermediate_size"), I(v, "num_hidden_layers"), I(v, "num_attention_heads"),
            I(v, "num_channels"), I(v, "image_size"), I(v, "patch_size"), v.GetProperty("layer_norm_eps").GetDouble());
        return new SiglipConfig(text, vision);
    }

    private static Dictionary<string, Tensor> ReadSafeTensors(string path, out Dictionary<string, (int[] Shape, long[] Values)> integers)
    {
        var bytes = File.ReadAllBytes(path);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        var floats = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        integers = new(StringComparer.Ordinal);
        int dataStart = 8 + (int)headerLength;
        foreach (var entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var span = bytes.AsSpan(dataStart + (int)offsets[0], (int)(offsets[1] - offsets[0]));
            switch (entry.Value.GetProperty("dtype").GetString())
            {
                case "F64":
                    var d = new double[span.Length / 8];
                    for (int i = 0; i < d.Length; i++) d[i] = BinaryPrimitives.ReadDoubleLittleEndian(span[(8 * i)..]);
                    floats[entry.Name] = new Tensor(shape, d);
                    break;
                case "I64":
                    var l = new long[span.Length / 8];
                    for (int i = 0; i < l.Length; i++) l[i] = BinaryPrimitives.ReadInt64LittleEndian(span[(8 * i)..]);
                    integers[entry.Name] = (shape, l);
                    break;
                default:
                    throw new InvalidDataException($"{path}: tensor '{entry.Name}' has dtype {entry.Value.GetProperty("dtype")}; this test reader knows F64 and I64.");
            }
        }
        return floats;
    }
}
