using SigLip.Data;
using SigLip.Reference.IO;
using SigLip.Reference.Models;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Data;

/// <summary>
/// Issue 15: exceptions raised inside libraries on damaged input become the project's own typed error
/// (<see cref="InputFormatException"/>) naming the file and what would be right, and the CLI prints one line.
/// </summary>
public sealed class LibraryErrorTranslationTests : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private static byte[] Spiece => File.ReadAllBytes(Path.Combine(RepoPaths.Fixture("sentencepiece-tiny"), "spiece.model"));

    /// <summary>
    /// Byte 1629 set to 119 (found by a seeded mutation sweep, seed 15): Microsoft.ML.Tokenizers' DoubleArrayTrie
    /// then raises IndexOutOfRangeException in CommonPrefixSearch when encoding.
    /// </summary>
    private static byte[] DamagedSpiece()
    {
        var bytes = Spiece;
        bytes[1629] = 119;
        return bytes;
    }

    [Fact]
    public void A_spiece_model_that_crashes_the_library_is_a_typed_error_naming_the_file()
    {
        var ex = Assert.ThrowsAny<Exception>(() =>
        {
            var tokenizer = SiglipTokenizer.FromBytes(DamagedSpiece(), "damaged/spiece.model");
            tokenizer.EncodeRow("a cat on the mat, Hello World 123!", 16);
            tokenizer.EncodeSentencePiece("a cat");
        });
        var typed = Assert.IsType<InputFormatException>(ex);
        Assert.Equal("damaged/spiece.model", typed.File);
        Assert.Contains("damaged/spiece.model", ex.Message);
        Assert.Contains("intact spiece.model", ex.Message);
    }

    [Fact]
    public void Tokenize_on_a_damaged_model_prints_one_line()
    {
        var path = _temp.File("spiece.model");
        File.WriteAllBytes(path, DamagedSpiece());
        var (code, _, err) = CliRunner.Run("tokenize", "--model", path, "a cat on the mat, Hello World 123!");
        Assert.Equal(1, code);
        Assert.Contains(path, err);
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void Invalid_utf8_in_config_json_is_a_typed_error_naming_the_file_and_the_byte()
    {
        var path = _temp.File("config.json");
        var json = System.Text.Encoding.UTF8.GetBytes(HfConfig.ToJson(SiglipConfig.Base16_224));
        int at = System.Text.Encoding.UTF8.GetString(json).IndexOf("gelu_pytorch_tanh", StringComparison.Ordinal);
        json[at] = 0xFF; // inside the string value of hidden_act
        File.WriteAllBytes(path, json);
        var ex = Assert.Throws<InputFormatException>(() => HfConfig.Read(path));
        Assert.Equal(at, ex.Position);
        Assert.Contains(path, ex.Message);
        Assert.Contains($"byte {at}", ex.Message);
        Assert.Contains("UTF-8", ex.Message);
    }

    [Fact]
    public void An_escaped_lone_surrogate_in_config_json_is_a_typed_error_naming_the_file()
    {
        var path = _temp.File("config.json");
        File.WriteAllText(path, HfConfig.ToJson(SiglipConfig.Base16_224).Replace("\"gelu_pytorch_tanh\"", "\"\\ud800\"", StringComparison.Ordinal));
        var ex = Assert.Throws<InputFormatException>(() => HfConfig.Read(path));
        Assert.Contains(path, ex.Message);
    }
}
