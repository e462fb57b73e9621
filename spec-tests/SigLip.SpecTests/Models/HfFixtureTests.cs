using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.IO;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Models;

/// <summary>
/// The outside referee: HF transformers' own float64 forward and backward on a tiny SigLIP
/// (../shared/fixtures/hf-siglip-*). Every output and every grad.* tensor must agree within
/// |a-e| &lt;= 1e-11 + 1e-9 |e|.
/// </summary>
public sealed class HfFixtureTests(ITestOutputHelper output)
{
    /// <summary>Every fixture folder of this layout (hf-siglip-tiny and any other sizes placed beside it).</summary>
    public static TheoryData<string> Fixtures()
    {
        var data = new TheoryData<string> { "hf-siglip-tiny" };
        var root = Path.Combine(RepoPaths.Shared, "fixtures");
        if (Directory.Exists(root))
            foreach (var dir in Directory.GetDirectories(root, "hf-siglip-*").Select(Path.GetFileName).Order(StringComparer.Ordinal))
                if (dir != "hf-siglip-tiny" && File.Exists(Path.Combine(root, dir!, "expected.safetensors"))) data.Add(dir!);
        return data;
    }

    /// <summary>Runs the fixture's batch through the reference and compares every tensor of expected.safetensors.</summary>
    public static IReadOnlyList<Comparison> CompareWithFixture(string folder, Tolerance tolerance)
    {
        var checkpoint = HfCheckpoint.Load(folder);
        using var expected = SafeTensorsFile.Open(Path.Combine(folder, "expected.safetensors"));
        var batch = new SiglipBatch(expected.ReadTensor("pixel_values"), expected.ReadTokenIds("input_ids"));
        var model = new SiglipModel(checkpoint.Config, checkpoint.Parameters);
        // HF's loss: dense sigmoid, embeddings divided by their norm with no epsilon.
        var pass = model.Forward(batch, new LossOptions(LossKind.Sigmoid, Chunks: 1, NormEpsilon: 0.0));
        var grads = model.Backward(pass);

        var comparisons = new List<Comparison>();
        var compared = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in expected.Entries)
        {
            if (entry.Name is "input_ids" or "pixel_values") continue;
            Tensor? actual = entry.Name.StartsWith(OutputNames.GradPrefix, StringComparison.Ordinal)
                ? (grads.TryGetValue(entry.Name[OutputNames.GradPrefix.Length..], out var g) ? g : null)
                : (pass.Outputs.TryGetValue(entry.Name, out var o) ? o : null);
            var want = expected.ReadTensor(entry.Name);
            comparisons.Add(actual is null
                ? new Comparison(entry.Name, false, double.NaN, double.NaN, [], double.NaN, double.NaN, tolerance, "the reference produced no tensor of this name")
                : Comparison.Of(entry.Name, actual, want, tolerance));
            compared.Add(entry.Name);
        }
        // The other direction: everything the reference produces must have been checked.
        foreach (var name in pass.Outputs.Keys.Concat(grads.Keys.Select(k => OutputNames.GradPrefix + k)))
            if (!compared.Contains(name))
                comparisons.Add(new Comparison(name, false, double.NaN, double.NaN, [], double.NaN, double.NaN, tolerance, "not in expected.safetensors"));
        return comparisons;
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void ReproducesHfTransformersForwardAndBackwardInFloat64(string fixture)
    {
        var folder = RepoPaths.Fixture(fixture);
        Assert.True(Directory.Exists(folder), $"fixture folder {folder} is missing (set SIGLIP_SHARED to the shared folder)");
        var comparisons = CompareWithFixture(folder, Tolerance.Float64);
        foreach (var c in comparisons) output.WriteLine(c.ToString());
        var failures = comparisons.Where(c => !c.Passed).ToList();
        Assert.True(failures.Count == 0,
            $"{failures.Count} of {comparisons.Count} tensors differ from HF transformers ({Tolerance.Float64}):\n" + string.Join("\n", failures));
        // The tiny fixture's count: 9 outputs and 88 gradients.
        if (fixture == "hf-siglip-tiny") Assert.Equal(9 + 88, comparisons.Count);
    }
}
