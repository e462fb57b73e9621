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

/// <summary>Holes the fuzzer found in the spiece parser (see <see cref="FuzzFoundTestBase"/>).</summary>
public sealed class SpieceFuzzFoundTests : FuzzFoundTestBase
{
    [Fact]
    public void A_truncated_spiece_model_is_an_InputFormatException_with_the_byte()
    {
        byte[] model = SentencePieceTarget.TinyModel();
        string path = Write("spiece.model", model[..(model.Length - 3)]);
        var ex = Assert.Throws<InputFormatException>(() => SiglipTokenizer.Load(path));
        OneLine(ex, path);
        Assert.NotNull(ex.Position);
        Assert.Contains($"byte {ex.Position}", ex.Message);
    }
    [Theory]
    [InlineData(SigLip.Data.Text.SentencePieceModelProto.TrainerModelTypeField, 2, "unigram")]   // fuzz spiece seed 1 case 3 (type 5)
    [InlineData(SigLip.Data.Text.SentencePieceModelProto.TrainerUnkIdField, 1000, "unk_id")]
    [InlineData(SigLip.Data.Text.SentencePieceModelProto.TrainerEosIdField, 2, "eos_id")]
    public void A_spiece_model_with_a_wrong_trainer_field_is_an_InputFormatException(int field, long value, string mention)
    {
        byte[] model = SigLip.Data.Text.SentencePieceModelProto.WithVarintField(SentencePieceTarget.TinyModel(), SigLip.Data.Text.SentencePieceModelProto.ModelTrainerSpecField, field, value);
        string path = Write("spiece.model", model);
        var ex = Assert.Throws<InputFormatException>(() => SiglipTokenizer.Load(path));
        OneLine(ex, path);
        Assert.Contains(mention, ex.Message);
    }
}
