using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using SigLip.Reference.Backends;
using SigLip.Reference.Layers;
using SigLip.Reference.Models;

namespace SigLip.Reference.IO.Golden;

/// <summary>What a generation from a checkpoint will cost, worked out before it starts.</summary>
/// <param name="Bytes">Peak managed memory, estimated (float64 parameters twice, saved activations, collected intermediates, gradients).</param>
/// <param name="Flops">Multiply-adds times two of every matrix product and attention, forward (and backward when asked).</param>
/// <param name="Seconds">Flops at <see cref="CheckpointCase.ReferenceFlopsPerSecond"/>.</param>
public sealed record GenerationEstimate(long Bytes, double Flops, double Seconds)
{
    /// <summary>"about 3.2 GB, 90 GFLOP, about 3 min".</summary>
    public override string ToString() =>
        $"about {CheckpointCase.FormatBytes(Bytes)} of memory and {Flops / 1e9:0.#} GFLOP (about {CheckpointCase.FormatSeconds(Seconds)} at {CheckpointCase.ReferenceFlopsPerSecond / 1e9:0.#} GFLOP/s, the reference's single-threaded loops)";
}

/// <summary>
/// Writes a golden case from any HF SigLIP checkpoint and a batch: the inputs, every tensor of
/// <see cref="Intermediates.ForwardOrder"/> computed by the reference in float64, and the gradients
/// when asked, in the standard layout (<see cref="GoldenFormat"/>): <c>config.json</c> and the
/// checkpoint's weight files copied byte for byte, <c>expected.safetensors</c>, and
/// <c>intermediates.json</c> listing the names in forward order. <c>siglip golden verify</c> and
/// <c>siglip golden compare</c> read it.
/// </summary>
public static class CheckpointCase
{
    /// <summary>The speed the time estimate assumes: the reference's plain float64 loops on one core (measured: about 1 GFLOP/s at B/16 width on this project's 2-core machine).</summary>
    public const double ReferenceFlopsPerSecond = 1.0e9;

    /// <summary>Cost of a forward (and backward) of <paramref name="batch"/> pairs of <paramref name="textLength"/> tokens.</summary>
    public static GenerationEstimate Estimate(SiglipConfig config, int batch, int textLength, bool gradients)
    {
        ArgumentNullException.ThrowIfNull(config);
        var v = config.Vision;
        var t = config.Text;
        long parameters = ParameterLayout.For(config).Sum(s => s.Shape.Aggregate(1L, (a, d) => a * d));
        long vRows = (long)batch * v.NumPatches, tRows = (long)batch * textLength;
        static double Layer(long rows, long tokens, long batch, long h, long i) => 4 * 2.0 * rows * h * h + 2 * 2.0 * rows * h * i + 4.0 * batch * tokens * tokens * h;
        double flops = 2.0 * vRows * v.NumChannels * v.PatchSize * v.PatchSize * v.HiddenSize
            + v.NumHiddenLayers * Layer(vRows, v.NumPatches, batch, v.HiddenSize, v.IntermediateSize)
            + 2 * 2.0 * vRows * v.HiddenSize * v.HiddenSize + 4.0 * vRows * v.HiddenSize + 2.0 * batch * v.HiddenSize * (v.HiddenSize + 2 * v.IntermediateSize)
            + t.NumHiddenLayers * Layer(tRows, textLength, batch, t.HiddenSize, t.IntermediateSize)
            + 2.0 * batch * t.HiddenSize * t.ProjectionDim;
        if (gradients) flops *= 3;
        // Saved per layer: 6 [R, H] buffers, q/k/v/context (4 [R, H]), two [R, I] MLP buffers, attention probabilities.
        static long Saved(long rows, long tokens, long batch, long h, long i, long heads) => rows * (10 * h + 2 * i) + batch * heads * tokens * tokens;
        long doubles = 2 * parameters
            + v.NumHiddenLayers * Saved(vRows, v.NumPatches, batch, v.HiddenSize, v.IntermediateSize, v.NumAttentionHeads)
            + t.NumHiddenLayers * Saved(tRows, textLength, batch, t.HiddenSize, t.IntermediateSize, t.NumAttentionHeads)
            + (v.NumHiddenLayers + 4) * vRows * v.HiddenSize + (t.NumHiddenLayers + 4) * tRows * t.HiddenSize // collected copies, norms, head
            + (long)batch * v.NumChannels * v.ImageSize * v.ImageSize * 2;
        if (gradients) doubles += parameters + 6 * Math.Max(vRows * v.HiddenSize, tRows * t.HiddenSize) + 2 * Math.Max(vRows * v.IntermediateSize, tRows * t.IntermediateSize);
        long bytes = doubles * sizeof(double) + 150L * 1024 * 1024; // the runtime itself
        return new GenerationEstimate(bytes, flops, flops / ReferenceFlopsPerSecond);
    }

    /// <summary>The memory the process may use (the container's limit where there is one).</summary>
    public static long AvailableBytes() => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>
    /// Refuses (InvalidOperationException, one line with the numbers) when <paramref name="estimate"/> needs
    /// more than <paramref name="maxBytes"/> (when given) or more than the memory available.
    /// </summary>
    public static void CheckFits(GenerationEstimate estimate, long? maxBytes, long availableBytes)
    {
        ArgumentNullException.ThrowIfNull(estimate);
        if (maxBytes is long max && estimate.Bytes > max)
            throw new InvalidOperationException($"generating this case needs {estimate}, over --max-memory {FormatBytes(max)}; raise --max-memory, or use fewer images/texts or a smaller checkpoint.");
        if (estimate.Bytes > availableBytes)
            throw new InvalidOperationException($"generating this case needs {estimate}, but only {FormatBytes(availableBytes)} is available to this process; use fewer images/texts, leave out --gradients, or run on a machine with more memory.");
    }

    /// <summary>
    /// Computes the case with the reference in float64 and writes it into <paramref name="outDir"/>
    /// (created; the files written are replaced, each atomically). <paramref name="progress"/> receives a
    /// line now and then on long runs.
    /// </summary>
    public static NamedTensors Write(string checkpointDir, SiglipBatch batch, string outDir, bool gradients, string covers, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var loaded = HfCheckpoint.Load(checkpointDir);
        var estimate = Estimate(loaded.Config, batch.Size, batch.InputIds.Length, gradients);
        var ops = progress is null ? null : new ProgressOps(ReferenceOps.Instance, estimate.Flops, progress);
        var model = new SiglipModel(loaded.Config, loaded.Parameters, ops);
        model.ValidateBatch(batch);
        var tensors = Intermediates.Collect(model, batch, gradients, s => progress?.Invoke($"{s} pass ..."));
        ops?.Done();

        // Every file the case will hold is checked before the first is written: a target that is a FIFO, a device or a
        // folder fails now, not after the weights were copied.
        foreach (var f in WeightFiles(checkpointDir, outDir).Append(GoldenFormat.ExpectedFile).Append(Intermediates.ListFile))
            AtomicFile.CheckWritable(ContainedPath.ForWriting(outDir, f));
        Directory.CreateDirectory(outDir);
        var entries = new List<SafeTensorEntry>
        {
            SafeTensorEntry.TokenIds("input_ids", batch.InputIds),
            SafeTensorEntry.Float("pixel_values", batch.PixelValues),
        };
        foreach (var (name, value) in tensors) entries.Add(SafeTensorEntry.Float(name, value));
        var metadata = new Dictionary<string, string>
        {
            [GoldenFormat.KeyFormat] = GoldenFormat.FormatVersion,
            ["generator"] = "SigLip.Reference golden generate --checkpoint (reference loops, float64)",
            [GoldenFormat.KeyKind] = "model",
            [GoldenFormat.KeyCovers] = covers,
            [GoldenFormat.KeyLocked] = GoldenFormat.LockedName(LockedTowers.None),
            [GoldenFormat.KeyLoss] = LossKind.Sigmoid.Name(),
            [GoldenFormat.KeyChunks] = "1",
            [GoldenFormat.KeyNormEpsilon] = GoldenFormat.Format(0.0),
            ["dtype"] = "float64",
            ["intermediates"] = Intermediates.FormatVersion,
            ["gradients"] = gradients ? "true" : "false",
        };
        CopyWeights(checkpointDir, outDir);
        SafeTensorsWriter.Write(ContainedPath.ForWriting(outDir, GoldenFormat.ExpectedFile), entries, metadata);
        AtomicFile.WriteAllText(ContainedPath.ForWriting(outDir, Intermediates.ListFile), ListJson(loaded.Config, batch, gradients));
        return tensors;
    }

    /// <summary>The checkpoint files copied into the case (none when the case is written into the checkpoint's own folder).</summary>
    private static List<string> WeightFiles(string from, string to)
    {
        var files = new List<string>();
        if (Path.GetFullPath(from) == Path.GetFullPath(to)) return files;
        files.Add(HfCheckpoint.ConfigFileName);
        if (File.Exists(Path.Combine(from, HfCheckpoint.WeightsFileName))) files.Add(HfCheckpoint.WeightsFileName);
        else
        {
            files.Add(HfCheckpoint.ShardIndexFileName);
            files.AddRange(Directory.GetFiles(from, "*.safetensors").Select(Path.GetFileName).Where(f => f != GoldenFormat.ExpectedFile)!);
        }
        return files;
    }

    private static void CopyWeights(string from, string to)
    {
        foreach (var f in WeightFiles(from, to))
            AtomicFile.Write(ContainedPath.ForWriting(to, f), s => { using var src = File.OpenRead(Path.Combine(from, f)); src.CopyTo(s); });
    }

    private static string ListJson(SiglipConfig config, SiglipBatch batch, bool gradients)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("format", Intermediates.FormatVersion);
            w.WriteString("description", "Every tensor of expected.safetensors besides the inputs, in forward order (gradients after the outputs, in the order the backward computes them). Dump your framework's tensors under these names and shapes, then run: siglip golden compare --case THIS_FOLDER --actual DUMP.safetensors --dtype YOUR_DTYPE");
            w.WriteStartArray("tensors");
            foreach (var s in Intermediates.ForwardOrder(config, batch.Size, batch.InputIds.Length, gradients))
            {
                w.WriteStartObject();
                w.WriteString("name", s.Name);
                w.WriteStartArray("shape");
                foreach (var d in s.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteString("description", s.Description);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>"1.5 GB", "300 MB".</summary>
    public static string FormatBytes(long bytes) => bytes >= 1L << 30
        ? (bytes / (double)(1L << 30)).ToString("0.0", CultureInfo.InvariantCulture) + " GiB"
        : (bytes / (double)(1L << 20)).ToString("0", CultureInfo.InvariantCulture) + " MiB";

    /// <summary>"45 s", "3.2 min".</summary>
    public static string FormatSeconds(double s) => s < 90
        ? s.ToString("0.#", CultureInfo.InvariantCulture) + " s"
        : (s / 60).ToString("0.#", CultureInfo.InvariantCulture) + " min";

    /// <summary>Parses "8G", "512M", "2GiB", "1000000" (bytes); anything else throws a one-line message.</summary>
    public static long ParseBytes(string text, string option)
    {
        var s = text.Trim().ToUpperInvariant().Replace("IB", "", StringComparison.Ordinal).TrimEnd('B');
        long unit = 1;
        if (s.EndsWith('K')) unit = 1L << 10;
        else if (s.EndsWith('M')) unit = 1L << 20;
        else if (s.EndsWith('G')) unit = 1L << 30;
        else if (s.EndsWith('T')) unit = 1L << 40;
        if (unit > 1) s = s[..^1];
        return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 && double.IsFinite(v)
            ? (long)(v * unit)
            : throw new ArgumentException($"{option} '{text}' is not a size; expected e.g. 8G, 512M or a number of bytes.");
    }
}

/// <summary>The reference's operations, counting the work done and reporting progress every few seconds (same numbers: it only delegates).</summary>
internal sealed class ProgressOps(ILayerOps inner, double totalFlops, Action<string> report) : ILayerOps
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private double _done;
    private double _lastReport;

    public string Name => inner.Name;

    private void Add(double flops)
    {
        _done += flops;
        double now = _clock.Elapsed.TotalSeconds;
        if (now - _lastReport < 5) return;
        _lastReport = now;
        double fraction = Math.Min(1, _done / totalFlops);
        double rate = _done / Math.Max(now, 1e-9);
        report($"{fraction * 100:0}% of {totalFlops / 1e9:0.#} GFLOP after {CheckpointCase.FormatSeconds(now)} ({rate / 1e9:0.00} GFLOP/s; about {CheckpointCase.FormatSeconds(Math.Max(0, totalFlops - _done) / Math.Max(rate, 1))} left)");
    }

    public void Done() => report($"computed {_done / 1e9:0.#} GFLOP in {CheckpointCase.FormatSeconds(_clock.Elapsed.TotalSeconds)}");

    public void LinearForward(double[] output, double[] input, double[] weight, double[]? bias, int rows, int inFeatures, int outFeatures)
    {
        inner.LinearForward(output, input, weight, bias, rows, inFeatures, outFeatures);
        Add(2.0 * rows * inFeatures * outFeatures);
    }

    public void LinearBackward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, int rows, int inFeatures, int outFeatures)
    {
        inner.LinearBackward(dinput, dweight, dbias, doutput, input, weight, rows, inFeatures, outFeatures);
        Add(4.0 * rows * inFeatures * outFeatures);
    }

    public void LayerNormForward(double[] output, double[] mean, double[] rstd, double[] input, double[] weight, double[] bias, int rows, int width, double epsilon) =>
        inner.LayerNormForward(output, mean, rstd, input, weight, bias, rows, width, epsilon);

    public void LayerNormBackward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, double[] mean, double[] rstd, int rows, int width) =>
        inner.LayerNormBackward(dinput, dweight, dbias, doutput, input, weight, mean, rstd, rows, width);

    public void GeluForward(double[] output, double[] input, int count) => inner.GeluForward(output, input, count);

    public void GeluBackward(double[] dinput, double[] doutput, double[] input, int count) => inner.GeluBackward(dinput, doutput, input, count);

    public void AttentionForward(double[] output, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim)
    {
        inner.AttentionForward(output, probs, query, key, value, batch, queryTokens, keyTokens, heads, headDim);
        Add(4.0 * batch * queryTokens * keyTokens * heads * headDim);
    }

    public void AttentionBackward(double[]? dquery, double[]? dkey, double[]? dvalue, double[] doutput, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim)
    {
        inner.AttentionBackward(dquery, dkey, dvalue, doutput, probs, query, key, value, batch, queryTokens, keyTokens, heads, headDim);
        Add(8.0 * batch * queryTokens * keyTokens * heads * headDim);
    }

    public LossResult PairwiseLoss(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions options) =>
        inner.PairwiseLoss(imageEmbeds, textEmbeds, logitScale, logitBias, options);
}
