using SigLip.Data;
using SigLip.Reference;
using SigLip.Reference.Evaluation;
using SigLip.Reference.IO;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Data;

public sealed class EmbeddingsTests
{
    [Fact]
    public void Probabilities_are_the_sigmoid_of_hf_logits_per_image()
    {
        // Outside referee: HF's logits_per_image for the fixture's embeddings, logit_scale and logit_bias.
        string dir = RepoPaths.Fixture("hf-siglip-tiny");
        using var expected = SafeTensorsFile.Open(Path.Combine(dir, "expected.safetensors"));
        using var weights = SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors"));
        var p = Embeddings.SigmoidProbabilities(expected.ReadTensor("image_embeds"), expected.ReadTensor("text_embeds"),
            weights.ReadTensor("logit_scale").Data[0], weights.ReadTensor("logit_bias").Data[0]);
        var logits = expected.ReadTensor("logits_per_image");
        var sigmoid = new Tensor(logits.Shape, logits.Data.Select(z => 1 / (1 + Math.Exp(-z))).ToArray());
        AssertClose.Tensor(p, sigmoid, new Tolerance(1e-13, 1e-12), "sigmoid(logits_per_image)");
    }

    [Fact]
    public void Probabilities_by_hand()
    {
        // x = (1, 0), y1 = (1, 0), y2 = (0, 1); t' = ln 10, b = -10: sigmoid(10 - 10) = 0.5, sigmoid(-10).
        var p = Embeddings.SigmoidProbabilities(new Tensor([1, 2], [1, 0]), new Tensor([2, 2], [1, 0, 0, 1]), Math.Log(10), -10);
        Assert.Equal(new[] { 1, 2 }, p.Shape);
        Assert.Equal(0.5, p.Data[0], 15);
        Assert.Equal(1 / (1 + Math.Exp(10)), p.Data[1], 15);
        Assert.Throws<ArgumentException>(() => Embeddings.SigmoidProbabilities(new Tensor([1, 3], [1, 0, 0]), new Tensor([1, 2], [1, 0]), 0, 0));
    }
}
