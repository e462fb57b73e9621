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
/// |a-e| &lt;= 1e-11 + 1e-9 |e|, on every backend that can start here: the reference model, the same
/// model on the managed kernels (float64), and the torch backend's own model (float64; its float32 and
/// bfloat16 runs are in TorchSharp/TorchBackendTests).
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

    /// <summary>Every fixture on every backend whose model is checked (<see cref="ModelUnderTest.Float64"/>).</summary>
    public static TheoryData<string, string> FixturesOnEveryBackend()
    {
        var data = new TheoryData<string, string>();
        foreach (var fixture in Fixtures())
            foreach (var backend in ModelUnderTest.Float64)
                data.Add(fixture, backend);
        return data;
    }

    /// <summary>Runs the fixture's batch through the backend's model and compares every tensor of expected.safetensors.</summary>
    public static IReadOnlyList<Comparison> CompareWithFixture(string folder, Tolerance tolerance, string backend, ITestOutputHelper output)
    {
        var checkpoint = HfCheckpoint.Load(folder);
        using var expected = SafeTensorsFile.Open(Path.Combine(folder, "expected.safetensors"));
        var batch = new SiglipBatch(expected.ReadTensor("pixel_values"), expected.ReadTokenIds("input_ids"));
        using var model = ModelUnderTest.Create(backend, checkpoint.Config, checkpoint.Parameters, output);
        // HF's loss: dense sigmoid, embeddings divided by their norm with no epsilon.
        var (outputs, grads) = model.ForwardBackward(batch, new LossOptions(LossKind.Sigmoid, Chunks: 1, NormEpsilon: 0.0));

        var comparisons = new List<Comparison>();
        var compared = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in expected.Entries)
        {
            if (entry.Name is "input_ids" or "pixel_values") continue;
            Tensor? actual = entry.Name.StartsWith(OutputNames.GradPrefix, StringComparison.Ordinal)
                ? (grads.TryGetValue(entry.Name[OutputNames.GradPrefix.Length..], out var g) ? g : null)
                : (outputs.TryGetValue(entry.Name, out var o) ? o : null);
            var want = expected.ReadTensor(entry.Name);
            comparisons.Add(actual is null
                ? new Comparison(entry.Name, false, double.NaN, double.NaN, [], double.NaN, double.NaN, tolerance, $"{backend} produced no tensor of this name")
                : Comparison.Of(entry.Name, actual, want, tolerance));
            compared.Add(entry.Name);
        }
        // The other direction: everything the model produces must have been checked.
        foreach (var name in outputs.Keys.Concat(grads.Keys.Select(k => OutputNames.GradPrefix + k)))
            if (!compared.Contains(name))
                comparisons.Add(new Comparison(name, false, double.NaN, double.NaN, [], double.NaN, double.NaN, tolerance, "not in expected.safetensors"));
        return comparisons;
    }

    [SkippableTheory]
    [MemberData(nameof(FixturesOnEveryBackend))]
    public void ReproducesHfTransformersForwardAndBackwardInFloat64(string fixture, string backend)
    {
        var folder = RepoPaths.Fixture(fixture);
        Assert.True(Directory.Exists(folder), $"fixture folder {folder} is missing (set SIGLIP_SHARED to the shared folder)");
        var comparisons = CompareWithFixture(folder, Tolerance.Float64, backend, output);
        foreach (var c in comparisons) output.WriteLine(c.ToString());
        var failures = comparisons.Where(c => !c.Passed).ToList();
        Assert.True(failures.Count == 0,
            $"{backend}: {failures.Count} of {comparisons.Count} tensors differ from HF transformers ({Tolerance.Float64}):\n" + string.Join("\n", failures));
        // The tiny fixture's count: 9 outputs and 88 gradients.
        if (fixture == "hf-siglip-tiny") Assert.Equal(9 + 88, comparisons.Count);
    }
}
