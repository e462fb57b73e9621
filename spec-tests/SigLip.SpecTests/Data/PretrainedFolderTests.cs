using System.Text.Json.Nodes;
using SigLip.Data;
using SigLip.Reference.IO;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Data;

/// <summary>A checkpoint folder made of the hf-siglip-tiny fixture plus the sentencepiece-tiny spiece.model.</summary>
internal sealed class TinyCheckpointFolder : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("siglip-ckpt").FullName;

    public TinyCheckpointFolder(bool withSpiece = true)
    {
        foreach (var f in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(RepoPaths.Fixture("hf-siglip-tiny"), f), Path.Combine(Root, f));
        if (withSpiece) File.Copy(Path.Combine(RepoPaths.Fixture("sentencepiece-tiny"), "spiece.model"), Path.Combine(Root, "spiece.model"));
    }

    public void EditConfig(Action<JsonNode> edit)
    {
        string path = Path.Combine(Root, "config.json");
        var node = JsonNode.Parse(File.ReadAllText(path))!;
        edit(node);
        File.WriteAllText(path, node.ToJsonString());
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, true); } catch (IOException) { }
    }
}

public sealed class PretrainedFolderTests
{
    [Fact]
    public void A_checkpoint_folder_loads_as_it_is_with_its_tokenizer()
    {
        using var dir = new TinyCheckpointFolder();
        var model = PretrainedFolder.Load(dir.Root);
        Assert.Equal(256, model.Config.Text.VocabSize);
        Assert.Equal(90, model.Tokenizer.VocabSize);
        Assert.Equal(12, model.MaxLength); // max_position_embeddings, no tokenizer_config.json
        Assert.Contains(model.Warnings, w => w.Contains("90 pieces") && w.Contains("256"));
        Assert.Contains("logit_scale", model.Parameters.Keys);
    }

    [Fact]
    public void A_tokenizer_larger_than_the_embedding_table_is_refused_before_the_weights_are_read()
    {
        using var dir = new TinyCheckpointFolder();
        dir.EditConfig(n => n["text_config"]!["vocab_size"] = 50);
        var ex = Assert.Throws<InputFormatException>(() => PretrainedFolder.Load(dir.Root));
        Assert.Contains("90 pieces", ex.Message);
        Assert.Contains("vocab_size is 50", ex.Message);
    }

    [Fact]
    public void Max_length_must_fit_the_position_table()
    {
        using var dir = new TinyCheckpointFolder();
        var model = PretrainedFolder.Load(dir.Root);
        var ex = Assert.Throws<InputFormatException>(() => PretrainedFolder.CheckConsistency(model.Config, model.Tokenizer, 13, "here"));
        Assert.Contains("max_position_embeddings 12", ex.Message);
        Assert.Contains(PretrainedFolder.CheckConsistency(model.Config, model.Tokenizer, 8, "here"), w => w.Contains("below"));

        File.WriteAllText(Path.Combine(dir.Root, "tokenizer_config.json"), "{\"model_max_length\": 64}");
        var capped = PretrainedFolder.Load(dir.Root);
        Assert.Equal(12, capped.MaxLength);
        Assert.Contains(capped.Warnings, w => w.Contains("model_max_length 64"));
    }

    [Fact]
    public void A_folder_without_spiece_model_says_what_is_missing()
    {
        using var dir = new TinyCheckpointFolder(withSpiece: false);
        var ex = Assert.Throws<FileNotFoundException>(() => PretrainedFolder.Load(dir.Root));
        Assert.Contains("spiece.model", ex.Message);
        Assert.Throws<DirectoryNotFoundException>(() => PretrainedFolder.Load(Path.Combine(dir.Root, "nope")));
    }
}
