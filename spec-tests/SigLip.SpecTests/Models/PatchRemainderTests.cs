using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Layers;

namespace SigLip.SpecTests.Models;

/// <summary>
/// An image side that is not a multiple of the patch side (So400m/14 at 384 px): like HF's strided
/// convolution, the reference keeps floor(S / P) patches per side and ignores the last S mod P pixels.
/// </summary>
public sealed class PatchRemainderTests
{
    private static SiglipConfig Config()
    {
        var c = TinyModels.Config(6, 2, 5, 1, 2, 2, 3, 9, 3, 4, 1, 13, 4);
        return c with { Vision = c.Vision with { ImageSize = 7 } }; // 3 x 3 patches of 2 px, one pixel left over
    }

    [Fact]
    public void PixelsBeyondTheLastWholePatchDoNotChangeAnyOutput()
    {
        var config = Config();
        config.Validate();
        Assert.Equal(9, config.Vision.NumPatches);
        var model = new SiglipModel(config, TinyModels.Parameters(config, 3));
        var batch = TinyModels.Batch(config, 2, 3);
        var before = model.Forward(batch, LossOptions.Default).Outputs;

        var pixels = batch.PixelValues.Clone();
        int s = config.Vision.ImageSize;
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < config.Vision.NumChannels; c++)
                for (int i = 0; i < s; i++)
                {
                    pixels.Data[((b * config.Vision.NumChannels + c) * s + (s - 1)) * s + i] += 5.0; // last row
                    pixels.Data[((b * config.Vision.NumChannels + c) * s + i) * s + (s - 1)] -= 3.0; // last column
                }
        var after = model.Forward(batch with { PixelValues = pixels }, LossOptions.Default).Outputs;
        foreach (var (name, tensor) in before)
            Assert.Equal(tensor.Data, after[name].Data);

        // ...while a pixel inside the grid does change them (the test above could not pass vacuously).
        pixels.Data[0] += 1.0;
        var inside = model.Forward(batch with { PixelValues = pixels }, LossOptions.Default).Outputs;
        Assert.NotEqual(before[OutputNames.ImageEmbeds].Data, inside[OutputNames.ImageEmbeds].Data);
    }

    [Fact]
    public void GradientsMatchFiniteDifferences()
    {
        var config = Config();
        var model = new SiglipModel(config, TinyModels.Parameters(config, 4));
        var batch = TinyModels.Batch(config, 3, 4);
        var grads = model.Backward(model.Forward(batch, LossOptions.Default));
        var rng = new DeterministicRandom(44);
        double Loss() => model.Forward(batch, LossOptions.Default).Loss;
        foreach (var name in new[] { "vision_model.embeddings.patch_embedding.weight", "vision_model.embeddings.position_embedding.weight", "vision_model.head.probe" })
            GradCheck.Check(name, model.Parameters[name].Data, grads[name].Data, Loss, TinyModels.SomeIndices(rng, model.Parameters[name].Size, 6));
    }
}
