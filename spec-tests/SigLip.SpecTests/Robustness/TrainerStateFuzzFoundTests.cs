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

/// <summary>Holes the fuzzer found in the trainer parser (see <see cref="FuzzFoundTestBase"/>).</summary>
public sealed class TrainerStateFuzzFoundTests : FuzzFoundTestBase
{
    [Theory]
    [InlineData("{", "not valid JSON")]                                         // fuzz trainer-state seed 1 case 9
    [InlineData("null", "null")]
    [InlineData("{\"step\": 3, \"format_version\": 2}", "format_version")]
    [InlineData("{\"step\": 3}", "missing")]
    public void A_bad_trainer_state_is_an_InputFormatException(string json, string mention)
    {
        using var target = new TrainerStateTarget();
        target.Prepare(_temp.Path);
        string path = Path.Combine(target.CaseFolder, TrainingCheckpoint.StateFile);
        File.WriteAllText(path, json);
        var ex = Assert.Throws<InputFormatException>(() => TrainingCheckpoint.Load(target.CaseFolder));
        OneLine(ex, path);
        Assert.Contains(mention, ex.Message);
    }
}
