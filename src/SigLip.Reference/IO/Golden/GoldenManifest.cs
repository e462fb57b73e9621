using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace SigLip.Reference.IO.Golden;

/// <summary>One case in golden/manifest.json: its folder name, kind, what it covers and the sha256 of each file.</summary>
/// <param name="Name">The case's folder name.</param>
/// <param name="Kind">"model" or "loss".</param>
/// <param name="Covers">What it is there to catch.</param>
/// <param name="Files">File name to lowercase hex sha256.</param>
public sealed record GoldenManifestCase(string Name, string Kind, string Covers, IReadOnlyDictionary<string, string> Files);

/// <summary>
/// golden/manifest.json: the cases, what each covers, the generator's version, the tolerances per
/// dtype (with the reasoning behind them) and a sha256 of every file, so that a damaged file is
/// reported as damaged rather than as a numerical failure.
/// </summary>
/// <param name="Format">The layout version (<see cref="GoldenFormat.FormatVersion"/>).</param>
/// <param name="Generator">The generator version that wrote the cases.</param>
/// <param name="Description">What the cases are, in words.</param>
/// <param name="Tolerances">The tolerances by dtype, with their reasoning.</param>
/// <param name="Cases">Every case with its files' sha256.</param>
public sealed record GoldenManifest(
    string Format,
    string Generator,
    string Description,
    IReadOnlyDictionary<string, GoldenTolerance> Tolerances,
    IReadOnlyList<GoldenManifestCase> Cases)
{
    /// <summary>The lowercase hex sha256 of a file's bytes.</summary>
    public static string Sha256(string path)
    {
        InputFile.CheckReadable(path, "a file to hash");
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Reads manifest.json; a malformed file throws <see cref="InputFormatException"/> naming the file and the field.</summary>
    public static GoldenManifest Read(string path)
    {
        byte[] bytes = InputFile.ReadAllBytes(path, "a golden manifest.json");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes);
        }
        catch (JsonException ex)
        {
            throw JsonInputErrors.NotJson(path, bytes, ex, "a golden manifest object {\"format\", \"generator\", \"tolerances\", \"cases\"}");
        }
        using (doc)
        {
            try
            {
                return Parse(path, doc.RootElement);
            }
            catch (InvalidOperationException ex) // System.Text.Json cannot convert a string (an escaped lone surrogate such as "\ud800")
            {
                throw JsonInputErrors.BadValue(path, ex, "a golden manifest");
            }
        }
    }

    // Every field's JSON type is checked before it is read, so that a wrong one is named in the message.
    private static GoldenManifest Parse(string path, JsonElement root)
    {
        InputFormatException Bad(string what) => new($"{path}: {what}", path);
        string Str(JsonElement e, string key, string where) => e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()!
            : throw Bad($"field \"{where}{key}\" is missing or not a string.");
        string OptionalStr(JsonElement e, string key, string where) =>
            !e.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? ""
            : v.ValueKind == JsonValueKind.String ? v.GetString()!
            : throw Bad($"field \"{where}{key}\" is a JSON {v.ValueKind}; expected a string.");
        double Number(JsonElement e, string key, string where) => e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && double.IsFinite(d)
            ? d
            : throw Bad($"field \"{where}{key}\" is missing or not a finite number.");
        bool OptionalBool(JsonElement e, string key, string where) =>
            !e.TryGetProperty(key, out var v) ? false
            : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean()
            : throw Bad($"field \"{where}{key}\" is a JSON {v.ValueKind}; expected true or false.");
        JsonElement Object(JsonElement e, string where) => e.ValueKind == JsonValueKind.Object
            ? e
            : throw Bad($"\"{where}\" is a JSON {e.ValueKind}; expected an object.");

        Object(root, "(top level)");
        var tolerances = new Dictionary<string, GoldenTolerance>(StringComparer.OrdinalIgnoreCase);
        if (root.TryGetProperty("tolerances", out var tol))
            foreach (var p in Object(tol, "tolerances").EnumerateObject())
            {
                string where = $"tolerances.{p.Name}.";
                var t = Object(p.Value, $"tolerances.{p.Name}");
                tolerances[p.Name] = new GoldenTolerance(Number(t, "atol", where), Number(t, "rtol", where), OptionalBool(t, "atol_relative_to_max_abs", where), OptionalStr(t, "why", where));
            }
        var cases = new List<GoldenManifestCase>();
        if (!root.TryGetProperty("cases", out var list) || list.ValueKind != JsonValueKind.Array)
            throw Bad("field \"cases\" is missing or not an array.");
        int index = 0;
        foreach (var c in list.EnumerateArray())
        {
            string where = $"cases[{index++}].";
            Object(c, where.TrimEnd('.'));
            if (!c.TryGetProperty("files", out var filesElement)) throw Bad($"field \"{where}files\" is missing; expected an object of file name -> sha256.");
            var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var f in Object(filesElement, where + "files").EnumerateObject())
                files[f.Name] = f.Value.ValueKind == JsonValueKind.String ? f.Value.GetString()! : throw Bad($"field \"{where}files.{f.Name}\" is a JSON {f.Value.ValueKind}; expected a sha256 string.");
            cases.Add(new GoldenManifestCase(Str(c, "name", where), Str(c, "kind", where), OptionalStr(c, "covers", where), files));
        }
        return new GoldenManifest(Str(root, "format", ""), Str(root, "generator", ""), OptionalStr(root, "description", ""), tolerances, cases);
    }

    /// <summary>Deterministic JSON (fixed key order, no timestamps), so regenerating gives the same bytes.</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("format", Format);
            w.WriteString("generator", Generator);
            w.WriteString("description", Description);
            w.WriteStartObject("tolerances");
            foreach (var (dtype, t) in Tolerances)
            {
                w.WriteStartObject(dtype);
                w.WriteNumber("atol", t.Atol);
                w.WriteNumber("rtol", t.Rtol);
                w.WriteBoolean("atol_relative_to_max_abs", t.AtolRelativeToMaxAbs);
                w.WriteString("why", t.Why);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteStartArray("cases");
            foreach (var c in Cases)
            {
                w.WriteStartObject();
                w.WriteString("name", c.Name);
                w.WriteString("kind", c.Kind);
                w.WriteString("covers", c.Covers);
                w.WriteStartObject("files");
                foreach (var (file, sha) in c.Files.OrderBy(f => f.Key, StringComparer.Ordinal)) w.WriteString(file, sha);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray()).Replace("\r\n", "\n") + "\n";
    }
}
