using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SigLip.Reference.Evaluation;

/// <summary>
/// What an evaluation found: zero-shot classification (where the data has classes), zero-shot
/// classification of held-out combinations (built-in data), and retrieval in both directions.
/// </summary>
/// <param name="Data">What was evaluated on, in words.</param>
/// <param name="ZeroShot">Classification of test images into their split's classes; null where the data has no classes.</param>
/// <param name="UnseenZeroShot">Classification of images of combinations never trained on, among ALL combinations; null if none.</param>
/// <param name="Retrieval">Recall@K both ways.</param>
public sealed record EvaluationReport(
    string Data,
    ZeroShotResult? ZeroShot,
    ZeroShotResult? UnseenZeroShot,
    RetrievalResult Retrieval)
{
    /// <summary>
    /// Writes this report's fields into an open JSON object (so a caller can add its own fields,
    /// e.g. steps, seconds, backend): zero_shot_accuracy, chance_accuracy, ...,
    /// image_to_text_recall_at_K, text_to_image_recall_at_K. NaN is written as null.
    /// </summary>
    public void WriteJsonFields(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteString("data", Data);
        if (ZeroShot is { } z) WriteZeroShot(writer, "", z);
        if (UnseenZeroShot is { } u) WriteZeroShot(writer, "unseen_", u);
        writer.WriteNumber("retrieval_images", Retrieval.Images);
        writer.WriteNumber("retrieval_texts", Retrieval.Texts);
        foreach (var r in Retrieval.ImageToText) Number(writer, $"image_to_text_recall_at_{r.K}", r.Recall);
        foreach (var r in Retrieval.TextToImage) Number(writer, $"text_to_image_recall_at_{r.K}", r.Recall);
    }

    /// <summary>The report as an indented JSON object; <paramref name="extra"/> fields (numbers, strings, booleans, JSON nodes) come first.</summary>
    public string ToJson(IEnumerable<KeyValuePair<string, object?>>? extra = null)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            foreach (var (key, value) in extra ?? [])
            {
                switch (value)
                {
                    case null: writer.WriteNull(key); break;
                    case string s: writer.WriteString(key, s); break;
                    case bool b: writer.WriteBoolean(key, b); break;
                    case int i: writer.WriteNumber(key, i); break;
                    case long l: writer.WriteNumber(key, l); break;
                    case double d: Number(writer, key, d); break;
                    case float f: Number(writer, key, f); break;
                    case JsonNode node: writer.WritePropertyName(key); node.WriteTo(writer); break;
                    default: throw new ArgumentException($"Report field '{key}' has a value of type {value.GetType().Name}; use a number, string, boolean or JsonNode.");
                }
            }
            WriteJsonFields(writer);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>
    /// Writes <see cref="ToJson"/> to <paramref name="path"/> with <see cref="IO.AtomicFile"/>: atomically, replacing
    /// only a regular file or nothing (a FIFO, device or directory is refused), a symbolic link's target written.
    /// </summary>
    public void WriteJson(string path, IEnumerable<KeyValuePair<string, object?>>? extra = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        IO.AtomicFile.WriteAllText(path, ToJson(extra));
    }

    private static void WriteZeroShot(Utf8JsonWriter writer, string prefix, ZeroShotResult z)
    {
        Number(writer, $"{prefix}zero_shot_accuracy", z.Accuracy);
        Number(writer, $"{prefix}chance_accuracy", z.ChanceAccuracy);
        Number(writer, $"{prefix}zero_shot_mean_per_class_accuracy", z.MeanPerClassAccuracy);
        writer.WriteNumber($"{prefix}zero_shot_examples", z.Examples);
        writer.WriteStartArray($"{prefix}zero_shot_classes");
        foreach (var c in z.ClassNames) writer.WriteStringValue(c);
        writer.WriteEndArray();
        writer.WriteStartObject($"{prefix}zero_shot_per_class_accuracy");
        foreach (var c in z.PerClass.Where(c => c.Examples > 0)) Number(writer, c.ClassName, c.Accuracy);
        writer.WriteEndObject();
    }

    private static void Number(Utf8JsonWriter writer, string key, double value)
    {
        if (double.IsFinite(value)) writer.WriteNumber(key, value);
        else writer.WriteNull(key);
    }
}
