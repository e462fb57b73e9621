using FsCheck;
using FsCheck.Fluent;
using SigLip.Reference;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;

namespace SigLip.SpecTests.Models;

/// <summary>Tiny random SigLIP configurations, parameters and batches for gradient checks.</summary>
public static class TinyModels
{
    /// <summary>A random small config: the text width differs from the vision width in general, heads 1..3, each tower's LayerNorm eps from <see cref="LayerNormEpsilons"/>.</summary>
    public static Gen<SiglipConfig> Configs =>
        from vHeads in Gen.Choose(1, 3) from vHeadDim in Gen.Choose(1, 3) from vMlp in Gen.Choose(1, 6) from vLayers in Gen.Choose(1, 2)
        from channels in Gen.Choose(1, 3) from patch in Gen.Choose(1, 3) from grid in Gen.Choose(1, 3)
        from tHeads in Gen.Choose(1, 3) from tHeadDim in Gen.Choose(1, 3) from tMlp in Gen.Choose(1, 6) from tLayers in Gen.Choose(1, 2)
        from vocab in Gen.Choose(2, 12) from positions in Gen.Choose(1, 5)
        from vEps in Gen.Elements(LayerNormEpsilons.ToArray()) from tEps in Gen.Elements(LayerNormEpsilons.ToArray())
        select Config(vHeads * vHeadDim, vHeads, vMlp, vLayers, channels, patch, grid, tHeads * tHeadDim, tHeads, tMlp, tLayers, vocab, positions, vEps, tEps);

    /// <summary>LayerNorm epsilons the generated configs draw from, per tower: HF's SigLIP value, a common other one, and one big enough to matter.</summary>
    public static IReadOnlyList<double> LayerNormEpsilons { get; } = [1e-6, 1e-5, 0.1];

    public static SiglipConfig Config(int vWidth, int vHeads, int vMlp, int vLayers, int channels, int patch, int grid,
                                      int tWidth, int tHeads, int tMlp, int tLayers, int vocab, int positions,
                                      double vLayerNormEps = 1e-6, double tLayerNormEps = 1e-6) =>
        new(new TextConfig(VocabSize: vocab, HiddenSize: tWidth, IntermediateSize: tMlp, NumHiddenLayers: tLayers,
                           NumAttentionHeads: tHeads, MaxPositionEmbeddings: positions, ProjectionSize: vWidth, LayerNormEps: tLayerNormEps),
            new VisionConfig(HiddenSize: vWidth, IntermediateSize: vMlp, NumHiddenLayers: vLayers, NumAttentionHeads: vHeads,
                             NumChannels: channels, ImageSize: patch * grid, PatchSize: patch, LayerNormEps: vLayerNormEps));

    /// <summary>
    /// HF-style initial values, then every parameter perturbed (as the HF fixture does) so that no bias
    /// is zero and no LayerNorm weight is one; t' and b moved to where the loss is not saturated.
    /// </summary>
    public static NamedTensors Parameters(SiglipConfig config, int seed)
    {
        var p = ModelInit.Random(config, seed);
        var rng = new DeterministicRandom(seed + 1);
        foreach (var t in p.Values)
            for (int i = 0; i < t.Data.Length; i++) t.Data[i] += 0.3 * rng.NextGaussian();
        p[ParameterLayout.LogitScale].Data[0] = Math.Log(10) + 0.2 * rng.NextGaussian();
        p[ParameterLayout.LogitBias].Data[0] = -2.0 + rng.NextGaussian();
        return p;
    }

    /// <summary>A random batch: pixels N(0,1) [B, C, S, S], ids uniform over the vocabulary, length 1..max positions.</summary>
    public static SiglipBatch Batch(SiglipConfig config, int batch, int seed)
    {
        var rng = new DeterministicRandom(seed + 2);
        var v = config.Vision;
        var pixels = new double[batch * v.NumChannels * v.ImageSize * v.ImageSize];
        rng.FillGaussian(pixels);
        int length = rng.NextInt(1, config.Text.MaxPositionEmbeddings + 1);
        var ids = Enumerable.Range(0, batch * length).Select(_ => rng.NextInt(config.Text.VocabSize)).ToArray();
        return new SiglipBatch(new Tensor([batch, v.NumChannels, v.ImageSize, v.ImageSize], pixels), new TokenIds(batch, length, ids));
    }

    /// <summary>Up to <paramref name="count"/> distinct random element indices of a tensor of <paramref name="size"/> elements.</summary>
    public static int[] SomeIndices(DeterministicRandom rng, int size, int count)
    {
        if (size <= count) return Enumerable.Range(0, size).ToArray();
        var chosen = new SortedSet<int>();
        while (chosen.Count < count) chosen.Add(rng.NextInt(size));
        return chosen.ToArray();
    }
}
