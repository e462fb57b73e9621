using System.Text.Json;
using System.Text.Json.Nodes;
using SigLip.Reference;
using SigLip.Reference.IO;
using SigLip.Reference.Models;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.IO;

public sealed class HfCheckpointTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private static string Fixture => RepoPaths.Fixture("hf-siglip-tiny");

    // A copy of the fixture's model folder whose tensors were changed by `edit`.
    private string FolderWith(Action<NamedTensors> edit, string? configJson = null)
    {
        var folder = Path.Combine(_temp.Path, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var tensors = SafeTensorsFile.ReadAllFloats(Path.Combine(Fixture, "model.safetensors"));
        edit(tensors);
        SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), tensors.Select(kv => SafeTensorEntry.Float(kv.Key, kv.Value)));
        File.WriteAllText(Path.Combine(folder, "config.json"), configJson ?? File.ReadAllText(Path.Combine(Fixture, "config.json")));
        return folder;
    }

    private static NamedTensors Without(NamedTensors t, string name) => new(t.Where(kv => kv.Key != name));

    private string ConfigWith(Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture, "config.json")))!.AsObject();
        edit(node);
        return node.ToJsonString();
    }

    private T Fails<T>(Action action, params string[] mentions) where T : Exception
    {
        var ex = Assert.Throws<T>(action);
        output.WriteLine(ex.Message);
        foreach (var m in mentions) Assert.Contains(m, ex.Message);
        return ex;
    }

    [Fact]
    public void Missing_parameter_is_listed()
    {
        string folder = "";
        var tensorsPath = Path.Combine(Fixture, "model.safetensors");
        folder = Path.Combine(_temp.Path, "missing");
        Directory.CreateDirectory(folder);
        var tensors = Without(Without(SafeTensorsFile.ReadAllFloats(tensorsPath), "logit_bias"), "vision_model.head.probe");
        SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), tensors.Select(kv => SafeTensorEntry.Float(kv.Key, kv.Value)));
        File.Copy(Path.Combine(Fixture, "config.json"), Path.Combine(folder, "config.json"));
        Fails<InputFormatException>(() => HfCheckpoint.Load(folder), folder, "2 missing parameter(s)", "logit_bias", "vision_model.head.probe");
    }

    [Fact]
    public void Unexpected_tensor_is_listed_but_position_ids_buffers_are_tolerated()
    {
        var withBuffer = FolderWith(t => t.Add("text_model.embeddings.position_ids", new Tensor([1, 12], new double[12])));
        Assert.Equal(88, HfCheckpoint.Load(withBuffer).Parameters.Count);
        var withExtra = FolderWith(t => t.Add("text_model.pooler.weight", Tensor.Zeros(2)));
        Fails<InputFormatException>(() => HfCheckpoint.Load(withExtra), withExtra, "1 unexpected tensor(s)", "text_model.pooler.weight");
    }

    [Fact]
    public void Wrong_shape_is_listed_with_the_shape_the_config_needs()
    {
        var folder = FolderWith(t => t.Set("logit_scale", Tensor.Zeros(2)));
        Fails<InputFormatException>(() => HfCheckpoint.Load(folder), "logit_scale is [2] but the config needs [1]");
    }

    [Fact]
    public void A_config_that_disagrees_with_the_weights_points_at_the_defaulted_fields()
    {
        // Dropping vision_config.hidden_size makes HF's default (768) apply: the shapes then disagree,
        // and the message says which fields the file left to the defaults.
        var folder = FolderWith(_ => { }, ConfigWith(c => { c["vision_config"]!.AsObject().Remove("hidden_size"); c["text_config"]!["projection_size"] = 768; }));
        Fails<InputFormatException>(() => HfCheckpoint.Load(folder), "wrong shape", "vision_config.hidden_size");
    }

    [Fact]
    public void Non_finite_parameter_is_named()
    {
        var folder = FolderWith(t => t["vision_model.head.probe"].Data[3] = double.NaN);
        Fails<InputFormatException>(() => HfCheckpoint.Load(folder), "vision_model.head.probe", "[0, 0, 3]", "NaN", "finite");
    }

    [Fact]
    public void Missing_config_section_names_the_field_and_the_file()
    {
        var folder = FolderWith(_ => { }, ConfigWith(c => c.Remove("vision_config")));
        Fails<InputFormatException>(() => HfCheckpoint.Load(folder), Path.Combine(folder, "config.json"), "\"vision_config\"", "missing");
    }

    [Fact]
    public void Missing_config_file_and_weights_are_named()
    {
        var empty = Path.Combine(_temp.Path, "empty");
        Directory.CreateDirectory(empty);
        Fails<FileNotFoundException>(() => HfCheckpoint.Load(empty), "config.json");
        File.Copy(Path.Combine(Fixture, "config.json"), Path.Combine(empty, "config.json"));
        Fails<FileNotFoundException>(() => HfCheckpoint.Load(empty), "model.safetensors");
    }

    [Theory]
    [InlineData("hidden_act", "\"gelu\"", "hidden_act", "gelu_pytorch_tanh")]
    [InlineData("hidden_size", "\"wide\"", "text_config.hidden_size", "integer")]
    [InlineData("num_attention_heads", "5", "not divisible", "num_attention_heads")]
    [InlineData("layer_norm_eps", "-1", "layer_norm_eps", "non-negative")]
    public void Bad_text_config_field_is_named(string field, string json, string mention1, string mention2)
    {
        var path = _temp.File("config.json");
        File.WriteAllText(path, ConfigWith(c => c["text_config"]![field] = JsonNode.Parse(json)));
        Fails<InputFormatException>(() => HfConfig.Read(path), path, mention1, mention2);
    }

    [Fact]
    public void Wrong_model_type_and_invalid_json_are_named()
    {
        var path = _temp.File("config.json");
        File.WriteAllText(path, ConfigWith(c => c["model_type"] = "siglip_vision_model"));
        Fails<InputFormatException>(() => HfConfig.Read(path), path, "siglip_vision_model", "whole SiglipModel");
        File.WriteAllText(path, "{\"text_config\": {");
        Fails<InputFormatException>(() => HfConfig.Read(path), path, "not valid JSON");
    }

    [Fact]
    public void Fixture_config_reads_as_written()
    {
        var read = HfConfig.ReadDetailed(Path.Combine(Fixture, "config.json"));
        var c = read.Config;
        // Values from the fixture's config.json.
        Assert.Equal((32, 64, 2, 4, 12, 256, 32), (c.Text.HiddenSize, c.Text.IntermediateSize, c.Text.NumHiddenLayers, c.Text.NumAttentionHeads, c.Text.MaxPositionEmbeddings, c.Text.VocabSize, c.Text.ProjectionDim));
        Assert.Equal((32, 64, 2, 4, 3, 16, 4), (c.Vision.HiddenSize, c.Vision.IntermediateSize, c.Vision.NumHiddenLayers, c.Vision.NumAttentionHeads, c.Vision.NumChannels, c.Vision.ImageSize, c.Vision.PatchSize));
        Assert.Equal(1e-6, c.Vision.LayerNormEps);
        Assert.Equal("gelu_pytorch_tanh", c.Text.HiddenAct);
        Assert.DoesNotContain("text_config.hidden_size", read.DefaultedFields);
    }

    [Fact]
    public void Sparse_config_of_a_released_checkpoint_takes_HF_defaults()
    {
        // google/siglip-base-patch16-224's config.json leaves almost everything to HF's defaults.
        var path = _temp.File("config.json");
        File.WriteAllText(path, "{\"architectures\":[\"SiglipModel\"],\"model_type\":\"siglip\",\"text_config\":{\"model_type\":\"siglip_text_model\"},\"vision_config\":{\"model_type\":\"siglip_vision_model\",\"patch_size\":16}}");
        var read = HfConfig.ReadDetailed(path);
        Assert.Equal(SiglipConfig.Base16_224, read.Config);
        Assert.Contains("text_config.vocab_size", read.DefaultedFields);
        Assert.DoesNotContain("vision_config.patch_size", read.DefaultedFields);
    }

    [Fact]
    public void Written_config_reads_back_equal_and_carries_what_HF_needs()
    {
        var config = new SiglipConfig(
            new TextConfig(VocabSize: 100, HiddenSize: 48, IntermediateSize: 80, NumHiddenLayers: 1, NumAttentionHeads: 3, MaxPositionEmbeddings: 7, ProjectionSize: 20, LayerNormEps: 1e-5),
            new VisionConfig(HiddenSize: 20, IntermediateSize: 36, NumHiddenLayers: 3, NumAttentionHeads: 5, NumChannels: 1, ImageSize: 12, PatchSize: 3, LayerNormEps: 1e-5));
        var path = _temp.File("config.json");
        HfConfig.Write(path, config);
        Assert.Equal(config, HfConfig.Read(path));
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        Assert.Equal("siglip", doc.RootElement.GetProperty("model_type").GetString());
        Assert.Equal("SiglipModel", doc.RootElement.GetProperty("architectures")[0].GetString());
        Assert.Equal("siglip_text_model", doc.RootElement.GetProperty("text_config").GetProperty("model_type").GetString());
        Assert.Equal("siglip_vision_model", doc.RootElement.GetProperty("vision_config").GetProperty("model_type").GetString());
        Assert.Equal(20, doc.RootElement.GetProperty("text_config").GetProperty("projection_size").GetInt32());
    }

    // Every field both towers have gets a different value in each, so a field read from (or written
    // to) the other tower's section cannot go unnoticed.
    private const string DistinctTowersJson = """
        {"architectures":["SiglipModel"],"model_type":"siglip",
         "text_config":{"model_type":"siglip_text_model","hidden_size":48,"intermediate_size":80,"num_hidden_layers":1,
           "num_attention_heads":3,"layer_norm_eps":1e-5,"hidden_act":"gelu_pytorch_tanh","vocab_size":100,
           "max_position_embeddings":7,"projection_size":20,"pad_token_id":0,"bos_token_id":2,"eos_token_id":3},
         "vision_config":{"model_type":"siglip_vision_model","hidden_size":20,"intermediate_size":36,"num_hidden_layers":3,
           "num_attention_heads":5,"layer_norm_eps":1e-6,"hidden_act":"gelu_pytorch_tanh","num_channels":1,
           "image_size":12,"patch_size":3}}
        """;

    private static void AssertDistinctTowers(SiglipConfig c)
    {
        Assert.Equal((48, 80, 1, 3, 1e-5), (c.Text.HiddenSize, c.Text.IntermediateSize, c.Text.NumHiddenLayers, c.Text.NumAttentionHeads, c.Text.LayerNormEps));
        Assert.Equal((20, 36, 3, 5, 1e-6), (c.Vision.HiddenSize, c.Vision.IntermediateSize, c.Vision.NumHiddenLayers, c.Vision.NumAttentionHeads, c.Vision.LayerNormEps));
        Assert.Equal((100, 7, 20, 0, 2, 3), (c.Text.VocabSize, c.Text.MaxPositionEmbeddings, c.Text.ProjectionSize, c.Text.PadTokenId, c.Text.BosTokenId, c.Text.EosTokenId));
        Assert.Equal((1, 12, 3), (c.Vision.NumChannels, c.Vision.ImageSize, c.Vision.PatchSize));
    }

    [Fact]
    public void Fields_both_towers_have_are_read_and_written_per_tower()
    {
        var path = _temp.File("config.json");
        File.WriteAllText(path, DistinctTowersJson);
        var read = HfConfig.Read(path);
        AssertDistinctTowers(read);

        // Written and read back: same values, each in its own tower's section of the file.
        var written = _temp.File("written.json");
        HfConfig.Write(written, read);
        AssertDistinctTowers(HfConfig.Read(written));
        using var doc = JsonDocument.Parse(File.ReadAllText(written));
        var text = doc.RootElement.GetProperty("text_config");
        var vision = doc.RootElement.GetProperty("vision_config");
        foreach (var (field, t, v) in new[] { ("hidden_size", 48.0, 20.0), ("intermediate_size", 80, 36), ("num_hidden_layers", 1, 3), ("num_attention_heads", 3, 5), ("layer_norm_eps", 1e-5, 1e-6) })
        {
            Assert.True(t == text.GetProperty(field).GetDouble(), $"text_config.{field} written as {text.GetProperty(field).GetRawText()}; expected {t}");
            Assert.True(v == vision.GetProperty(field).GetDouble(), $"vision_config.{field} written as {vision.GetProperty(field).GetRawText()}; expected {v}");
        }
    }

    [Fact]
    public void Save_refuses_parameters_that_do_not_match_the_config()
    {
        var loaded = HfCheckpoint.Load(Fixture);
        var broken = Without(loaded.Parameters, "logit_bias");
        broken.Add("extra", Tensor.Zeros(1));
        Fails<ArgumentException>(() => HfCheckpoint.Save(_temp.Path, loaded.Config, broken), "logit_bias", "extra");
        Assert.False(File.Exists(_temp.File("model.safetensors")));
    }

    [Fact]
    public void Sharded_checkpoint_loads()
    {
        var loaded = HfCheckpoint.Load(Fixture);
        var folder = Path.Combine(_temp.Path, "sharded");
        Directory.CreateDirectory(folder);
        var text = loaded.Parameters.Where(kv => kv.Key.StartsWith("text_model", StringComparison.Ordinal)).ToList();
        var rest = loaded.Parameters.Where(kv => !kv.Key.StartsWith("text_model", StringComparison.Ordinal)).ToList();
        SafeTensorsWriter.Write(Path.Combine(folder, "model-00001-of-00002.safetensors"), text.Select(kv => SafeTensorEntry.Float(kv.Key, kv.Value)));
        SafeTensorsWriter.Write(Path.Combine(folder, "model-00002-of-00002.safetensors"), rest.Select(kv => SafeTensorEntry.Float(kv.Key, kv.Value)));
        var map = new JsonObject();
        foreach (var kv in text) map[kv.Key] = "model-00001-of-00002.safetensors";
        foreach (var kv in rest) map[kv.Key] = "model-00002-of-00002.safetensors";
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"), new JsonObject { ["weight_map"] = map }.ToJsonString());
        HfConfig.Write(Path.Combine(folder, "config.json"), loaded.Config);
        var sharded = HfCheckpoint.Load(folder);
        Assert.Equal(loaded.Parameters.Keys, sharded.Parameters.Keys);
        foreach (var (name, t) in loaded.Parameters) Assert.Equal(t.Data, sharded.Parameters[name].Data);
    }

    [Fact]
    public void Atomic_write_that_fails_leaves_the_old_file_and_no_temporary()
    {
        var path = _temp.File("keep.txt");
        AtomicFile.WriteAllText(path, "old");
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s => { s.WriteByte(1); throw new InvalidOperationException("boom"); }));
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(_temp.Path));
    }
}
