using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.Models;

namespace SigLip.Reference.Training;

/// <summary>The captions a run's text tower reads, which decide its text length and vocabulary.</summary>
public enum CaptionText
{
    /// <summary>The built-in shapes captions, with their own word tokenizer.</summary>
    BuiltInWords,
    /// <summary>A folder's captions through a SentencePiece model (its vocabulary).</summary>
    SentencePiece,
    /// <summary>A folder's captions through the hashing word tokenizer (<see cref="BuiltInRecipe.HashedVocabulary"/> ids).</summary>
    HashedWords,
}

/// <summary>
/// The main job's defaults: what `siglip train` with no arguments trains. A small SigLIP on the
/// built-in shapes data (16x16 RGB, 4 colours x 4 shapes, 4 combinations held out of training),
/// sized so the managed backend (float32, 2 CPU cores) finishes in under a minute and still
/// classifies fresh test images zero-shot well above 90%; the reference backend (float64) trains
/// the same recipe, slower.
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

    /// <summary>Text length (tokens) for folder captions read with a SentencePiece model.</summary>
    public const int SentencePieceTextLength = 64;
    /// <summary>Text length (tokens) for folder captions read with the hashing word tokenizer.</summary>
    public const int HashedTextLength = 16;
    /// <summary>Vocabulary of the hashing word tokenizer for folder captions.</summary>
    public const int HashedVocabulary = 4096;

    /// <summary>
    /// The model for the given captions: <see cref="Config()"/> for the built-in data; for a folder,
    /// the recipe's towers with a text length and vocabulary for real captions (SentencePiece:
    /// <see cref="SentencePieceTextLength"/> tokens, the vocabulary is set from the model later;
    /// hashing word tokenizer: <see cref="HashedTextLength"/> tokens, <see cref="HashedVocabulary"/> ids).
    /// </summary>
    public static SiglipConfig ConfigFor(CaptionText captions)
    {
        var config = Config();
        return captions switch
        {
            CaptionText.BuiltInWords => config,
            CaptionText.SentencePiece => config with { Text = config.Text with { MaxPositionEmbeddings = SentencePieceTextLength } },
            CaptionText.HashedWords => config with { Text = config.Text with { MaxPositionEmbeddings = HashedTextLength, VocabSize = HashedVocabulary } },
            _ => throw new ArgumentOutOfRangeException(nameof(captions), captions, "Unknown caption kind."),
        };
    }

    /// <summary>
    /// Warmup steps of a run of <paramref name="steps"/> steps (null: the recipe's): the recipe's
    /// <see cref="TrainingSettings.WarmupSteps"/>, but a shorter run warms up for at most a tenth of
    /// its steps (and at least one).
    /// </summary>
    public static int WarmupSteps(int? steps) =>
        steps is int shorter ? Math.Min(Settings.WarmupSteps, Math.Max(1, shorter / 10)) : Settings.WarmupSteps;

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
