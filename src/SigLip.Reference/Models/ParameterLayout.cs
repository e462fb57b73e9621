namespace SigLip.Reference.Models;

/// <summary>Which part of the model a parameter belongs to.</summary>
public enum Tower
{
    /// <summary>The vision tower (<c>vision_model.*</c>).</summary>
    Image,
    /// <summary>The text tower (<c>text_model.*</c>).</summary>
    Text,
    /// <summary>Neither tower: the loss's t' and b (<c>logit_scale</c>, <c>logit_bias</c>).</summary>
    Head,
}

/// <summary>What a parameter is, which decides its initialisation and whether AdamW decays it.</summary>
public enum ParameterKind
{
    /// <summary>A matrix of a Linear / Conv layer (decayed).</summary>
    Weight,
    /// <summary>A bias vector (not decayed).</summary>
    Bias,
    /// <summary>A LayerNorm scale or shift (not decayed).</summary>
    Norm,
    /// <summary>A token or position embedding table, or the MAP probe (decayed, like big_vision).</summary>
    Embedding,
    /// <summary>t' (logit_scale) or b (logit_bias) (not decayed).</summary>
    Scalar,
}

/// <summary>One parameter: its HF name, its shape, what it is and where it lives.</summary>
/// <param name="Name">The HF name, e.g. "vision_model.head.probe".</param>
/// <param name="Shape">The HF shape.</param>
/// <param name="Kind">What it is (decides init and decay).</param>
/// <param name="Tower">Where it lives.</param>
public sealed record ParameterSpec(string Name, IReadOnlyList<int> Shape, ParameterKind Kind, Tower Tower)
{
    /// <summary>The number of elements.</summary>
    public long Size => Shape.Aggregate(1L, (a, d) => a * d);
    /// <summary>AdamW's decoupled weight decay applies to weights and embeddings only.</summary>
    public bool Decayed => Kind is ParameterKind.Weight or ParameterKind.Embedding;
}

/// <summary>
/// Every parameter of a SigLIP model under its Hugging Face name, in a fixed order. This is the one
/// place that knows the HF layout; loading, saving, initialising and the backends all read it.
/// </summary>
public static class ParameterLayout
{
    /// <summary>HF's name of t' (shape [1]); the logits are scaled by exp(t').</summary>
    public const string LogitScale = "logit_scale";
    /// <summary>HF's name of b (shape [1]).</summary>
    public const string LogitBias = "logit_bias";

    /// <summary>Every parameter of a model with <paramref name="config"/> under its HF name: the text tower, the vision tower, then t' and b.</summary>
    public static IReadOnlyList<ParameterSpec> For(SiglipConfig config)
    {
        var list = new List<ParameterSpec>();
        var v = config.Vision;
        var t = config.Text;
        void Linear(string prefix, int outF, int inF, Tower tower)
        {
            list.Add(new($"{prefix}.weight", [outF, inF], ParameterKind.Weight, tower));
            list.Add(new($"{prefix}.bias", [outF], ParameterKind.Bias, tower));
        }
        void Norm(string prefix, int width, Tower tower)
        {
            list.Add(new($"{prefix}.weight", [width], ParameterKind.Norm, tower));
            list.Add(new($"{prefix}.bias", [width], ParameterKind.Norm, tower));
        }
        void Layers(string prefix, int layers, int width, int mlp, Tower tower)
        {
            for (int i = 0; i < layers; i++)
            {
                string p = $"{prefix}.encoder.layers.{i}";
                Linear($"{p}.self_attn.k_proj", width, width, tower);
                Linear($"{p}.self_attn.v_proj", width, width, tower);
                Linear($"{p}.self_attn.q_proj", width, width, tower);
                Linear($"{p}.self_attn.out_proj", width, width, tower);
                Norm($"{p}.layer_norm1", width, tower);
                Linear($"{p}.mlp.fc1", mlp, width, tower);
                Linear($"{p}.mlp.fc2", width, mlp, tower);
                Norm($"{p}.layer_norm2", width, tower);
            }
        }

        // Text tower.
        list.Add(new("text_model.embeddings.token_embedding.weight", [t.VocabSize, t.HiddenSize], ParameterKind.Embedding, Tower.Text));
        list.Add(new("text_model.embeddings.position_embedding.weight", [t.MaxPositionEmbeddings, t.HiddenSize], ParameterKind.Embedding, Tower.Text));
        Layers("text_model", t.NumHiddenLayers, t.HiddenSize, t.IntermediateSize, Tower.Text);
        Norm("text_model.final_layer_norm", t.HiddenSize, Tower.Text);
        Linear("text_model.head", t.ProjectionDim, t.HiddenSize, Tower.Text);

        // Image tower.
        int h = v.HiddenSize;
        list.Add(new("vision_model.embeddings.patch_embedding.weight", [h, v.NumChannels, v.PatchSize, v.PatchSize], ParameterKind.Weight, Tower.Image));
        list.Add(new("vision_model.embeddings.patch_embedding.bias", [h], ParameterKind.Bias, Tower.Image));
        list.Add(new("vision_model.embeddings.position_embedding.weight", [v.NumPatches, h], ParameterKind.Embedding, Tower.Image));
        Layers("vision_model", v.NumHiddenLayers, h, v.IntermediateSize, Tower.Image);
        Norm("vision_model.post_layernorm", h, Tower.Image);
        list.Add(new("vision_model.head.probe", [1, 1, h], ParameterKind.Embedding, Tower.Image));
        list.Add(new("vision_model.head.attention.in_proj_weight", [3 * h, h], ParameterKind.Weight, Tower.Image));
        list.Add(new("vision_model.head.attention.in_proj_bias", [3 * h], ParameterKind.Bias, Tower.Image));
        Linear("vision_model.head.attention.out_proj", h, h, Tower.Image);
        Norm("vision_model.head.layernorm", h, Tower.Image);
        Linear("vision_model.head.mlp.fc1", v.IntermediateSize, h, Tower.Image);
        Linear("vision_model.head.mlp.fc2", h, v.IntermediateSize, Tower.Image);

        // The loss's own two scalars.
        list.Add(new(LogitScale, [1], ParameterKind.Scalar, Tower.Head));
        list.Add(new(LogitBias, [1], ParameterKind.Scalar, Tower.Head));
        return list;
    }

    /// <summary>The total number of parameters (B/16-224: 203,155,970).</summary>
    public static long Count(SiglipConfig config) => For(config).Sum(p => p.Size);
}
