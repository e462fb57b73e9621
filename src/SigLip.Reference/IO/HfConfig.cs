using System.Text.Json;
using SigLip.Reference.Models;

namespace SigLip.Reference.IO;

/// <summary>What <see cref="HfConfig.ReadDetailed"/> found: the config, and which fields the file left to HF's defaults.</summary>
/// <param name="Config">The configuration read.</param>
/// <param name="DefaultedFields">The fields the file left out, which took transformers' defaults.</param>
public sealed record HfConfigRead(SiglipConfig Config, IReadOnlyList<string> DefaultedFields);

/// <summary>
/// HF transformers' <c>config.json</c> of a <c>SiglipModel</c> (model_type "siglip": a "text_config"
/// and a "vision_config"). Released checkpoints list only the fields that differ from HF's
/// defaults (google/siglip-base-patch16-224's vision_config holds just patch_size), so a field the
/// file leaves out takes HF's default, exactly as transformers does; the two sections themselves
/// are required. Present fields are checked (type, range, supported activation) and errors name
/// the file and the field.
/// </summary>
public static class HfConfig
{
    /// <summary>The activations this reference implements (GELU, tanh form).</summary>
    public static IReadOnlyList<string> SupportedActivations { get; } = ["gelu_pytorch_tanh"];

    /// <summary>The model configuration in an HF <c>config.json</c>; fields it leaves out take transformers' defaults.</summary>
    public static SiglipConfig Read(string configJsonPath) => ReadDetailed(configJsonPath).Config;

    /// <summary>The same as <see cref="Read"/>, with what was read besides the config (see <see cref="HfConfigRead"/>).</summary>
    public static HfConfigRead ReadDetailed(string configJsonPath)
    {
        try
        {
            return ReadDetailedCore(configJsonPath);
        }
        catch (InvalidOperationException ex) // System.Text.Json on a value it cannot convert (an escaped lone surrogate, say)
        {
            throw JsonInputErrors.BadValue(configJsonPath, ex, "an HF SiglipConfig object");
        }
    }

    private static HfConfigRead ReadDetailedCore(string configJsonPath)
    {
        if (!File.Exists(configJsonPath)) throw new FileNotFoundException($"{configJsonPath}: no such config.json.", configJsonPath);
        JsonDocument doc;
        byte[] bytes = InputFile.ReadAllBytes(configJsonPath, "config.json");
        // System.Text.Json checks UTF-8 only when a string is read, and then says "Cannot transcode invalid
        // UTF-8 JSON text" without naming the file: check the whole file first, and say where.
        if (FirstInvalidUtf8(bytes) is long bad)
            throw new InputFormatException($"{configJsonPath}: byte {bad} (0x{bytes[bad]:X2}) is not valid UTF-8; config.json must be UTF-8 text (save it as UTF-8).", configJsonPath, bad);
        try
        {
            doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = false, MaxDepth = 32 });
        }
        catch (JsonException ex)
        {
            throw JsonInputErrors.NotJson(configJsonPath, bytes, ex, "an HF SiglipConfig object");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InputFormatException($"{configJsonPath}: the top level is a JSON {root.ValueKind}; expected an HF SiglipConfig object.", configJsonPath);
            if (root.TryGetProperty("model_type", out var mt) && mt.ValueKind == JsonValueKind.String && mt.GetString() != "siglip")
            {
                string type = mt.GetString()!;
                string hint = type switch
                {
                    "siglip_vision_model" or "siglip_text_model" => " This is one tower's config; a whole SiglipModel config (model_type \"siglip\" with text_config and vision_config) is needed.",
                    "siglip2" => " SigLIP 2 checkpoints have a different layout and are not supported.",
                    _ => "",
                };
                throw new InputFormatException($"{configJsonPath}: model_type is \"{type}\"; expected \"siglip\".{hint}", configJsonPath);
            }
            var defaulted = new List<string>();
            var reader = new SectionReader(configJsonPath, root, defaulted);
            var text = reader.Section("text_config");
            var vision = reader.Section("vision_config");

            var d = new TextConfig();
                        var textConfig = new TextConfig(
                VocabSize: text.Int("vocab_size", d.VocabSize),
                HiddenSize: text.Int("hidden_size", d.HiddenSize),
                IntermediateSize: text.Int("intermediate_size", d.IntermediateSize),
                NumHiddenLayers: text.Int("num_hidden_layers", d.NumHiddenLayers),
                NumAttentionHeads: text.Int("num_attention_heads", d.NumAttentionHeads),
                MaxPositionEmbeddings: text.Int("max_position_embeddings", d.MaxPositionEmbeddings),
                // Left out, HF takes hidden_size; kept null here so that the config reads back as written.
                ProjectionSize: text.OptionalInt("projection_size"),
                LayerNormEps: text.Double("layer_norm_eps", d.LayerNormEps),
                HiddenAct: text.Activation(d.HiddenAct),
                PadTokenId: text.Int("pad_token_id", d.PadTokenId, allowNegative: true),
                BosTokenId: text.Int("bos_token_id", d.BosTokenId, allowNegative: true),
                EosTokenId: text.Int("eos_token_id", d.EosTokenId, allowNegative: true));

            var v = new VisionConfig();
            var visionConfig = new VisionConfig(
                HiddenSize: vision.Int("hidden_size", v.HiddenSize),
                IntermediateSize: vision.Int("intermediate_size", v.IntermediateSize),
                NumHiddenLayers: vision.Int("num_hidden_layers", v.NumHiddenLayers),
                NumAttentionHeads: vision.Int("num_attention_heads", v.NumAttentionHeads),
                NumChannels: vision.Int("num_channels", v.NumChannels),
                ImageSize: vision.Int("image_size", v.ImageSize),
                PatchSize: vision.Int("patch_size", v.PatchSize),
                LayerNormEps: vision.Double("layer_norm_eps", v.LayerNormEps),
                HiddenAct: vision.Activation(v.HiddenAct));
            if (vision.Bool("vision_use_head", true) == false)
                throw new InputFormatException($"{configJsonPath}: vision_config.vision_use_head is false; this reference implements the image tower with its MAP head only (vision_use_head true).", configJsonPath);

            var config = new SiglipConfig(textConfig, visionConfig);
            try
            {
                config.Validate();
            }
            catch (ArgumentException ex)
            {
                throw new InputFormatException($"{configJsonPath}: {ex.Message}", configJsonPath, null, ex);
            }
            return new HfConfigRead(config, defaulted);
        }
    }

    /// <summary>The offset of the first byte that is not part of valid UTF-8 (a BOM is valid), or null.</summary>
    private static long? FirstInvalidUtf8(byte[] bytes)
    {
        var chars = new char[Math.Min(bytes.Length, 1 << 16)];
        int offset = 0;
        while (offset < bytes.Length)
        {
            var status = System.Text.Unicode.Utf8.ToUtf16(bytes.AsSpan(offset), chars, out int read, out _, replaceInvalidSequences: false, isFinalBlock: true);
            offset += read;
            if (status == System.Buffers.OperationStatus.Done) return null;
            if (status != System.Buffers.OperationStatus.DestinationTooSmall) return offset;
        }
        return null;
    }

    /// <summary>
    /// Writes a config.json that HF transformers loads as a <c>SiglipModel</c> config: every field
    /// explicit, keys sorted (as <c>save_pretrained</c> writes them), atomically.
    /// </summary>
    public static void Write(string path, SiglipConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        AtomicFile.WriteAllText(path, ToJson(config));
    }

    /// <summary>The config.json text for <paramref name="config"/>.</summary>
    public static string ToJson(SiglipConfig config)
    {
        var t = config.Text;
        var v = config.Vision;
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("architectures");
            w.WriteStringValue("SiglipModel");
            w.WriteEndArray();
            w.WriteNumber("initializer_factor", 1.0);
            w.WriteString("model_type", "siglip");
            w.WriteStartObject("text_config");
            w.WriteNumber("attention_dropout", 0.0);
            w.WriteNumber("bos_token_id", t.BosTokenId);
            w.WriteNumber("eos_token_id", t.EosTokenId);
            w.WriteString("hidden_act", t.HiddenAct);
            w.WriteNumber("hidden_size", t.HiddenSize);
            w.WriteNumber("intermediate_size", t.IntermediateSize);
            w.WriteNumber("layer_norm_eps", t.LayerNormEps);
            w.WriteNumber("max_position_embeddings", t.MaxPositionEmbeddings);
            w.WriteString("model_type", "siglip_text_model");
            w.WriteNumber("num_attention_heads", t.NumAttentionHeads);
            w.WriteNumber("num_hidden_layers", t.NumHiddenLayers);
            w.WriteNumber("pad_token_id", t.PadTokenId);
            // HF defaults projection_size to hidden_size; written only when the config sets it.
            if (t.ProjectionSize is { } projection) w.WriteNumber("projection_size", projection);
            w.WriteNumber("vocab_size", t.VocabSize);
            w.WriteEndObject();
            w.WriteStartObject("vision_config");
            w.WriteNumber("attention_dropout", 0.0);
            w.WriteString("hidden_act", v.HiddenAct);
            w.WriteNumber("hidden_size", v.HiddenSize);
            w.WriteNumber("image_size", v.ImageSize);
            w.WriteNumber("intermediate_size", v.IntermediateSize);
            w.WriteNumber("layer_norm_eps", v.LayerNormEps);
            w.WriteString("model_type", "siglip_vision_model");
            w.WriteNumber("num_attention_heads", v.NumAttentionHeads);
            w.WriteNumber("num_channels", v.NumChannels);
            w.WriteNumber("num_hidden_layers", v.NumHiddenLayers);
            w.WriteNumber("patch_size", v.PatchSize);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray()).Replace("\r\n", "\n") + "\n";
    }

    // Reads one section's fields, recording which ones fell back to HF's defaults.
    private sealed class SectionReader(string path, JsonElement element, List<string> defaulted, string prefix = "")
    {
        public SectionReader Section(string name)
        {
            if (!element.TryGetProperty(name, out var section) || section.ValueKind == JsonValueKind.Null)
                throw new InputFormatException($"{path}: required field \"{name}\" is missing; an HF SiglipConfig has a \"text_config\" and a \"vision_config\" object (each may be {{}} to take HF's defaults).", path);
            if (section.ValueKind != JsonValueKind.Object)
                throw new InputFormatException($"{path}: \"{name}\" is a JSON {section.ValueKind}; expected an object.", path);
            return new SectionReader(path, section, defaulted, name + ".");
        }

        // A value as the message shows it: on one line, and short (a fuzzed file may hold a 100 kB string).
        private static string Show(JsonElement value)
        {
            string raw = string.Join(' ', value.GetRawText().Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries));
            return raw.Length <= 80 ? raw : raw[..77] + "...";
        }

        private bool TryGet(string field, out JsonElement value)
        {
            if (element.TryGetProperty(field, out value) && value.ValueKind != JsonValueKind.Null) return true;
            defaulted.Add(prefix + field);
            return false;
        }

        public int Int(string field, int fallback, bool allowNegative = false)
        {
            if (!TryGet(field, out var value)) return fallback;
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int result))
                throw new InputFormatException($"{path}: {prefix}{field} is {Show(value)}; expected an integer.", path);
            if (!allowNegative && result <= 0)
                throw new InputFormatException($"{path}: {prefix}{field} is {result}; expected a positive integer.", path);
            return result;
        }

        public int? OptionalInt(string field) => element.TryGetProperty(field, out var value) && value.ValueKind != JsonValueKind.Null
            ? Int(field, 0)
            : null;

        public double Double(string field, double fallback)
        {
            if (!TryGet(field, out var value)) return fallback;
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double result) || !double.IsFinite(result) || result < 0)
                throw new InputFormatException($"{path}: {prefix}{field} is {Show(value)}; expected a non-negative number.", path);
            return result;
        }

        public bool? Bool(string field, bool fallback)
        {
            if (!element.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return fallback;
            return value.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new InputFormatException($"{path}: {prefix}{field} is {Show(value)}; expected true or false.", path),
            };
        }

        public string Activation(string fallback)
        {
            if (!TryGet("hidden_act", out var value)) return fallback;
            string? act = value.ValueKind == JsonValueKind.String ? value.GetString() : null;
            if (act is null || !SupportedActivations.Contains(act))
                throw new InputFormatException($"{path}: {prefix}hidden_act is {Show(value)}; this reference implements {string.Join(", ", SupportedActivations.Select(a => $"\"{a}\""))} (GELU, tanh form), which every released SigLIP uses.", path);
            return act;
        }
    }
}
