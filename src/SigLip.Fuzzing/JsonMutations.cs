using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SigLip.Fuzzing;

/// <summary>
/// Structure-aware mutations of a JSON document: a value replaced by an extreme, a value of the wrong
/// type, a string that is not valid text (an escaped lone surrogate, bytes that are not UTF-8), a field
/// deleted or renamed. The document is parsed, one node is changed, and it is written back; values that
/// JSON writers refuse to produce are put in as raw text afterwards.
/// </summary>
public static class JsonMutations
{
    private const string Placeholder = "@@siglip-fuzz@@";

    /// <summary>Raw JSON text (bytes, since some are deliberately not UTF-8) that replaces a value.</summary>
    public static readonly IReadOnlyList<byte[]> ValueSnippets =
    [
        .. new[]
        {
            "0", "-0", "1", "-1", "2", "3", "16", "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967296",
            "9223372036854775807", "9223372036854775808", "-9223372036854775809", "99999999999999999999999999999",
            "1e308", "1e400", "-1e400", "1e-400", "1.5", "0.5", "-0.0", "NaN", "Infinity", "-Infinity",
            "\"NaN\"", "\"Infinity\"", "\"-1\"", "\"1e400\"", "\"12\"",
            "\"\\ud800\"", "\"\\udc00\"", "\"x\\ud800y\"", "\"\\udbff\\udbff\"", "\"\\u0000\"", "\"\\u0000a\"", "\"\"", "\"a\"",
            "\"../../etc/passwd\"", "\"/abs/path.png\"", "\"a\\tb\"", "\"a\\nb\"", "\"\\\\\"",
            "null", "true", "false", "[]", "{}", "[1]", "[1,2]", "[-1,-1]", "[0,9223372036854775807]", "{\"a\":1}", "[[]]",
            new string('[', 200) + new string(']', 200), "\"" + new string('x', 4000) + "\"",
        }.Select(s => Encoding.UTF8.GetBytes(s)),
        [(byte)'"', 0xFF, 0xFE, (byte)'"'],
        [(byte)'"', 0xED, 0xA0, 0x80, (byte)'"'],
        [(byte)'"', 0xC0, 0xAF, (byte)'"'],
        [(byte)'"', 0x61, 0xE2, 0x82, (byte)'"'],
    ];

    /// <summary>String snippets (JSON strings) used as property names.</summary>
    private static readonly IReadOnlyList<byte[]> KeySnippets =
        ValueSnippets.Where(s => s.Length >= 2 && s[0] == (byte)'"' && s[^1] == (byte)'"').ToList();

    /// <summary>One structural change of a JSON document; null when <paramref name="json"/> does not parse (the caller then mutates bytes).</summary>
    public static byte[]? Mutate(byte[] json, FuzzRandom rng)
    {
        try
        {
            return MutateCore(json, rng);
        }
        // JsonNode reads lazily: a duplicate key or an escaped lone surrogate in the input surfaces only
        // when the node is walked or written back. Such an input is left to the byte mutations.
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
    }

    private static byte[]? MutateCore(byte[] json, FuzzRandom rng)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = 256 }); }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or ArgumentException) { return null; }
        if (root is null) return null;

        var slots = new List<(JsonNode Parent, string? Key, int Index)>();
        Collect(root, slots);
        byte[] snippet = rng.Pick(ValueSnippets);
        string op = slots.Count == 0 ? "root" : rng.Pick<string>(["replace", "replace", "replace", "delete", "rename", "root", "wrap"]);
        switch (op)
        {
            case "root":
                return rng.OneIn(2) ? snippet : [.. Serialize(root), .. "\n"u8, .. snippet];
            case "replace":
            {
                var (parent, key, index) = rng.Pick(slots);
                Set(parent, key, index, JsonValue.Create(Placeholder));
                return Replace(Serialize(root), "\"" + Placeholder + "\"", snippet);
            }
            case "delete":
            {
                var (parent, key, index) = rng.Pick(slots);
                if (parent is JsonObject o) o.Remove(key!);
                else ((JsonArray)parent).RemoveAt(index);
                return Serialize(root);
            }
            case "rename":
            {
                var objectSlots = slots.Where(s => s.Parent is JsonObject).ToList();
                if (objectSlots.Count == 0) return Serialize(root);
                var (parent, key, _) = rng.Pick(objectSlots);
                var o = (JsonObject)parent;
                var value = o[key!];
                o.Remove(key!);
                if (rng.OneIn(2))
                {
                    // A key that is not valid text, or a near miss of the real one.
                    o[Placeholder] = value;
                    return Replace(Serialize(root), "\"" + Placeholder + "\"", rng.Pick(KeySnippets));
                }
                o[key!.ToUpperInvariant() + "_"] = value;
                return Serialize(root);
            }
            default: // wrap a value in an array: the right value, the wrong type
            {
                var (parent, key, index) = rng.Pick(slots);
                var value = parent is JsonObject o ? o[key!] : ((JsonArray)parent)[index];
                Set(parent, key, index, new JsonArray(value?.DeepClone()));
                return Serialize(root);
            }
        }
    }

    private static void Collect(JsonNode node, List<(JsonNode, string?, int)> slots)
    {
        if (node is JsonObject o)
            foreach (var (k, v) in o.ToList())
            {
                slots.Add((o, k, -1));
                if (v is not null) Collect(v, slots);
            }
        else if (node is JsonArray a)
            for (int i = 0; i < a.Count; i++)
            {
                slots.Add((a, null, i));
                if (a[i] is { } v) Collect(v, slots);
            }
    }

    private static void Set(JsonNode parent, string? key, int index, JsonNode? value)
    {
        if (parent is JsonObject o) o[key!] = value;
        else ((JsonArray)parent)[index] = value;
    }

    private static byte[] Serialize(JsonNode root) => Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));

    private static byte[] Replace(byte[] text, string find, byte[] with)
    {
        byte[] f = Encoding.UTF8.GetBytes(find);
        int at = text.AsSpan().IndexOf(f);
        return at < 0 ? text : [.. text[..at], .. with, .. text[(at + f.Length)..]];
    }
}
