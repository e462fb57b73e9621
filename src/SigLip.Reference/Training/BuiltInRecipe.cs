using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.Models;

namespace SigLip.Reference.Training;

/// <summary>
/// The main job's defaults: what `siglip train` with no arguments trains. A small SigLIP on the
/// built-in shapes data (16x16 RGB, 4 colours x 4 shapes, 4 combinations held out of training),
/// sized so the reference backend (float64, managed, 2 CPU cores) finishes in a few minutes and
/// still classifies fresh test images zero-shot well above 90%.
/// </summary>
public static class BuiltInRecipe
{
    /// <summary>Image tower: 16x16 pixels in 4x4 patches gives 16 tokens.</summary>
    public const int ImageSize = 16;
    /// <summary>Patch side in pixels.</summary>
    public const int PatchSize = 4;
    /// <summary>Both towers' width, and the embedding width.</summary>
    public const int Width = 32;
    /// <summary>Attention heads in both towers.</summary>
    public const int Heads = 2;
    /// <summary>The MLPs' inner width.</summary>
    public const int MlpWidth = 64;
    /// <summary>Encoder layers of the image tower.</summary>
    public const int VisionLayers = 1;
    /// <summary>Encoder layers of the text tower.</summary>
    public const int TextLayers = 1;

    /// <summary>The tokenizer of the built-in captions and prompts.</summary>
    public static WordTokenizer Tokenizer() => ShapesDataset.CreateTokenizer();

    /// <summary>The training images: only the seen colour-shape combinations.</summary>
    public static ShapesDataset TrainData() => new(new ShapesDatasetOptions(ImageSize: ImageSize, Split: ShapesSplit.Train));

    /// <summary>Fresh images of the seen combinations (new positions, sizes and noise).</summary>
    public static ShapesDataset TestData() => new(new ShapesDatasetOptions(ImageSize: ImageSize, Split: ShapesSplit.Test));

    /// <summary>Images of the held-out combinations, classified among all combinations.</summary>
    public static ShapesDataset UnseenData() => new(new ShapesDatasetOptions(ImageSize: ImageSize, Split: ShapesSplit.Unseen));

    /// <summary>The model: two small towers whose sizes fit the built-in data.</summary>
    public static SiglipConfig Config()
    {
        var tokenizer = Tokenizer();
        var config = new SiglipConfig(
            new TextConfig(
                VocabSize: tokenizer.VocabSize,
                HiddenSize: Width,
                IntermediateSize: MlpWidth,
                NumHiddenLayers: TextLayers,
                NumAttentionHeads: Heads,
                MaxPositionEmbeddings: ShapesVocabulary.RecommendedTextLength,
                ProjectionSize: Width,
                PadTokenId: WordTokenizer.PadId,
                BosTokenId: WordTokenizer.EndId,
                EosTokenId: WordTokenizer.EndId),
            new VisionConfig(
                HiddenSize: Width,
                IntermediateSize: MlpWidth,
                NumHiddenLayers: VisionLayers,
                NumAttentionHeads: Heads,
                NumChannels: 3,
                ImageSize: ImageSize,
                PatchSize: PatchSize));
        config.Validate();
        return config;
    }

    /// <summary>The hyper-parameters (paper's t' = ln 10, b = -10 start; AdamW; warmup then cosine).</summary>
    public static TrainingSettings Settings { get; } = new(
        Steps: 6000,
        BatchSize: 32,
        LearningRate: 3e-3,
        WarmupSteps: 200,
        MinLearningRate: 3e-5,
        Optimizer: new Backends.AdamWSettings(Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-8, WeightDecay: 1e-4, MaxGradNorm: 1.0),
        Seed: 0,
        CheckpointEvery: 1000);

    /// <summary>Test images per class for the zero-shot evaluation at the end of `siglip train`.</summary>
    public const int TestImagesPerClass = 25;
}
