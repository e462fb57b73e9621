using FsCheck;
using FsCheck.Fluent;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.TorchSharp;

/// <summary>
/// The torch backend in float64 against the reference model on generated sizes the fixture does not
/// have: text width != vision width, odd head counts, one or two layers, other batch sizes and text
/// lengths, every loss kind, chunking, locked towers and a normalisation epsilon.
/// </summary>
public sealed class TorchVersusReferenceTests(ITestOutputHelper output)
{
    private sealed record Case(SiglipConfig Config, int Batch, int TextLength, LossOptions Loss, LockedTowers Locked, int Seed)
    {
        public override string ToString() =>
            $"vision H{Config.Vision.HiddenSize}/A{Config.Vision.NumAttentionHeads}/L{Config.Vision.NumHiddenLayers}/S{Config.Vision.ImageSize}/p{Config.Vision.PatchSize}/C{Config.Vision.NumChannels}, " +
            $"text H{Config.Text.HiddenSize}/A{Config.Text.NumAttentionHeads}/L{Config.Text.NumHiddenLayers}/V{Config.Text.VocabSize}/T{TextLength}of{Config.Text.MaxPositionEmbeddings}, " +
            $"batch {Batch}, {Loss}, locked {Locked}, seed {Seed}";
    }

    private static Gen<Case> Cases =>
        from visionHeads in Gen.Elements(1, 3, 5)
        from visionHeadDim in Gen.Elements(2, 4)
        from textHeads in Gen.Elements(1, 3)
        from textHeadDim in Gen.Elements(3, 6)
        from visionLayers in Gen.Choose(1, 2)
        from textLayers in Gen.Choose(1, 2)
        from patch in Gen.Elements(2, 3)
        from side in Gen.Choose(1, 3)
        from channels in Gen.Elements(1, 3)
        from maxPositions in Gen.Choose(2, 7)
        from length in Gen.Choose(1, maxPositions)
        from batch in Gen.Elements(1, 2, 4, 6)
        from kind in Gen.Elements(LossKind.Sigmoid, LossKind.Softmax)
        from chunks in Gen.Elements(1, 2)
        from epsilon in Gen.Elements(0.0, 1e-6)
        from locked in Gen.Elements(LockedTowers.None, LockedTowers.Image, LockedTowers.Text)
        from seed in Gen.Choose(0, 100000)
        let vision = new VisionConfig(visionHeads * visionHeadDim, 7, visionLayers, visionHeads, channels, side * patch, patch, LayerNormEps: 1e-5)
        let text = new TextConfig(VocabSize: 11, HiddenSize: textHeads * textHeadDim, IntermediateSize: 5, NumHiddenLayers: textLayers,
            NumAttentionHeads: textHeads, MaxPositionEmbeddings: maxPositions, ProjectionSize: visionHeads * visionHeadDim)
        select new Case(new SiglipConfig(text, vision), batch, length,
            new LossOptions(kind, kind == LossKind.Sigmoid && batch % chunks == 0 ? chunks : 1, epsilon), locked, seed);

    [SkippableFact]
    public void Float64_forward_outputs_and_gradients_match_the_reference_model_on_other_sizes()
    {
        using var backend = TorchCpu.Start(output, "float64");
        var tolerance = new Tolerance(1e-10, 1e-8);
        Props.Check(Cases, c =>
        {
            var parameters = ModelInit.Random(c.Config, c.Seed);
            // Perturb everything so no bias is zero and no LayerNorm weight is one.
            var rng = new DeterministicRandom(c.Seed + 1L);
            foreach (var t in parameters.Values)
                for (int i = 0; i < t.Size; i++) t.Data[i] += 0.1 * rng.NextGaussian();
            var batch = RandomBatch(c, rng);

            var reference = new SiglipModel(c.Config, parameters);
            var pass = reference.Forward(batch, c.Loss, c.Locked);
            var expectedGrads = reference.Backward(pass);

            using var model = backend.CreateModel(c.Config, parameters, c.Locked);
            var step = model.ForwardBackward(batch, c.Loss, collectOutputs: true);
            var grads = model.Gradients();
            AssertClose.Scalar(step.Loss, pass.Loss, tolerance, $"loss ({c})");
            foreach (var (name, expected) in pass.Outputs)
                AssertClose.Tensor(step.Outputs[name], expected, tolerance, $"{name} ({c})");
            Assert.Equal(expectedGrads.Keys, grads.Keys);
            foreach (var (name, expected) in expectedGrads)
                AssertClose.Tensor(grads[name], expected, tolerance, $"grad.{name} ({c})");
            return true;
        }, seed: 5150, output, maxTest: 12);
    }

    private static SiglipBatch RandomBatch(Case c, DeterministicRandom rng)
    {
        var v = c.Config.Vision;
        var pixels = new Tensor([c.Batch, v.NumChannels, v.ImageSize, v.ImageSize],
            Enumerable.Range(0, c.Batch * v.NumChannels * v.ImageSize * v.ImageSize).Select(_ => 2 * rng.NextDouble() - 1).ToArray());
        var ids = Enumerable.Range(0, c.Batch * c.TextLength).Select(_ => rng.NextInt(c.Config.Text.VocabSize)).ToArray();
        return new SiglipBatch(pixels, new TokenIds(c.Batch, c.TextLength, ids));
    }
}
