using SigLip.Reference.Backends;
using SigLip.Reference.Layers;
using SigLip.Reference.Models;

namespace SigLip.Reference.IO.Golden;

/// <summary>One named tensor of a forward (or backward) pass, as a golden case and a port's dump call it.</summary>
/// <param name="Name">The name in expected.safetensors and in a port's dump.</param>
/// <param name="Shape">Its shape for the given batch.</param>
/// <param name="Description">What it is, and where HF transformers has it.</param>
public sealed record IntermediateSpec(string Name, IReadOnlyList<int> Shape, string Description);

/// <summary>
/// THE list of the tensors a porter bisects with, in forward order, and the one place their names are
/// made (documented in docs/porting.md). For a model of L_v vision and L_t text layers, batch B,
/// N patches, text length T:
/// <list type="number">
/// <item><c>vision_hidden_states.0</c> ... <c>vision_hidden_states.{L_v}</c> [B, N, H_v]: HF's
///   <c>vision_model(..., output_hidden_states=True).hidden_states</c>: index 0 is the embeddings
///   output (patch embedding + position embedding), index i the output of encoder layer i - 1 (the
///   last one before post_layernorm);</item>
/// <item><c>vision_last_hidden_state</c> [B, N, H_v] (post_layernorm);</item>
/// <item><c>vision_head_attention_output</c> [B, 1, H_v]: the MAP head's attention of the probe over the
///   tokens, after out_proj (HF: the output of <c>vision_model.head.attention</c>, element [0]);</item>
/// <item><c>vision_pooler_output</c> [B, H_v]: the MAP head's output;</item>
/// <item><c>text_hidden_states.0</c> ... <c>text_hidden_states.{L_t}</c> [B, T, H_t], as for vision;</item>
/// <item><c>text_last_hidden_state</c> [B, T, H_t] (final_layer_norm), <c>text_pooler_output</c> [B, P] (head of the last token);</item>
/// <item><c>image_embeds</c>, <c>text_embeds</c> (L2-normalised), <c>logits_per_image</c>, <c>logits_per_text</c>, <c>loss</c> [1];</item>
/// <item>with gradients, in the order the backward computes them: <c>grad.logit_scale</c>, <c>grad.logit_bias</c>,
///   then each tower's parameters from its head down to its embeddings (vision, then text).</item>
/// </list>
/// A loss case's order is <c>loss</c>, <c>grad.logit_scale</c>, <c>grad.logit_bias</c>, <c>grad.image_embeds</c>, <c>grad.text_embeds</c>.
/// </summary>
public static class Intermediates
{
    /// <summary>The "intermediates" metadata value of a case that holds this list.</summary>
    public const string FormatVersion = "siglip-intermediates/1";
    /// <summary>The file in a generated case listing the names in forward order with shapes and descriptions.</summary>
    public const string ListFile = "intermediates.json";
    /// <summary>The MAP head's attention output after out_proj [B, 1, H].</summary>
    public const string VisionHeadAttentionOutput = "vision_head_attention_output";

    /// <summary>"vision_hidden_states.{index}": 0 = embeddings output, i = output of vision layer i - 1.</summary>
    public static string VisionHiddenState(int index) => $"vision_hidden_states.{index}";
    /// <summary>"text_hidden_states.{index}": 0 = embeddings output, i = output of text layer i - 1.</summary>
    public static string TextHiddenState(int index) => $"text_hidden_states.{index}";

    /// <summary>The loss case's tensors in order.</summary>
    public static IReadOnlyList<string> LossOrder { get; } =
        [OutputNames.Loss, "grad.logit_scale", "grad.logit_bias", "grad.image_embeds", "grad.text_embeds"];

    /// <summary>Every tensor of a model case in forward order (gradients after the outputs, in backward order, when asked).</summary>
    public static IReadOnlyList<IntermediateSpec> ForwardOrder(SiglipConfig config, int batch, int textLength, bool gradients = false)
    {
        ArgumentNullException.ThrowIfNull(config);
        var v = config.Vision;
        var t = config.Text;
        int n = v.NumPatches;
        var list = new List<IntermediateSpec>();
        for (int i = 0; i <= v.NumHiddenLayers; i++)
            list.Add(new(VisionHiddenState(i), [batch, n, v.HiddenSize], i == 0
                ? "vision embeddings output (patch embedding + position embedding); HF vision hidden_states[0]"
                : $"output of vision layer {i - 1} (vision_model.encoder.layers.{i - 1}); HF vision hidden_states[{i}]"));
        list.Add(new(OutputNames.VisionLastHiddenState, [batch, n, v.HiddenSize], "vision post_layernorm output (vision_model.post_layernorm); HF vision last_hidden_state"));
        list.Add(new(VisionHeadAttentionOutput, [batch, 1, v.HiddenSize], "MAP head attention after out_proj (vision_model.head.attention)"));
        list.Add(new(OutputNames.VisionPoolerOutput, [batch, v.HiddenSize], "MAP head output (vision_model.head); HF vision pooler_output"));
        for (int i = 0; i <= t.NumHiddenLayers; i++)
            list.Add(new(TextHiddenState(i), [batch, textLength, t.HiddenSize], i == 0
                ? "text embeddings output (token embedding + position embedding); HF text hidden_states[0]"
                : $"output of text layer {i - 1} (text_model.encoder.layers.{i - 1}); HF text hidden_states[{i}]"));
        list.Add(new(OutputNames.TextLastHiddenState, [batch, textLength, t.HiddenSize], "text final_layer_norm output (text_model.final_layer_norm); HF text last_hidden_state"));
        list.Add(new(OutputNames.TextPoolerOutput, [batch, t.ProjectionDim], "text head applied to the last token (text_model.head); HF text pooler_output"));
        list.Add(new(OutputNames.ImageEmbeds, [batch, config.EmbedDim], "L2-normalised vision_pooler_output"));
        list.Add(new(OutputNames.TextEmbeds, [batch, config.EmbedDim], "L2-normalised text_pooler_output"));
        list.Add(new(OutputNames.LogitsPerImage, [batch, batch], "exp(logit_scale) image_embeds text_embeds^T + logit_bias"));
        list.Add(new(OutputNames.LogitsPerText, [batch, batch], "the transpose of logits_per_image"));
        list.Add(new(OutputNames.Loss, [1], "the sigmoid loss (HF return_loss=True)"));
        if (gradients)
        {
            var specs = ParameterLayout.For(config);
            list.Add(new(OutputNames.GradPrefix + ParameterLayout.LogitScale, [1], "d loss / d logit_scale"));
            list.Add(new(OutputNames.GradPrefix + ParameterLayout.LogitBias, [1], "d loss / d logit_bias"));
            foreach (var tower in new[] { Tower.Image, Tower.Text })
                foreach (var s in specs.Where(s => s.Tower == tower).Reverse())
                    list.Add(new(OutputNames.GradPrefix + s.Name, s.Shape, $"d loss / d {s.Name}"));
        }
        return list;
    }

    /// <summary>Whether a name is one of the intermediates beyond the outputs every backend returns (hidden states, MAP head attention).</summary>
    public static bool IsIntermediate(string name) =>
        name.StartsWith("vision_hidden_states.", StringComparison.Ordinal) || name.StartsWith("text_hidden_states.", StringComparison.Ordinal) ||
        name == VisionHeadAttentionOutput;

    /// <summary>
    /// <paramref name="items"/> sorted into forward order (a sampled gradient <c>grad_sample.X</c> sits where
    /// <c>grad.X</c> does); names the list does not know come last, in ordinal order.
    /// </summary>
    public static List<T> Sort<T>(IEnumerable<T> items, Func<T, string> name, SiglipConfig? config, int batch = 1, int textLength = 1)
    {
        var order = new Dictionary<string, int>(StringComparer.Ordinal);
        IEnumerable<string> names = config is null ? LossOrder : ForwardOrder(config, batch, textLength, gradients: true).Select(s => s.Name).Concat(LossOrder);
        foreach (var n in names) order.TryAdd(n, order.Count);
        int Rank(string n)
        {
            if (n.StartsWith(GoldenFormat.GradSamplePrefix, StringComparison.Ordinal)) n = OutputNames.GradPrefix + n[GoldenFormat.GradSamplePrefix.Length..];
            return order.TryGetValue(n, out int r) ? r : int.MaxValue;
        }
        return items.Select(x => (x, r: Rank(name(x)), n: name(x)))
            .OrderBy(p => p.r).ThenBy(p => p.n, StringComparer.Ordinal).Select(p => p.x).ToList();
    }

    /// <summary>What a name is, in words (from the list when it is there).</summary>
    public static string Describe(string name, SiglipConfig? config)
    {
        if (config is not null)
            foreach (var s in ForwardOrder(config, 1, 1, gradients: true))
                if (s.Name == name) return s.Description;
        return name;
    }

    /// <summary>
    /// Runs <paramref name="model"/> (the reference's loops unless it was made with other operations)
    /// forward on <paramref name="batch"/>, and backward when <paramref name="gradients"/>, and returns
    /// every tensor of <see cref="ForwardOrder"/>, in that order. HF's loss: dense sigmoid, no epsilon.
    /// </summary>
    public static NamedTensors Collect(SiglipModel model, SiglipBatch batch, bool gradients, Action<string>? stage = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        var c = model.Config;
        stage?.Invoke("forward");
        var pass = model.Forward(batch, new LossOptions(LossKind.Sigmoid, Chunks: 1, NormEpsilon: 0.0));
        int b = batch.Size, n = c.Vision.NumPatches, len = batch.InputIds.Length;
        var found = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        Tensor Copy(double[] data, params int[] shape) => new(shape, (double[])data.Clone());
        for (int i = 0; i <= c.Vision.NumHiddenLayers; i++)
            found[VisionHiddenState(i)] = Copy(pass.Vision.LayerInput(i), b, n, c.Vision.HiddenSize);
        found[VisionHeadAttentionOutput] = Copy(pass.Vision.Head.Attended, b, 1, c.Vision.HiddenSize);
        for (int i = 0; i <= c.Text.NumHiddenLayers; i++)
            found[TextHiddenState(i)] = Copy(pass.Text.LayerInput(i), b, len, c.Text.HiddenSize);
        foreach (var (name, value) in pass.Outputs) found[name] = value;
        if (gradients)
        {
            stage?.Invoke("backward");
            foreach (var (name, g) in model.Backward(pass)) found[OutputNames.GradPrefix + name] = g;
        }
        var result = new NamedTensors();
        foreach (var spec in ForwardOrder(c, b, len, gradients))
        {
            if (!found.TryGetValue(spec.Name, out var t))
                throw new InvalidOperationException($"The forward pass produced no '{spec.Name}': the intermediate list and the model disagree.");
            result.Add(spec.Name, t);
        }
        return result;
    }
}
