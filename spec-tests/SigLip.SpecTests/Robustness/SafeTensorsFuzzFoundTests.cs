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

/// <summary>Holes the fuzzer found in the safetensors parser (see <see cref="FuzzFoundTestBase"/>).</summary>
public sealed class SafeTensorsFuzzFoundTests : FuzzFoundTestBase
{
    [Theory]
    [InlineData("{\"__metadata__\":{\"format\":\"\\ud800\"}}")]   // fuzz safetensors seed 1 case 279
    [InlineData("{\"__metadata__\":{\"\\udc00\":\"pt\"}}")]
    [InlineData("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}")]
    [InlineData("{\"t\":{\"dtype\":\"\\udbff\",\"shape\":[0],\"data_offsets\":[0,0]}}")]
    public void A_safetensors_header_with_an_escaped_lone_surrogate_is_a_SafeTensorsFormatException(string header)
    {
        string path = Write("model.safetensors", SafeTensors(header));
        var ex = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path).Dispose());
        OneLine(ex, path);
        Assert.Contains("surrogate", ex.Message);
    }
}
