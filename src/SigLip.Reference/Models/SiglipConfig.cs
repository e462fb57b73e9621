namespace SigLip.Reference.Models;

/// <summary>The image tower's sizes, as in HF <c>SiglipVisionConfig</c>. Defaults are SigLIP B/16-224.</summary>
/// <param name="HiddenSize">H, the width of the image tokens (HF hidden_size).</param>
/// <param name="IntermediateSize">The MLP's inner width (HF intermediate_size), 4H in the released models.</param>
/// <param name="NumHiddenLayers">The number of encoder layers.</param>
/// <param name="NumAttentionHeads">Attention heads per layer (in the MAP head too); must divide H.</param>
/// <param name="NumChannels">C, colour channels of the input (3).</param>
/// <param name="ImageSize">S, the side of the square input image in pixels.</param>
/// <param name="PatchSize">P, the side of a patch; S / P patches per side (rounded down).</param>
/// <param name="LayerNormEps">The epsilon inside every LayerNorm's square root.</param>
/// <param name="HiddenAct">The MLP's activation; only "gelu_pytorch_tanh" (GELU, tanh approximation) is implemented.</param>
public sealed record VisionConfig(
    int HiddenSize = 768,
    int IntermediateSize = 3072,
    int NumHiddenLayers = 12,
    int NumAttentionHeads = 12,
    int NumChannels = 3,
    int ImageSize = 224,
    int PatchSize = 16,
    double LayerNormEps = 1e-6,
    string HiddenAct = "gelu_pytorch_tanh")
{
    /// <summary>Patches per side: floor(ImageSize / PatchSize), as HF's strided convolution gives.</summary>
    public int PatchesPerSide => ImageSize / PatchSize;
    /// <summary>N, the number of image tokens (no class token).</summary>
    public int NumPatches => PatchesPerSide * PatchesPerSide;
    /// <summary>The width of one attention head, H / heads.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;
}

/// <summary>The text tower's sizes, as in HF <c>SiglipTextConfig</c>. Defaults are SigLIP B/16-224.</summary>
/// <param name="VocabSize">The number of token ids (HF vocab_size).</param>
/// <param name="HiddenSize">H, the width of the text tokens.</param>
/// <param name="IntermediateSize">The MLP's inner width.</param>
/// <param name="NumHiddenLayers">The number of encoder layers.</param>
/// <param name="NumAttentionHeads">Attention heads per layer; must divide H.</param>
/// <param name="MaxPositionEmbeddings">L, the text length: the number of learned positions (64, or 16 for So400m/14-224).</param>
/// <param name="ProjectionSize">P, the width of the text head's output; null: H. Must equal the image tower's width.</param>
/// <param name="LayerNormEps">The epsilon inside every LayerNorm's square root.</param>
/// <param name="HiddenAct">The MLP's activation; only "gelu_pytorch_tanh" is implemented.</param>
/// <param name="PadTokenId">HF pad_token_id (kept for config.json round trips).</param>
/// <param name="BosTokenId">HF bos_token_id (kept for config.json round trips).</param>
/// <param name="EosTokenId">HF eos_token_id (kept for config.json round trips).</param>
public sealed record TextConfig(
    int VocabSize = 32000,
    int HiddenSize = 768,
    int IntermediateSize = 3072,
    int NumHiddenLayers = 12,
    int NumAttentionHeads = 12,
    int MaxPositionEmbeddings = 64,
    int? ProjectionSize = null,
    double LayerNormEps = 1e-6,
    string HiddenAct = "gelu_pytorch_tanh",
    int PadTokenId = 1,
    int BosTokenId = 49406,
    int EosTokenId = 49407)
{
    /// <summary>P, the width of the text head's output (HF: projection_size, defaulting to hidden_size).</summary>
    public int ProjectionDim => ProjectionSize ?? HiddenSize;
    /// <summary>The width of one attention head, H / heads.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;
}

/// <summary>
/// A whole SigLIP model's configuration (HF <c>SiglipConfig</c>): the two towers. The text tower's
/// projection width must equal the image tower's width, since the two embeddings are compared.
/// </summary>
/// <param name="Text">The text tower's sizes.</param>
/// <param name="Vision">The image tower's sizes.</param>
public sealed record SiglipConfig(TextConfig Text, VisionConfig Vision)
{
    /// <summary>SigLIP B/16-224, HF <c>SiglipConfig()</c> defaults.</summary>
    public static SiglipConfig Base16_224 { get; } = new(new TextConfig(), new VisionConfig());

    /// <summary>The width of both embeddings (the image tower's hidden size).</summary>
    public int EmbedDim => Vision.HiddenSize;

    /// <summary>Throws <see cref="ArgumentException"/> naming the field when the sizes cannot form a model (<see cref="ModelSizeException"/> when they overflow or exceed the memory available: <see cref="ModelSize.CheckConfig"/>).</summary>
    public void Validate()
    {
        static void Positive(string name, int v) { if (v <= 0) throw new ArgumentException($"config: {name} must be positive, got {v}."); }
        Positive("vision_config.hidden_size", Vision.HiddenSize);
        Positive("vision_config.intermediate_size", Vision.IntermediateSize);
        Positive("vision_config.num_hidden_layers", Vision.NumHiddenLayers);
        Positive("vision_config.num_attention_heads", Vision.NumAttentionHeads);
        Positive("vision_config.num_channels", Vision.NumChannels);
        Positive("vision_config.image_size", Vision.ImageSize);
        Positive("vision_config.patch_size", Vision.PatchSize);
        Positive("text_config.vocab_size", Text.VocabSize);
        Positive("text_config.hidden_size", Text.HiddenSize);
        Positive("text_config.intermediate_size", Text.IntermediateSize);
        Positive("text_config.num_hidden_layers", Text.NumHiddenLayers);
        Positive("text_config.num_attention_heads", Text.NumAttentionHeads);
        Positive("text_config.max_position_embeddings", Text.MaxPositionEmbeddings);
        Positive("text_config.projection_size", Text.ProjectionDim);
        if (Vision.HiddenSize % Vision.NumAttentionHeads != 0)
            throw new ArgumentException($"config: vision_config.hidden_size {Vision.HiddenSize} is not divisible by num_attention_heads {Vision.NumAttentionHeads}.");
        if (Text.HiddenSize % Text.NumAttentionHeads != 0)
            throw new ArgumentException($"config: text_config.hidden_size {Text.HiddenSize} is not divisible by num_attention_heads {Text.NumAttentionHeads}.");
        // HF's patch convolution (kernel = stride = patch, no padding) keeps floor(S / P) patches per
        // side and ignores the last S mod P pixels: So400m/14 at 384 px keeps 27 x 27 patches.
        if (Vision.PatchSize > Vision.ImageSize)
            throw new ArgumentException($"config: vision_config.patch_size {Vision.PatchSize} is larger than image_size {Vision.ImageSize}; at least one patch must fit.");
        if (Text.ProjectionDim != Vision.HiddenSize)
            throw new ArgumentException($"config: text_config.projection_size {Text.ProjectionDim} must equal vision_config.hidden_size {Vision.HiddenSize}: the two embeddings are compared by dot product.");
        if (Vision.LayerNormEps < 0 || Text.LayerNormEps < 0)
            throw new ArgumentException("config: layer_norm_eps must be non-negative.");
        // Sizes: the patch count, every tensor and the parameter count in checked arithmetic, and the
        // parameters against the memory there is, before anything is allocated.
        ModelSize.CheckConfig(this);
    }
}
