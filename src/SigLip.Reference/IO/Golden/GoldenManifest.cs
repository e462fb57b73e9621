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
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Reads manifest.json; a malformed file throws <see cref="InvalidDataException"/> naming the field.</summary>
    public static GoldenManifest Read(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            string Str(JsonElement e, string key) => e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String
                ? v.GetString()!
                : throw new InvalidDataException($"{path}: field \"{key}\" is missing or not a string.");
            var tolerances = new Dictionary<string, GoldenTolerance>(StringComparer.OrdinalIgnoreCase);
            if (root.TryGetProperty("tolerances", out var tol))
                foreach (var p in tol.EnumerateObject())
                    tolerances[p.Name] = new GoldenTolerance(
                        p.Value.GetProperty("atol").GetDouble(),
                        p.Value.GetProperty("rtol").GetDouble(),
                        p.Value.TryGetProperty("atol_relative_to_max_abs", out var rel) && rel.GetBoolean(),
                        p.Value.TryGetProperty("why", out var why) ? why.GetString() ?? "" : "");
            var cases = new List<GoldenManifestCase>();
            if (!root.TryGetProperty("cases", out var list) || list.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{path}: field \"cases\" is missing or not an array.");
            foreach (var c in list.EnumerateArray())
            {
                var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
                foreach (var f in c.GetProperty("files").EnumerateObject()) files[f.Name] = f.Value.GetString()!;
                cases.Add(new GoldenManifestCase(Str(c, "name"), Str(c, "kind"), c.TryGetProperty("covers", out var cov) ? cov.GetString() ?? "" : "", files));
            }
            return new GoldenManifest(Str(root, "format"), Str(root, "generator"), root.TryGetProperty("description", out var d) ? d.GetString() ?? "" : "", tolerances, cases);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: not a valid golden manifest ({ex.Message}).", ex);
        }
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
