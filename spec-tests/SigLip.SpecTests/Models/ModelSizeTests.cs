using SigLip.Reference.IO;
using SigLip.Reference.Models;
using SigLip.SpecTests.Data;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Models;

/// <summary>
/// Issue 15: sizes from files and options are checked in one place (<see cref="ModelSize"/>) before
/// anything is allocated, in checked arithmetic, and a refusal gives the numbers and what to change.
/// </summary>
public sealed class ModelSizeTests : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private static readonly SiglipConfig Tiny = new(
        new TextConfig(VocabSize: 35, HiddenSize: 32, IntermediateSize: 64, NumHiddenLayers: 1, NumAttentionHeads: 2, MaxPositionEmbeddings: 10),
        new VisionConfig(HiddenSize: 32, IntermediateSize: 64, NumHiddenLayers: 1, NumAttentionHeads: 2, ImageSize: 16, PatchSize: 4));

    [Fact]
    public void The_closed_form_parameter_count_is_the_layouts()
    {
        Assert.Equal(203_155_970, ModelSize.ParameterCount(SiglipConfig.Base16_224));
        Assert.Equal(ParameterLayout.Count(Tiny), ModelSize.ParameterCount(Tiny));
    }

    /// <summary>A config.json from <see cref="Tiny"/> with one field replaced.</summary>
    private string ConfigWith(string field, string value)
    {
        var path = _temp.File("config.json");
        var json = HfConfig.ToJson(Tiny);
        var start = json.IndexOf($"\"{field}\":", StringComparison.Ordinal);
        Assert.True(start >= 0, field);
        var end = json.IndexOfAny([',', '\n'], start);
        File.WriteAllText(path, json[..start] + $"\"{field}\": {value}" + json[end..]);
        return path;
    }

    [Fact]
    public void Two_billion_layers_are_refused_with_the_numbers_before_allocating()
    {
        var path = ConfigWith("num_hidden_layers", "2000000000");
        var ex = Assert.Throws<InputFormatException>(() => HfConfig.Read(path));
        Assert.IsType<ModelSizeException>(ex.InnerException);
        Assert.Contains(path, ex.Message);
        Assert.Contains("num_hidden_layers (2000000000)", ex.Message);
        Assert.Contains("available to this process", ex.Message);
        Assert.Contains("parameters", ex.Message);
    }

    [Fact]
    public void An_image_size_near_two_to_the_thirty_is_refused_not_overflowed()
    {
        var config = Tiny with { Vision = Tiny.Vision with { ImageSize = 1 << 30, PatchSize = 4 } };
        var ex = Assert.Throws<ModelSizeException>(config.Validate);
        Assert.Contains("image_size 1073741824", ex.Message);
        Assert.Contains("patches", ex.Message);
    }

    [Fact]
    public void A_batch_over_the_memory_names_the_option_the_need_and_the_most_that_fits()
    {
        var ex = Assert.Throws<ModelSizeException>(() => ModelSize.CheckTrainingFits(Tiny, 2_000_000_000, 4, maxBytes: null, availableBytes: 1L << 30));
        Assert.Contains("--batch-size 2000000000", ex.Message);
        Assert.Contains("1.0 GiB", ex.Message);
        Assert.Contains("is the most that fits", ex.Message);
        ModelSize.CheckTrainingFits(Tiny, 16, 4, maxBytes: null, availableBytes: 1L << 30);
    }

    [Fact]
    public void Train_with_a_huge_batch_size_is_one_line_naming_the_option_and_creates_no_run_folder()
    {
        var run = _temp.File("run");
        var (code, _, err) = CliRunner.Run("train", "--batch-size", "2000000000", "--skip-golden-check", "--steps", "1", "--out", run);
        Assert.Equal(1, code);
        Assert.Contains("--batch-size 2000000000", err);
        Assert.Contains("is the most that fits", err);
        Assert.DoesNotContain("   at ", err);
        Assert.False(Directory.Exists(run));
    }

    [Fact]
    public void Train_over_max_memory_is_refused_naming_max_memory()
    {
        var run = _temp.File("run");
        var (code, _, err) = CliRunner.Run("train", "--max-memory", "1M", "--skip-golden-check", "--steps", "1", "--out", run);
        Assert.Equal(1, code);
        Assert.Contains("--max-memory", err);
        Assert.Contains("training needs about", err); // a small model over a 1M limit: a real figure
        Assert.False(Directory.Exists(run));
    }

    [Fact]
    public void Tokenize_with_a_huge_max_length_names_the_option_and_what_would_fit()
    {
        var model = Path.Combine(RepoPaths.Fixture("sentencepiece-tiny"), "spiece.model");
        var (code, _, err) = CliRunner.Run("tokenize", "--model", model, "--max-length", "2147483647", "a cat");
        Assert.Equal(1, code);
        Assert.Contains("--max-length 2147483647", err);
        Assert.Contains("or less", err);
        // One row of 2^31-1 ids is about 16 GiB: what fails is the most one array holds, not memory ("more than 8 EiB" was wrong).
        Assert.Contains($"over the {Array.MaxLength:N0} ids one array holds", err);
        Assert.DoesNotContain("EiB", err);
    }

    [Fact]
    public void Token_rows_that_fit_one_array_but_not_memory_say_what_they_need()
    {
        var ex = Assert.Throws<ModelSizeException>(() => ModelSize.CheckTokenIdsFit(1000, 1_000_000, maxBytes: null, availableBytes: 1L << 30));
        Assert.Equal("--max-length 1000000: 1,000 text(s) of 1,000,000 ids need about 7.5 GiB, but 1.0 GiB is available to this process; use --max-length 134,217 or less (SigLIP checkpoints use 64).", ex.Message);
    }
}
