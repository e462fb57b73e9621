namespace SigLip.Reference.Models;

/// <summary>A released SigLIP model: a short name, its Hugging Face repository and its config.</summary>
/// <param name="Name">Short name, e.g. "B/16-224".</param>
/// <param name="HfRepository">The Hugging Face repository, e.g. "google/siglip-base-patch16-224".</param>
/// <param name="Config">Its configuration.</param>
public sealed record SiglipVariant(string Name, string HfRepository, SiglipConfig Config)
{
    /// <summary>The number of trainable numbers in the model (both towers, t' and b).</summary>
    public long ParameterCount => ParameterLayout.Count(Config);
}

/// <summary>
/// The released SigLIP (v1, English) variants, after big_vision's habit of a small table that cites
/// its source. Source: the config.json of each google/siglip-* repository on the Hugging Face hub
/// (read through transformers' defaults: a field a config.json leaves out takes SiglipTextConfig /
/// SiglipVisionConfig's default, i.e. the B/16-224 value: vocab 32000, text length 64, patch 16,
/// LayerNorm eps 1e-6, gelu_pytorch_tanh).
/// - base-patch16-{224,256,384,512}: widths 768, MLP 3072, 12 layers, 12 heads; only image_size differs.
/// - large-patch16-{256,384}: both towers width 1024, MLP 4096, 24 layers, 16 heads.
/// - so400m-patch14-{224,384}: both towers width 1152, MLP 4304, 27 layers, 16 heads, patch 14.
///   The -224 checkpoint was trained with 16 text positions (its text_config sets
///   max_position_embeddings 16; open_clip's ViT-SO400M-14-SigLIP has context_length 16), the -384
///   one with HF's default 64.
/// </summary>
public static class SiglipVariants
{
    private static SiglipConfig Make(int width, int mlp, int layers, int heads, int imageSize, int patchSize, int textPositions = 64) => new(
        new TextConfig(HiddenSize: width, IntermediateSize: mlp, NumHiddenLayers: layers, NumAttentionHeads: heads, MaxPositionEmbeddings: textPositions),
        new VisionConfig(HiddenSize: width, IntermediateSize: mlp, NumHiddenLayers: layers, NumAttentionHeads: heads, ImageSize: imageSize, PatchSize: patchSize));

    /// <summary>SigLIP B/16 at 224 px (google/siglip-base-patch16-224).</summary>
    public static SiglipVariant Base16_224 { get; } = new("B/16-224", "google/siglip-base-patch16-224", Make(768, 3072, 12, 12, 224, 16));
    /// <summary>SigLIP B/16 at 256 px.</summary>
    public static SiglipVariant Base16_256 { get; } = new("B/16-256", "google/siglip-base-patch16-256", Make(768, 3072, 12, 12, 256, 16));
    /// <summary>SigLIP B/16 at 384 px.</summary>
    public static SiglipVariant Base16_384 { get; } = new("B/16-384", "google/siglip-base-patch16-384", Make(768, 3072, 12, 12, 384, 16));
    /// <summary>SigLIP B/16 at 512 px.</summary>
    public static SiglipVariant Base16_512 { get; } = new("B/16-512", "google/siglip-base-patch16-512", Make(768, 3072, 12, 12, 512, 16));
    /// <summary>SigLIP L/16 at 256 px.</summary>
    public static SiglipVariant Large16_256 { get; } = new("L/16-256", "google/siglip-large-patch16-256", Make(1024, 4096, 24, 16, 256, 16));
    /// <summary>SigLIP L/16 at 384 px.</summary>
    public static SiglipVariant Large16_384 { get; } = new("L/16-384", "google/siglip-large-patch16-384", Make(1024, 4096, 24, 16, 384, 16));
    /// <summary>SigLIP So400m/14 at 224 px (16 text positions).</summary>
    public static SiglipVariant So400m14_224 { get; } = new("So400m/14-224", "google/siglip-so400m-patch14-224", Make(1152, 4304, 27, 16, 224, 14, textPositions: 16));
    /// <summary>SigLIP So400m/14 at 384 px.</summary>
    public static SiglipVariant So400m14_384 { get; } = new("So400m/14-384", "google/siglip-so400m-patch14-384", Make(1152, 4304, 27, 16, 384, 14));

    /// <summary>Every variant above, smallest first.</summary>
    public static IReadOnlyList<SiglipVariant> All { get; } =
        [Base16_224, Base16_256, Base16_384, Base16_512, Large16_256, Large16_384, So400m14_224, So400m14_384];

    /// <summary>A variant by its short name ("B/16-224") or HF repository; an unknown name lists the known ones.</summary>
    public static SiglipVariant Find(string name) =>
        All.FirstOrDefault(v => string.Equals(v.Name, name, StringComparison.OrdinalIgnoreCase)
                             || string.Equals(v.HfRepository, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"Unknown SigLIP variant '{name}'. Known: {string.Join(", ", All.Select(v => v.Name))}.");
}
