using SigLip.Reference;
using SigLip.Reference.Data;
using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.Models;

namespace SigLip.SpecTests.Training;

/// <summary>Small models and data for the training tests, and a temporary folder that cleans up.</summary>
internal static class TrainingFixtures
{
    /// <summary>8x8 shapes, 2x2 patches... small enough that a step takes milliseconds.</summary>
    public static ShapesDataset TinyData() => new(new ShapesDatasetOptions(ImageSize: 8, Split: ShapesSplit.Train));

    public static WordTokenizer Tokenizer() => ShapesDataset.CreateTokenizer();

    /// <summary>Text width differs from vision width and the head counts are odd, on purpose.</summary>
    public static SiglipConfig TinyConfig() => new(
        new TextConfig(VocabSize: Tokenizer().VocabSize, HiddenSize: 6, IntermediateSize: 10, NumHiddenLayers: 1, NumAttentionHeads: 3,
            MaxPositionEmbeddings: ShapesVocabulary.RecommendedTextLength, ProjectionSize: 10),
        new VisionConfig(HiddenSize: 10, IntermediateSize: 12, NumHiddenLayers: 1, NumAttentionHeads: 5, NumChannels: 3, ImageSize: 8, PatchSize: 4));
}

/// <summary>Passes a source through, but example <paramref name="poisonIndex"/> has a NaN pixel.</summary>
internal sealed class PoisonedSource(IImageTextSource inner, long poisonIndex) : IImageTextSource
{
    public string Description => inner.Description;
    public int ImageSize => inner.ImageSize;
    public int Channels => inner.Channels;
    public IReadOnlyList<string> ClassNames => inner.ClassNames;

    public IEnumerable<ImageTextExample> Examples(int seed)
    {
        long i = 0;
        foreach (var e in inner.Examples(seed))
        {
            if (i++ != poisonIndex) { yield return e; continue; }
            var pixels = e.Pixels.Clone();
            pixels.Data[3] = double.NaN;
            yield return e with { Pixels = pixels };
        }
    }
}
