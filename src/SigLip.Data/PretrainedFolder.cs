using System.Text.Json;
using SigLip.Reference;
using SigLip.Reference.IO;
using SigLip.Reference.Models;

namespace SigLip.Data;

/// <summary>A checkpoint folder loaded as it is: config, parameters, tokenizer, and what the checks noticed.</summary>
/// <param name="MaxLength">Token ids per text: tokenizer_config.json's model_max_length where present and
/// usable, else text_config.max_position_embeddings (SigLIP checkpoints: 64 and 64).</param>
/// <param name="Warnings">Things that are allowed but worth saying (e.g. a vocabulary smaller than the embedding table).</param>
public sealed record PretrainedModel(
    string Folder,
    SiglipConfig Config,
    NamedTensors Parameters,
    SiglipTokenizer Tokenizer,
    int MaxLength,
    IReadOnlyList<string> Warnings);

/// <summary>
/// A pretrained SigLIP folder as HF publishes it (google/siglip-base-patch16-224 and friends):
/// <c>config.json</c>, <c>model.safetensors</c> (read by <see cref="HfCheckpoint.Load"/>) and
/// <c>spiece.model</c>; <c>tokenizer_config.json</c> and the preprocessor config are optional. Loading
/// checks the tokenizer against the config before the weights are read:
/// - every id the tokenizer can produce must have a row in the embedding table: pieces &lt;= text_config.vocab_size;
/// - the token length must fit the position table: max_length &lt;= text_config.max_position_embeddings.
/// </summary>
public static partial class PretrainedFolder
{
    public const string SpieceFileName = "spiece.model";
    public const string TokenizerConfigFileName = "tokenizer_config.json";

    public static PretrainedModel Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: no such checkpoint folder; expected config.json, model.safetensors and spiece.model.");
        string spiece = Path.Combine(folder, SpieceFileName);
        if (!File.Exists(spiece))
            throw new FileNotFoundException($"{folder}: no {SpieceFileName}; a SigLIP checkpoint folder holds config.json, model.safetensors and the tokenizer's {SpieceFileName} (download it from the same model repository).", spiece);
        string configPath = Path.Combine(folder, HfCheckpoint.ConfigFileName);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{folder}: no {HfCheckpoint.ConfigFileName}.", configPath);
        var config = HfConfig.Read(configPath);
        var tokenizer = SiglipTokenizer.Load(spiece);
        int? declared = ReadModelMaxLength(Path.Combine(folder, TokenizerConfigFileName));
        int maxLength = declared is int m && m <= config.Text.MaxPositionEmbeddings ? m : config.Text.MaxPositionEmbeddings;
        var warnings = CheckConsistency(config, tokenizer, maxLength, folder).ToList();
        if (declared is int d && d > config.Text.MaxPositionEmbeddings)
            warnings.Add($"{TokenizerConfigFileName}: model_max_length {d} exceeds text_config.max_position_embeddings {config.Text.MaxPositionEmbeddings}; using {maxLength}.");
        var loaded = HfCheckpoint.Load(folder);
        return new PretrainedModel(Path.GetFullPath(folder), loaded.Config, loaded.Parameters, tokenizer, maxLength, warnings);
    }

    /// <summary>
    /// Throws <see cref="InputFormatException"/> (its file: <paramref name="where"/>, the folder) when the
    /// tokenizer and config cannot work together; returns warnings for what is allowed but unusual.
    /// </summary>
    public static IReadOnlyList<string> CheckConsistency(SiglipConfig config, SiglipTokenizer tokenizer, int maxLength, string where)
    {
        var warnings = new List<string>();
        int vocab = config.Text.VocabSize;
        if (tokenizer.VocabSize > vocab)
            throw new InputFormatException($"{where}: {SpieceFileName} has {tokenizer.VocabSize} pieces but text_config.vocab_size is {vocab}: ids {vocab}..{tokenizer.VocabSize - 1} would have no embedding row. The tokenizer and config.json come from different models.", where);
        if (tokenizer.VocabSize < vocab)
            warnings.Add($"{SpieceFileName} has {tokenizer.VocabSize} pieces, text_config.vocab_size is {vocab}: embedding rows {tokenizer.VocabSize}..{vocab - 1} are never used (padded tables do this).");
        if (maxLength < 1)
            throw new InputFormatException($"{where}: max length {maxLength} leaves no room for </s>.", where);
        if (maxLength > config.Text.MaxPositionEmbeddings)
            throw new InputFormatException($"{where}: max length {maxLength} exceeds text_config.max_position_embeddings {config.Text.MaxPositionEmbeddings}; texts can be at most {config.Text.MaxPositionEmbeddings} tokens for this model.", where);
        if (maxLength < config.Text.MaxPositionEmbeddings)
            warnings.Add($"max length {maxLength} is below text_config.max_position_embeddings {config.Text.MaxPositionEmbeddings}; SigLIP was trained on texts padded to the full length.");
        return warnings;
    }

    private const string TokenizerConfigExpected = "a JSON object such as {\"model_max_length\": 64}";

    private static int? ReadModelMaxLength(string path)
    {
        if (!File.Exists(path)) return null;
        byte[] bytes = File.ReadAllBytes(path);
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InputFormatException($"{path}: the top level is a JSON {root.ValueKind}; expected {TokenizerConfigExpected}.", path);
            if (!root.TryGetProperty("model_max_length", out var v)) return null;
            // A string or a list here is a damaged file, not "no limit": say so rather than quietly use the config's length.
            if (v.ValueKind != JsonValueKind.Number)
                throw new InputFormatException($"{path}: model_max_length is a JSON {v.ValueKind}; expected a number (a positive integer, or 1e30 for no limit).", path);
            // transformers writes 1e30 for "no limit"; only a sensible integer counts.
            return v.TryGetInt32(out int n) && n > 0 ? n : null;
        }
        catch (JsonException ex)
        {
            throw JsonInputErrors.NotJson(path, bytes, ex, TokenizerConfigExpected);
        }
        catch (InvalidOperationException ex)
        {
            // System.Text.Json's answer to a name it cannot compare as text (an unpaired surrogate escape).
            throw JsonInputErrors.BadValue(path, ex, TokenizerConfigExpected);
        }
    }
}
