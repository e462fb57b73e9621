using System.Globalization;
using System.Text.Json;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;

namespace SigLip.Reference.IO.Golden;

/// <summary>What a golden case exercises.</summary>
public enum GoldenCaseKind
{
    /// <summary>A model (or one tower) forward and backward on a batch.</summary>
    Model,
    /// <summary>The pairwise loss alone, on given embeddings.</summary>
    Loss,
}

/// <summary>One expected tensor: full, or a sample of a large gradient at the given flat indices.</summary>
/// <param name="Name">The name in the file (e.g. "grad.logit_scale", "grad_sample.text_model.head.weight").</param>
/// <param name="Target">What it is compared with: an output name, "grad.&lt;parameter&gt;" for any gradient.</param>
/// <param name="SampleIndices">For a sampled gradient, the flat indices of the target the values belong to.</param>
/// <param name="Values">The expected values (float64).</param>
public sealed record GoldenExpected(string Name, string Target, Tensor Values, long[]? SampleIndices = null);

/// <summary>
/// A golden case read from its folder (layout: <see cref="GoldenFormat"/>). Everything is read and
/// checked when it is loaded; a malformed case throws (SafeTensorsFormatException,
/// InputFormatException, FileNotFoundException) naming the file and the problem.
/// </summary>
public sealed class GoldenCase
{
    private GoldenCase(string name, string folder, GoldenCaseKind kind, IReadOnlyDictionary<string, string> metadata)
    {
        Name = name;
        Folder = folder;
        Kind = kind;
        Metadata = metadata;
    }

    /// <summary>The case's name (its folder's name unless given).</summary>
    public string Name { get; }
    /// <summary>The folder it was read from.</summary>
    public string Folder { get; }
    /// <summary>Model or loss case.</summary>
    public GoldenCaseKind Kind { get; }
    /// <summary>The "__metadata__" strings of expected.safetensors (keys in <see cref="GoldenFormat"/>).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>What the case is there to catch, in words (null when the file does not say).</summary>
    public string? Covers => Metadata.TryGetValue(GoldenFormat.KeyCovers, out var c) ? c : null;
    /// <summary>The towers locked in this case (their gradients are neither computed nor compared).</summary>
    public LockedTowers Locked { get; private set; }
    /// <summary>The loss settings the expected values were computed with.</summary>
    public LossOptions Loss { get; private set; } = LossOptions.Default;

    // Model cases.
    /// <summary>Model cases: the model's sizes (null for loss cases).</summary>
    public SiglipConfig? Config { get; private set; }
    /// <summary>Model cases: every parameter, by HF name.</summary>
    public NamedTensors? Parameters { get; private set; }
    /// <summary>Model cases: the input batch.</summary>
    public SiglipBatch? Batch { get; private set; }

    // Loss cases.
    /// <summary>Loss cases: the [n, d] unnormalised image embeddings (null for model cases).</summary>
    public Tensor? ImageEmbeds { get; private set; }
    /// <summary>Loss cases: the [n, d] unnormalised text embeddings.</summary>
    public Tensor? TextEmbeds { get; private set; }
    /// <summary>Loss cases: t'.</summary>
    public double LogitScale { get; private set; }
    /// <summary>Loss cases: b.</summary>
    public double LogitBias { get; private set; }

    /// <summary>Every expected output and gradient (full or sampled).</summary>
    public IReadOnlyList<GoldenExpected> Expected { get; private set; } = [];

    /// <summary>True when <paramref name="folder"/> holds a case (an expected.safetensors).</summary>
    public static bool IsCase(string folder) => File.Exists(Path.Combine(folder, GoldenFormat.ExpectedFile));

    /// <summary>Reads and checks the case in <paramref name="folder"/>; a malformed case throws, naming the file and the problem.</summary>
    public static GoldenCase Load(string folder, string? name = null)
    {
        var expectedPath = Path.Combine(folder, GoldenFormat.ExpectedFile);
        using var file = SafeTensorsFile.Open(expectedPath);
        var meta = file.Metadata;
        string kindText = meta.TryGetValue(GoldenFormat.KeyKind, out var k) ? k
            : File.Exists(Path.Combine(folder, HfCheckpoint.ConfigFileName)) ? "model" : "loss";
        var kind = kindText switch
        {
            "model" => GoldenCaseKind.Model,
            "loss" => GoldenCaseKind.Loss,
            _ => throw new InputFormatException($"{expectedPath}: metadata kind '{JsonInputErrors.OneLine(kindText)}' is not 'model' or 'loss'.", expectedPath),
        };
        var c = new GoldenCase(name ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(folder)), folder, kind, meta);
        c.Locked = meta.TryGetValue(GoldenFormat.KeyLocked, out var locked) ? GoldenFormat.ParseLocked(locked, expectedPath) : LockedTowers.None;
        var lossKind = !meta.TryGetValue(GoldenFormat.KeyLoss, out var lk) ? LossKind.Sigmoid
            : lk == LossKind.Sigmoid.Name() ? LossKind.Sigmoid
            : lk == LossKind.Softmax.Name() ? LossKind.Softmax
            : throw new InputFormatException($"{expectedPath}: metadata loss '{JsonInputErrors.OneLine(lk)}' is not '{LossKind.Sigmoid.Name()}' or '{LossKind.Softmax.Name()}'.", expectedPath);
        c.Loss = new LossOptions(
            Kind: lossKind,
            Chunks: meta.TryGetValue(GoldenFormat.KeyChunks, out var chunks) ? ParseInt(expectedPath, GoldenFormat.KeyChunks, chunks) : 1,
            NormEpsilon: meta.TryGetValue(GoldenFormat.KeyNormEpsilon, out var eps) ? ParseDouble(expectedPath, GoldenFormat.KeyNormEpsilon, eps) : 0.0);

        IReadOnlyList<string> inputs = kind == GoldenCaseKind.Model ? GoldenFormat.ModelInputs : GoldenFormat.LossInputs;
        foreach (var input in inputs)
            if (!file.Contains(input))
                throw new InputFormatException($"{expectedPath}: input '{input}' is missing; a {kindText} case holds {string.Join(", ", inputs)}.", expectedPath);

        if (kind == GoldenCaseKind.Model)
        {
            c.Config = HfConfig.Read(Path.Combine(folder, HfCheckpoint.ConfigFileName));
            c.Parameters = File.Exists(Path.Combine(folder, HfCheckpoint.WeightsFileName)) || !File.Exists(Path.Combine(folder, GoldenFormat.WeightsSpecFile))
                ? HfCheckpoint.Load(folder).Parameters
                : SeededWeights.Read(Path.Combine(folder, GoldenFormat.WeightsSpecFile), c.Config);
            c.Batch = new SiglipBatch(file.ReadTensor("pixel_values"), file.ReadTokenIds("input_ids"));
        }
        else
        {
            c.ImageEmbeds = file.ReadTensor("image_embeds");
            c.TextEmbeds = file.ReadTensor("text_embeds");
            c.LogitScale = Scalar(file, expectedPath, "logit_scale");
            c.LogitBias = Scalar(file, expectedPath, "logit_bias");
        }

        var expected = new List<GoldenExpected>();
        foreach (var e in file.Entries)
        {
            if (inputs.Contains(e.Name) || e.Name.StartsWith(GoldenFormat.GradSampleIndexPrefix, StringComparison.Ordinal)) continue;
            if (!e.DType.IsFloat())
                throw new InputFormatException($"{expectedPath}: expected tensor '{e.Name}' is {e.DType}; expected values are floating point.", expectedPath);
            if (e.Name.StartsWith(GoldenFormat.GradSamplePrefix, StringComparison.Ordinal))
            {
                string parameter = e.Name[GoldenFormat.GradSamplePrefix.Length..];
                string indexName = GoldenFormat.GradSampleIndexPrefix + parameter;
                if (!file.Contains(indexName))
                    throw new InputFormatException($"{expectedPath}: '{e.Name}' has no '{indexName}' saying which elements it samples.", expectedPath);
                var indices = file.ReadInt64(indexName);
                var values = file.ReadTensor(e.Name);
                if (indices.Length != values.Size)
                    throw new InputFormatException($"{expectedPath}: '{e.Name}' has {values.Size} values but '{indexName}' has {indices.Length} indices.", expectedPath);
                expected.Add(new GoldenExpected(e.Name, "grad." + parameter, values, indices));
            }
            else
            {
                expected.Add(new GoldenExpected(e.Name, e.Name, file.ReadTensor(e.Name)));
            }
        }
        if (expected.Count == 0)
            throw new InputFormatException($"{expectedPath}: holds inputs but no expected outputs or gradients.", expectedPath);
        c.Expected = expected;
        return c;
    }

    private static double Scalar(SafeTensorsFile file, string path, string name)
    {
        var t = file.ReadTensor(name);
        if (t.Size != 1) throw new InputFormatException($"{path}: '{name}' has shape {Tensor.ShapeToString(t.Shape)}; expected one value [1].", path);
        return t.Data[0];
    }

    private static int ParseInt(string path, string key, string text) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0
            ? v
            : throw new InputFormatException($"{path}: metadata {key} '{JsonInputErrors.OneLine(text)}' is not a positive integer.", path);

    private static double ParseDouble(string path, string key, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) && v >= 0
            ? v
            : throw new InputFormatException($"{path}: metadata {key} '{JsonInputErrors.OneLine(text)}' is not a non-negative number.", path);
}

/// <summary>
/// weights.json: parameters too large to keep in the repository, given as the seed of
/// <see cref="GoldenRandom.Parameters"/> plus t' and b: {"format", "seed", "logit_scale", "logit_bias"}.
/// </summary>
public static class SeededWeights
{
    /// <summary>The "format" value a weights.json must have.</summary>
    public const string Format = "siglip-golden-seeded-weights/1";

    /// <summary>The parameters a weights.json describes, for a model of <paramref name="config"/>.</summary>
    public static NamedTensors Read(string path, SiglipConfig config)
    {
        byte[] bytes = File.ReadAllBytes(path);
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InputFormatException($"{path}: the top level is a JSON {root.ValueKind}; expected {Expected}.", path);
            string format = root.TryGetProperty("format", out var f) && f.ValueKind == JsonValueKind.String ? Field(path, "format", f.GetString) ?? "" : "";
            if (format != Format) throw new InputFormatException($"{path}: format '{JsonInputErrors.OneLine(format)}' is not '{Format}'; expected {Expected}.", path);
            ulong seed = Field(path, "seed", () => Property(path, root, "seed").GetUInt64());
            double scale = Field(path, "logit_scale", () => Property(path, root, "logit_scale").GetDouble());
            double bias = Field(path, "logit_bias", () => Property(path, root, "logit_bias").GetDouble());
            return GoldenRandom.Parameters(config, seed, scale, bias);
        }
        catch (JsonException ex)
        {
            throw JsonInputErrors.NotJson(path, bytes, ex, Expected);
        }
        catch (InvalidOperationException ex)
        {
            // TryGetProperty compares names as text: an unpaired surrogate escape in one ends here.
            throw JsonInputErrors.BadValue(path, ex, Expected);
        }
    }

    private static string Expected => $"{{\"format\": \"{Format}\", \"seed\": N, \"logit_scale\": x, \"logit_bias\": y}}";

    private static JsonElement Property(string path, JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) ? v : throw new InputFormatException($"{path}: no \"{name}\"; expected {Expected}.", path);

    /// <summary>Reads one field; System.Text.Json's wrong-kind and out-of-range failures become one line naming the field.</summary>
    private static T Field<T>(string path, string name, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException)
        {
            throw new InputFormatException($"{path}: \"{name}\" cannot be read ({JsonInputErrors.OneLine(ex.Message)}); expected {Expected} (seed a non-negative integer, the others numbers).", path, null, ex);
        }
    }

    /// <summary>The weights.json text for a seed, t', b and a description.</summary>
    public static string ToJson(ulong seed, double logitScale, double logitBias, string description) =>
        "{\n" +
        $"  \"format\": \"{Format}\",\n" +
        $"  \"description\": {JsonSerializer.Serialize(description)},\n" +
        $"  \"seed\": {seed.ToString(CultureInfo.InvariantCulture)},\n" +
        $"  \"logit_scale\": {GoldenFormat.Format(logitScale)},\n" +
        $"  \"logit_bias\": {GoldenFormat.Format(logitBias)}\n" +
        "}\n";
}
