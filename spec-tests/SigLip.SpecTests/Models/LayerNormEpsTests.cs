using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Layers;

namespace SigLip.SpecTests.Models;

/// <summary>
/// Each tower's layer_norm_eps reaches that tower's LayerNorms (and the MAP head's), and only that
/// tower's: changing it changes that tower's outputs and leaves the other's bit for bit. Gradients
/// stay right with an eps big enough to matter (0.1).
/// </summary>
public sealed class LayerNormEpsTests
{
    private static SiglipConfig Config(double visionEps, double textEps) =>
        TinyModels.Config(6, 2, 5, 1, 2, 2, 2, 9, 3, 4, 1, 13, 4, visionEps, textEps);

    private static IReadOnlyDictionary<string, Tensor> Outputs(SiglipConfig config)
    {
        var baseConfig = Config(1e-6, 1e-6); // the same parameters and batch whatever the eps
        var model = new SiglipModel(config, TinyModels.Parameters(baseConfig, 7));
        return model.Forward(TinyModels.Batch(baseConfig, 3, 7), LossOptions.Default).Outputs;
    }

    private static double MaxDifference(Tensor a, Tensor b) => a.Data.Zip(b.Data, (x, y) => Math.Abs(x - y)).Max();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Changing_one_towers_eps_changes_that_towers_outputs_only(bool vision)
    {
        var before = Outputs(Config(1e-6, 1e-6));
        var after = Outputs(vision ? Config(0.1, 1e-6) : Config(1e-6, 0.1));
        string[] changed = vision
            ? [OutputNames.VisionLastHiddenState, OutputNames.VisionPoolerOutput, OutputNames.ImageEmbeds]
            : [OutputNames.TextLastHiddenState, OutputNames.TextPoolerOutput, OutputNames.TextEmbeds];
        string[] unchanged = vision
            ? [OutputNames.TextLastHiddenState, OutputNames.TextPoolerOutput, OutputNames.TextEmbeds]
            : [OutputNames.VisionLastHiddenState, OutputNames.VisionPoolerOutput, OutputNames.ImageEmbeds];
        // Activations here are O(1) with variances O(1), so eps 0.1 moves them by ~1e-2; 1e-4 is far above rounding.
        foreach (var name in changed)
            Assert.True(MaxDifference(before[name], after[name]) > 1e-4, $"{name} did not change when the {(vision ? "vision" : "text")} layer_norm_eps went from 1e-6 to 0.1 (max difference {MaxDifference(before[name], after[name]):E3})");
        foreach (var name in unchanged)
            Assert.Equal(before[name].Data, after[name].Data);
    }

    [Fact]
    public void Gradients_match_finite_differences_with_eps_0_1_in_both_towers()
    {
        var config = Config(0.1, 0.1);
        var model = new SiglipModel(config, TinyModels.Parameters(config, 11));
        var batch = TinyModels.Batch(config, 3, 11);
        var grads = model.Backward(model.Forward(batch, LossOptions.Default));
        var rng = new DeterministicRandom(12);
        double Loss() => model.Forward(batch, LossOptions.Default).Loss;
        foreach (var (name, grad) in grads)
            GradCheck.Check(name, model.Parameters[name].Data, grad.Data, Loss, TinyModels.SomeIndices(rng, grad.Size, 3));
    }
}
