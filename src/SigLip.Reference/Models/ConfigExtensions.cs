namespace SigLip.Reference.Models;

/// <summary>
/// Copy-and-update for the config records from languages without C#'s <c>with</c> (F# cannot use
/// <c>{ c with ... }</c> on a C# record). Every argument left out (null) keeps the current value.
/// From F#: <c>SiglipConfig.Base16_224.Vision.With(numHiddenLayers = 2)</c>.
/// </summary>
public static class ConfigExtensions
{
    /// <summary>A copy of <paramref name="config"/> with the given fields replaced.</summary>
    public static VisionConfig With(this VisionConfig config,
        int? hiddenSize = null, int? intermediateSize = null, int? numHiddenLayers = null, int? numAttentionHeads = null,
        int? numChannels = null, int? imageSize = null, int? patchSize = null, double? layerNormEps = null, string? hiddenAct = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config with
        {
            HiddenSize = hiddenSize ?? config.HiddenSize,
            IntermediateSize = intermediateSize ?? config.IntermediateSize,
            NumHiddenLayers = numHiddenLayers ?? config.NumHiddenLayers,
            NumAttentionHeads = numAttentionHeads ?? config.NumAttentionHeads,
            NumChannels = numChannels ?? config.NumChannels,
            ImageSize = imageSize ?? config.ImageSize,
            PatchSize = patchSize ?? config.PatchSize,
            LayerNormEps = layerNormEps ?? config.LayerNormEps,
            HiddenAct = hiddenAct ?? config.HiddenAct,
        };
    }

    /// <summary>
    /// A copy of <paramref name="config"/> with the given fields replaced. <paramref name="projectionSize"/>
    /// left out keeps the current one (to go back to "same as hidden size", construct a new <see cref="TextConfig"/>).
    /// </summary>
    public static TextConfig With(this TextConfig config,
        int? vocabSize = null, int? hiddenSize = null, int? intermediateSize = null, int? numHiddenLayers = null,
        int? numAttentionHeads = null, int? maxPositionEmbeddings = null, int? projectionSize = null, double? layerNormEps = null,
        string? hiddenAct = null, int? padTokenId = null, int? bosTokenId = null, int? eosTokenId = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config with
        {
            VocabSize = vocabSize ?? config.VocabSize,
            HiddenSize = hiddenSize ?? config.HiddenSize,
            IntermediateSize = intermediateSize ?? config.IntermediateSize,
            NumHiddenLayers = numHiddenLayers ?? config.NumHiddenLayers,
            NumAttentionHeads = numAttentionHeads ?? config.NumAttentionHeads,
            MaxPositionEmbeddings = maxPositionEmbeddings ?? config.MaxPositionEmbeddings,
            ProjectionSize = projectionSize ?? config.ProjectionSize,
            LayerNormEps = layerNormEps ?? config.LayerNormEps,
            HiddenAct = hiddenAct ?? config.HiddenAct,
            PadTokenId = padTokenId ?? config.PadTokenId,
            BosTokenId = bosTokenId ?? config.BosTokenId,
            EosTokenId = eosTokenId ?? config.EosTokenId,
        };
    }

    /// <summary>A copy of <paramref name="config"/> with either tower replaced.</summary>
    public static SiglipConfig With(this SiglipConfig config, TextConfig? text = null, VisionConfig? vision = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config with { Text = text ?? config.Text, Vision = vision ?? config.Vision };
    }
}
