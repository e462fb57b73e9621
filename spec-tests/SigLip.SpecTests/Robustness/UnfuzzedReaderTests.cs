using SigLip.Data;
using SigLip.Reference.Data;
using SigLip.Reference.IO;
using SigLip.Reference.IO.Golden;
using SigLip.Reference.Training;
using SigLip.SpecTests.Data;
using SigLip.SpecTests.Support;
using SigLip.SpecTests.Training;

namespace SigLip.SpecTests.Robustness;

/// <summary>
/// The readers the fuzzer has no target for (tokenizer_config.json, a golden case's expected.safetensors
/// metadata and weights.json, a data source that runs dry): each bad input, the smallest that showed it,
/// used to end in InvalidDataException (or System.Text.Json's InvalidOperationException) and now ends in
/// <see cref="InputFormatException"/> naming the file, on one line.
/// </summary>
public sealed class UnfuzzedReaderTests : FuzzFoundTestBase
{
    [Theory]
    [InlineData("{", "not valid JSON")]
    [InlineData("[]", "top level")]
    [InlineData("{\"model_max_length\": \"64\"}", "model_max_length")]
    public void A_bad_tokenizer_config_json_is_an_InputFormatException(string json, string mention)
    {
        using var dir = new TinyCheckpointFolder();
        string path = Path.Combine(dir.Root, PretrainedFolder.TokenizerConfigFileName);
        File.WriteAllText(path, json);
        var ex = Assert.Throws<InputFormatException>(() => PretrainedFolder.Load(dir.Root));
        OneLine(ex, path);
        Assert.Equal(path, ex.File);
        Assert.Contains(mention, ex.Message);
    }

    [Fact]
    public void A_tokenizer_config_json_without_a_usable_limit_still_loads()
    {
        // transformers writes 1e30 for "no limit": a number that is not a length is not an error. Other
        // keys are not read, so an unpaired surrogate escape in one's name (which System.Text.Json
        // compares without failing here) does no harm either.
        using var dir = new TinyCheckpointFolder();
        File.WriteAllText(Path.Combine(dir.Root, PretrainedFolder.TokenizerConfigFileName), "{\"\\ud800\": 1, \"model_max_length\": 1e30, \"other\": [1]}");
        Assert.Equal(12, PretrainedFolder.Load(dir.Root).MaxLength);
    }

    [Theory]
    [InlineData("{", "not valid JSON")]
    [InlineData("{\"format\": \"\\ud800\", \"seed\": 1, \"logit_scale\": 0, \"logit_bias\": 0}", "format")]
    [InlineData("{\"format\": \"siglip-golden-seeded-weights/1\", \"seed\": \"208\", \"logit_scale\": 0, \"logit_bias\": 0}", "seed")]
    [InlineData("{\"format\": \"siglip-golden-seeded-weights/1\", \"seed\": 1, \"logit_bias\": 0}", "logit_scale")]
    [InlineData("{\"format\": \"other/1\", \"seed\": 1, \"logit_scale\": 0, \"logit_bias\": 0}", "other/1")]
    [InlineData("[1]", "format")]
    [InlineData("{\"format\": \"a\\nb\", \"seed\": 1, \"logit_scale\": 0, \"logit_bias\": 0}", "'a b'")]
    public void A_bad_weights_json_is_an_InputFormatException(string json, string mention)
    {
        string path = Write("weights.json", json);
        var config = HfConfig.Read(Path.Combine(RepoPaths.Fixture("hf-siglip-tiny"), "config.json"));
        var ex = Assert.Throws<InputFormatException>(() => SeededWeights.Read(path, config));
        OneLine(ex, path);
        Assert.Equal(path, ex.File);
        Assert.Contains(mention, ex.Message);
    }

    [Theory]
    [InlineData("{\"__metadata__\": {\"kind\": \"bogus\"}}", "bogus")]
    [InlineData("{\"__metadata__\": {\"kind\": \"two\\r\\nlines\"}}", "two  lines")]
    [InlineData("{\"__metadata__\": {\"kind\": \"loss\", \"locked\": \"a\\nb\"}}", "'a b'")]
    [InlineData("{\"__metadata__\": {\"kind\": \"loss\", \"locked\": \"sideways\"}}", "sideways")]
    [InlineData("{\"__metadata__\": {\"kind\": \"loss\", \"chunks\": \"0\"}}", "chunks")]
    [InlineData("{\"__metadata__\": {\"kind\": \"loss\"}}", "image_embeds")]
    public void A_bad_golden_expected_safetensors_is_an_InputFormatException(string header, string mention)
    {
        string path = Write(Path.Combine("case", GoldenFormat.ExpectedFile), SafeTensors(header));
        var ex = Assert.Throws<InputFormatException>(() => GoldenCase.Load(Path.GetDirectoryName(path)!));
        OneLine(ex, path);
        Assert.Equal(path, ex.File);
        Assert.Contains(mention, ex.Message);
    }

    /// <summary>A source with no examples (a folder whose every image turned out unusable).</summary>
    private sealed class EmptySource(IImageTextSource like) : IImageTextSource
    {
        public string Description => "an empty source";
        public int ImageSize => like.ImageSize;
        public int Channels => like.Channels;
        public IReadOnlyList<string> ClassNames => like.ClassNames;
        public IEnumerable<ImageTextExample> Examples(int seed) => [];
    }

    [Fact]
    public void A_data_source_with_no_usable_examples_is_an_InputFormatException()
    {
        var like = TrainingFixtures.TinyData();
        using var stream = new BatchStream(new EmptySource(like), TrainingFixtures.Tokenizer(), seed: 1, batchSize: 2, textLength: 8, like.Channels, like.ImageSize);
        var ex = Assert.Throws<InputFormatException>(() => stream.Next());
        OneLine(ex, "an empty source");
        Assert.Equal("an empty source", ex.File);
        Assert.Contains("no usable examples", ex.Message);
    }
}
