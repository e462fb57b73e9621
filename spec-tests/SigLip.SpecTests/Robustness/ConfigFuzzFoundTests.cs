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

/// <summary>Holes the fuzzer found in the config parser (see <see cref="FuzzFoundTestBase"/>).</summary>
public sealed class ConfigFuzzFoundTests : FuzzFoundTestBase
{
    [Theory]
    [InlineData("{", "not valid JSON")]
    [InlineData("[]", "top level")]
    [InlineData("{\"text_config\":{}}", "vision_config")]
    [InlineData("{\"text_config\":{},\"vision_config\":{\"hidden_size\":-1}}", "positive")]
    [InlineData("{\"text_config\":{},\"vision_config\":{\"hidden_act\":\"relu\"}}", "hidden_act")]
    [InlineData("{\"text_config\":{},\"vision_config\":{\"patch_size\":1000}}", "patch_size")]
    public void A_bad_config_json_is_an_InputFormatException(string json, string mention)
    {
        string path = Write("config.json", json);
        var ex = Assert.Throws<InputFormatException>(() => HfConfig.Read(path));
        OneLine(ex, path);
        Assert.Contains(mention, ex.Message);
        Assert.Equal(path, ex.File);
    }
}
