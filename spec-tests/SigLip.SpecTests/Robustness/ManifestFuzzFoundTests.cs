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

/// <summary>Holes the fuzzer found in the manifest parser (see <see cref="FuzzFoundTestBase"/>).</summary>
public sealed class ManifestFuzzFoundTests : FuzzFoundTestBase
{
    [Theory]
    [InlineData("", "not valid JSON")]                                                                 // fuzz manifest seed 1 case 11
    [InlineData("{\"format\":\"f\",\"generator\":\"g\",\"cases\":{}}", "\"cases\"")]
    [InlineData("{\"format\":\"f\",\"generator\":\"g\",\"cases\":[{\"name\":\"a\",\"files\":{}}]}", "cases[0].kind")]   // case 12
    [InlineData("{\"format\":\"f\",\"generator\":\"g\",\"tolerances\":{\"float64\":{\"atol\":\"x\",\"rtol\":1}},\"cases\":[]}", "atol")] // case 7
    [InlineData("{\"format\":\"f\",\"generator\":\"g\",\"cases\":[{\"name\":\"a\",\"kind\":\"loss\",\"files\":{\"x\":1}}]}", "files")]
    [InlineData("{\"format\":\"\\ud800\",\"generator\":\"g\",\"cases\":[]}", "surrogate")]
    public void A_bad_golden_manifest_is_an_InputFormatException(string json, string mention)
    {
        string path = Write("golden/manifest.json", json);
        var ex = Assert.Throws<InputFormatException>(() => GoldenManifest.Read(path));
        OneLine(ex, path);
        Assert.Contains(mention, ex.Message);
    }
}
