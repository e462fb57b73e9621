using System.Text.Json;
using SigLip.Reference.Models;

namespace SigLip.Reference.IO;

/// <summary>A model folder's config and parameters (HF names, <see cref="ParameterLayout"/> order, float64).</summary>
/// <param name="Config">The model's sizes from config.json.</param>
/// <param name="Parameters">Every parameter, by HF name, in layout order.</param>
public sealed record LoadedCheckpoint(SiglipConfig Config, NamedTensors Parameters);

/// <summary>
/// Hugging Face model folders: <c>config.json</c> plus <c>model.safetensors</c> (or shards listed
/// in <c>model.safetensors.index.json</c>), parameters under the names of <see cref="ParameterLayout"/>,
/// which are HF's own. Loading checks that every parameter is present with its shape, and that no
/// unknown tensor is left over; HF's non-parameter buffers (<c>*.position_ids</c>, which older
/// transformers versions saved) are tolerated and ignored.
/// </summary>
public static class HfCheckpoint
{
    /// <summary>The model folder's configuration file.</summary>
    public const string ConfigFileName = "config.json";
    /// <summary>The model folder's weights (one file; larger checkpoints are sharded, see <see cref="ShardIndexFileName"/>).</summary>
    public const string WeightsFileName = "model.safetensors";
    /// <summary>The index of a sharded checkpoint: which .safetensors file holds which tensor.</summary>
    public const string ShardIndexFileName = "model.safetensors.index.json";

    /// <summary>Tensors HF may store that are not parameters (position-id buffers); ignored on load.</summary>
    public static bool IsIgnoredBuffer(string name) => name.EndsWith(".position_ids", StringComparison.Ordinal);

    /// <summary>
    /// Reads a Hugging Face SigLIP folder (config.json and model.safetensors, or its shards) into float64.
    /// A missing file, a missing / unexpected / wrongly shaped tensor or a malformed file throws, naming
    /// the file and the tensor and saying what was expected.
    /// </summary>
    public static LoadedCheckpoint Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: no such model folder; expected a folder holding {ConfigFileName} and {WeightsFileName}.");
        var configPath = Path.Combine(folder, ConfigFileName);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{folder}: no {ConfigFileName}; an HF model folder holds {ConfigFileName} and {WeightsFileName}.", configPath);
        var read = HfConfig.ReadDetailed(configPath);
        var config = read.Config;
        var layout = ParameterLayout.For(config);
        var byName = layout.ToDictionary(p => p.Name, StringComparer.Ordinal);

        var files = WeightFiles(folder);
        var found = new Dictionary<string, (string File, SafeTensorInfo Info)>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        var wrongShape = new List<string>();
        foreach (var file in files)
        {
            using var st = SafeTensorsFile.Open(file);
            foreach (var e in st.Entries)
            {
                if (IsIgnoredBuffer(e.Name)) continue;
                if (!byName.TryGetValue(e.Name, out var spec)) { unexpected.Add(e.Name); continue; }
                if (found.ContainsKey(e.Name))
                    throw new InputFormatException($"{file}: tensor '{e.Name}' also appears in {found[e.Name].File}; each parameter must be stored once.", file);
                if (!e.DType.IsFloat())
                    throw new InputFormatException($"{file}: tensor '{e.Name}' is {e.DType}; parameters must be floating point (F64, F32, F16, BF16).", file);
                if (!e.Shape.SequenceEqual(spec.Shape))
                    wrongShape.Add($"{e.Name} is {Tensor.ShapeToString(e.Shape)} but the config needs {Tensor.ShapeToString(spec.Shape)}");
                found[e.Name] = (file, e);
            }
        }
        var missing = layout.Where(p => !found.ContainsKey(p.Name)).Select(p => p.Name).ToList();
        if (missing.Count > 0 || unexpected.Count > 0 || wrongShape.Count > 0)
            throw new InputFormatException(MismatchMessage(folder, missing, unexpected, wrongShape, read.DefaultedFields), folder);

        var parameters = new NamedTensors();
        foreach (var group in layout.GroupBy(p => found[p.Name].File))
        {
            using var st = SafeTensorsFile.Open(group.Key);
            foreach (var spec in group)
            {
                var tensor = st.ReadTensor(spec.Name);
                CheckFinite(group.Key, spec.Name, tensor);
                parameters.Add(spec.Name, tensor);
            }
        }
        // Back into ParameterLayout order (shards may group differently).
        var ordered = new NamedTensors();
        foreach (var spec in layout) ordered.Add(spec.Name, parameters[spec.Name]);
        return new LoadedCheckpoint(config, ordered);
    }

    /// <summary>
    /// Writes <c>model.safetensors</c> (parameters in <paramref name="dtype"/>, metadata format "pt")
    /// and then <c>config.json</c>, each atomically, into <paramref name="folder"/> (created if needed).
    /// </summary>
    public static void Save(string folder, SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, SafeTensorDType dtype = SafeTensorDType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(parameters);
        if (!dtype.IsFloat()) throw new ArgumentException($"Parameters must be saved as a floating-point dtype, not {dtype}.");
        config.Validate();
        CheckParameters(config, parameters, "parameters to save");
        Directory.CreateDirectory(folder);
        var entries = ParameterLayout.For(config).Select(p => SafeTensorEntry.Float(p.Name, parameters[p.Name], dtype));
        SafeTensorsWriter.Write(Path.Combine(folder, WeightsFileName), entries, new Dictionary<string, string> { ["format"] = "pt" });
        HfConfig.Write(Path.Combine(folder, ConfigFileName), config);
    }

    /// <summary>
    /// Throws <see cref="ArgumentException"/> listing missing, unexpected and wrong-shaped names when
    /// <paramref name="parameters"/> do not match <paramref name="config"/>'s layout.
    /// </summary>
    public static void CheckParameters(SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, string what = "parameters")
    {
        var layout = ParameterLayout.For(config);
        var names = layout.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var missing = layout.Where(p => !parameters.ContainsKey(p.Name)).Select(p => p.Name).ToList();
        var unexpected = parameters.Keys.Where(k => !names.Contains(k)).ToList();
        var wrongShape = layout.Where(p => parameters.TryGetValue(p.Name, out var t) && !t.Shape.SequenceEqual(p.Shape))
            .Select(p => $"{p.Name} is {Tensor.ShapeToString(parameters[p.Name].Shape)} but the config needs {Tensor.ShapeToString(p.Shape)}").ToList();
        if (missing.Count > 0 || unexpected.Count > 0 || wrongShape.Count > 0)
            throw new ArgumentException(MismatchMessage(what, missing, unexpected, wrongShape, []));
    }

    private static IReadOnlyList<string> WeightFiles(string folder)
    {
        var single = Path.Combine(folder, WeightsFileName);
        if (File.Exists(single)) return [single];
        var index = Path.Combine(folder, ShardIndexFileName);
        if (File.Exists(index)) return ShardFiles(folder, index);
        string hint = File.Exists(Path.Combine(folder, "pytorch_model.bin"))
            ? " It holds pytorch_model.bin, a pickle this project does not read; convert it with transformers (save_pretrained(..., safe_serialization=True))."
            : "";
        throw new FileNotFoundException($"{folder}: no {WeightsFileName} (nor {ShardIndexFileName}).{hint}", single);
    }

    private static IReadOnlyList<string> ShardFiles(string folder, string indexPath)
    {
        byte[] bytes = InputFile.ReadAllBytes(indexPath, "a sharded checkpoint's index");
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InputFormatException($"{indexPath}: no \"weight_map\" object; expected {{\"weight_map\": {{tensor name: shard file}}}}.", indexPath);
            var files = new List<string>();
            foreach (var p in map.EnumerateObject())
            {
                var name = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw new InputFormatException($"{indexPath}: weight_map['{p.Name}'] is not a file name.", indexPath);
                if (name.Contains('/') || name.Contains('\\') || name.Contains(".."))
                    throw new InputFormatException($"{indexPath}: weight_map['{p.Name}'] = '{name}' points outside the folder; shard names must be plain file names.", indexPath);
                var full = Path.Combine(folder, name);
                if (!files.Contains(full)) files.Add(full);
            }
            foreach (var f in files)
                if (!File.Exists(f)) throw new FileNotFoundException($"{indexPath}: lists shard {Path.GetFileName(f)}, which is not in {folder}.", f);
            return files;
        }
        catch (JsonException ex)
        {
            throw JsonInputErrors.NotJson(indexPath, bytes, ex, "{\"weight_map\": {tensor name: shard file}}");
        }
        catch (InvalidOperationException ex) // an escaped lone surrogate in a name
        {
            throw JsonInputErrors.BadValue(indexPath, ex, "{\"weight_map\": {tensor name: shard file}}");
        }
    }

    private static void CheckFinite(string file, string name, Tensor tensor)
    {
        var data = tensor.Data;
        for (long i = 0; i < data.Length; i++)
            if (!double.IsFinite(data[i]))
                throw new InputFormatException($"{file}: tensor '{name}' element {Tensor.ShapeToString(Tensor.Unravel(tensor.Shape, i))} is {data[i]}; parameters must be finite.", file);
    }

    private static string MismatchMessage(string where, List<string> missing, List<string> unexpected, List<string> wrongShape, IReadOnlyList<string> defaulted)
    {
        static string List(IReadOnlyList<string> items) =>
            string.Join(", ", items.Take(20)) + (items.Count > 20 ? $", ... ({items.Count - 20} more)" : "");
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add($"{missing.Count} missing parameter(s): {List(missing)}");
        if (unexpected.Count > 0) parts.Add($"{unexpected.Count} unexpected tensor(s) (not parameters of a SiglipModel with this config): {List(unexpected)}");
        if (wrongShape.Count > 0) parts.Add($"{wrongShape.Count} wrong shape(s): {List(wrongShape)}");
        var msg = $"{where}: the tensors do not match the config. {string.Join("; ", parts)}.";
        if (defaulted.Count > 0 && (wrongShape.Count > 0 || missing.Count > 0))
            msg += $" Note: config.json does not set {List(defaulted)}; HF's defaults were used for those.";
        return msg;
    }
}
