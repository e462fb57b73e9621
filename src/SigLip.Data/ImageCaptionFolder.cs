using System.Text.Json;
using SigLip.Reference;
using SigLip.Reference.Data;
using SigLip.Reference.IO;
using SigLip.Reference.Numerics;

namespace SigLip.Data;

/// <summary>Why one line or image of a folder was skipped.</summary>
/// <param name="Line">1-based line of the captions file.</param>
public sealed record SkipReason(int Line, string Reason)
{
    public override string ToString() => $"line {Line}: {Reason}";
}

/// <summary>
/// A folder of images with a captions file, read as a stream: one line at a time, each image decoded
/// only when its example is produced. The captions file is either
/// - JSON lines (<c>captions.jsonl</c>): <c>{"image": "relative/path.jpg", "caption": "...", "class": "optional"}</c>, or
/// - tab-separated (<c>captions.tsv</c>): <c>relative/path.jpg&lt;TAB&gt;caption[&lt;TAB&gt;class]</c>; a first line
///   <c>image&lt;TAB&gt;caption</c> is taken as a header.
/// Blank lines are ignored. A line that cannot be used (invalid JSON, a missing or non-string field, an
/// image path that is absolute or leaves the folder) and an image that is missing or cannot be decoded
/// are skipped: <see cref="Skipped"/> counts them and <see cref="SkipReasons"/> keeps the first few.
/// A bad image never stops a run. Paths are checked lexically (a symbolic link inside the folder is
/// followed).
///
/// Classes (for zero-shot evaluation): when the folder holds <c>classes.txt</c> (one class name a line),
/// <see cref="ClassNames"/> lists them and each example's optional class must be one of them; without it
/// ClassNames is empty. An example's class comes from the "class" field (JSONL) or third column (TSV).
///
/// Order: <see cref="Examples"/> with a shuffle buffer (default 1024 lines) shuffled by the seed, so
/// memory stays bounded whatever the folder's size; a buffer of 1 keeps the file's order.
/// </summary>
public sealed class ImageCaptionFolder : IImageTextSource
{
    public static readonly IReadOnlyList<string> CaptionFileNames = ["captions.jsonl", "captions.tsv"];
    private readonly ImageLoader _loader;
    private readonly List<SkipReason> _reasons = [];
    private readonly HashSet<string>? _classSet;
    private readonly object _lock = new();
    private long _skipped;

    /// <param name="folder">The folder holding the images (paths in the captions file are relative to it).</param>
    /// <param name="imageSize">The model's image size S: every example is [3, S, S].</param>
    /// <param name="captionsFile">The captions file; null: captions.jsonl or captions.tsv in the folder.</param>
    /// <param name="shuffleBuffer">Lines held for shuffling (1: the file's order).</param>
    /// <param name="maxSkipReasons">How many skip reasons are kept.</param>
    public ImageCaptionFolder(string folder, int imageSize, string? captionsFile = null, ImageResampler resampler = ImageResampler.PilBicubic,
        int shuffleBuffer = 1024, int maxSkipReasons = 5)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Data folder '{folder}' does not exist.");
        if (shuffleBuffer < 1) throw new ArgumentOutOfRangeException(nameof(shuffleBuffer), $"The shuffle buffer must hold at least 1 line, got {shuffleBuffer}.");
        Folder = Path.GetFullPath(folder);
        CaptionsFile = captionsFile is not null ? Path.GetFullPath(captionsFile, Folder) : FindCaptionsFile(Folder);
        if (!File.Exists(CaptionsFile)) throw new FileNotFoundException($"Captions file '{CaptionsFile}' does not exist.", CaptionsFile);
        IsTsv = CaptionsFile.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase) || CaptionsFile.EndsWith(".txt", StringComparison.OrdinalIgnoreCase);
        _loader = new ImageLoader(imageSize, resampler);
        ShuffleBuffer = shuffleBuffer;
        MaxSkipReasons = maxSkipReasons;
        string classesPath = Path.Combine(Folder, "classes.txt");
        if (File.Exists(classesPath))
        {
            var names = File.ReadLines(classesPath).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
            if (names.Count == 0) throw new InputFormatException($"{classesPath} holds no class names (expected one a line).", classesPath);
            var dup = names.GroupBy(n => n).FirstOrDefault(g => g.Count() > 1);
            if (dup is not null) throw new InputFormatException($"{classesPath}: class '{dup.Key}' is listed twice; list each class once.", classesPath);
            ClassNames = names;
            _classSet = [.. names];
        }
        else ClassNames = [];
    }

    public string Folder { get; }
    public string CaptionsFile { get; }
    public bool IsTsv { get; }
    public int ShuffleBuffer { get; }
    public int MaxSkipReasons { get; }
    public ImageResampler Resampler => _loader.Resampler;

    public string Description => $"image-caption folder {Folder} ({Path.GetFileName(CaptionsFile)})";
    public int ImageSize => _loader.ImageSize;
    public int Channels => 3;
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Lines and images skipped so far, over every pass.</summary>
    public long Skipped => Interlocked.Read(ref _skipped);

    /// <summary>The first <see cref="MaxSkipReasons"/> distinct reasons for skipping.</summary>
    public IReadOnlyList<SkipReason> SkipReasons { get { lock (_lock) return _reasons.ToList(); } }

    /// <summary>A one-line summary of what was skipped, for a CLI to print ("" when nothing was).</summary>
    public string SkipSummary()
    {
        long n = Skipped;
        if (n == 0) return "";
        var reasons = SkipReasons;
        return $"{n} line(s) or image(s) skipped in {Description}; first {reasons.Count}: " + string.Join("; ", reasons);
    }

    /// <summary>One entry of the captions file, before its image is decoded.</summary>
    public sealed record Entry(int Line, string ImagePath, string Caption, string? ClassName);

    public IEnumerable<ImageTextExample> Examples(int seed)
    {
        foreach (var entry in Entries(seed))
        {
            Tensor pixels;
            try
            {
                pixels = _loader.Load(entry.ImagePath);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException and not OperationCanceledException) // a bad image never stops a run
            {
                Skip(entry.Line, ex.Message);
                continue;
            }
            yield return new ImageTextExample(pixels, entry.Caption, entry.ClassName);
        }
    }

    /// <summary>The usable entries in the order of <paramref name="seed"/>, images not yet decoded (bad lines are skipped and counted).</summary>
    public IEnumerable<Entry> Entries(int seed)
    {
        var rng = new DeterministicRandom(seed);
        var buffer = new List<Entry>(Math.Min(ShuffleBuffer, 4096));
        foreach (var entry in ParseLines())
        {
            if (ShuffleBuffer == 1) { yield return entry; continue; }
            if (buffer.Count < ShuffleBuffer) { buffer.Add(entry); continue; }
            int i = rng.NextInt(buffer.Count);
            yield return buffer[i];
            buffer[i] = entry;
        }
        // Drain in a shuffled order.
        for (int n = buffer.Count; n > 0; n--)
        {
            int i = rng.NextInt(n);
            yield return buffer[i];
            buffer[i] = buffer[n - 1];
        }
    }

    private IEnumerable<Entry> ParseLines()
    {
        using var reader = new StreamReader(CaptionsFile, detectEncodingFromByteOrderMarks: true);
        int lineNumber = 0;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            if (IsTsv && lineNumber == 1 && line.Trim().StartsWith("image\tcaption", StringComparison.OrdinalIgnoreCase)) continue;
            var (entry, error) = IsTsv ? ParseTsv(line, lineNumber) : ParseJson(line, lineNumber);
            if (entry is null) { Skip(lineNumber, error!); continue; }
            yield return entry;
        }
    }

    private (Entry?, string?) ParseJson(string line, int lineNumber)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException ex) { return (null, $"not valid JSON ({ex.Message}); expected {{\"image\": \"relative/path.jpg\", \"caption\": \"...\"}}"); }
        using (doc)
        {
            ((string Image, string Caption, string? Class)? Fields, string? Problem) read;
            try
            {
                read = ReadJsonFields(doc.RootElement);
            }
            catch (InvalidOperationException ex) // System.Text.Json cannot convert a string: an escaped lone surrogate such as "\ud800"
            {
                return (null, $"a string that is not valid Unicode text ({ex.Message}); strings must not hold unpaired surrogate escapes such as \\ud800");
            }
            return read.Fields is { } f ? MakeEntry(lineNumber, f.Image, f.Caption, f.Class) : (null, read.Problem);
        }
    }

    private static ((string Image, string Caption, string? Class)?, string?) ReadJsonFields(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) return (null, $"a JSON {root.ValueKind} where an object {{\"image\": ..., \"caption\": ...}} was expected");
        string? Field(string name, out string? problem)
        {
            problem = null;
            if (!root.TryGetProperty(name, out var v)) { problem = $"missing field \"{name}\""; return null; }
            if (v.ValueKind != JsonValueKind.String) { problem = $"field \"{name}\" is a {v.ValueKind}, expected a string"; return null; }
            return v.GetString();
        }
        var image = Field("image", out var p1);
        if (image is null) return (null, p1);
        var caption = Field("caption", out var p2);
        if (caption is null) return (null, p2);
        string? cls = null;
        if (root.TryGetProperty("class", out var c))
        {
            if (c.ValueKind != JsonValueKind.String) return (null, $"field \"class\" is a {c.ValueKind}, expected a string");
            cls = c.GetString();
        }
        return ((image, caption, cls), null);
    }

    private (Entry?, string?) ParseTsv(string line, int lineNumber)
    {
        var parts = line.Split('\t');
        if (parts.Length < 2) return (null, "no TAB; expected relative/path.jpg<TAB>caption");
        if (parts.Length > 3) return (null, $"{parts.Length} TAB-separated columns; expected image, caption and optionally class");
        return MakeEntry(lineNumber, parts[0].Trim(), parts[1], parts.Length == 3 ? parts[2].Trim() : null);
    }

    private (Entry?, string?) MakeEntry(int lineNumber, string image, string caption, string? cls)
    {
        if (image.Length == 0) return (null, "empty image path");
        if (image.Contains('\0')) return (null, "the image path holds a NUL character");
        if (Path.IsPathRooted(image)) return (null, $"image path '{image}' is absolute; paths must be relative to {Folder}");
        // Resolved after symbolic links: a link inside the folder that points outside it is refused, and
        // only a regular file is read (a missing one is left to the image loader, which skips and counts it).
        if (!ContainedPath.TryResolve(Folder, image, FileKind.RegularFile, allowMissing: true, out var resolved, out var refused))
            return (null, $"image path '{image}' refused: {refused}");
        string full = resolved!;
        if (cls is { Length: 0 }) cls = null;
        if (cls is not null && _classSet is not null && !_classSet.Contains(cls))
            return (null, $"class '{cls}' is not in classes.txt");
        return (new Entry(lineNumber, full, caption, cls), null);
    }

    private void Skip(int line, string reason)
    {
        Interlocked.Increment(ref _skipped);
        var r = new SkipReason(line, reason);
        // Distinct reasons: a second pass over the folder meets the same bad lines again.
        lock (_lock) if (_reasons.Count < MaxSkipReasons && !_reasons.Contains(r)) _reasons.Add(r);
    }

    private static string FindCaptionsFile(string folder)
    {
        foreach (var name in CaptionFileNames)
        {
            string p = Path.Combine(folder, name);
            if (File.Exists(p) || new FileInfo(p).LinkTarget is not null) return ContainedPath.Resolve(folder, name, folder);
        }
        throw new FileNotFoundException($"No captions file in {folder}: expected {string.Join(" or ", CaptionFileNames)} (JSON lines {{\"image\": \"relative/path.jpg\", \"caption\": \"...\"}} or image<TAB>caption).");
    }
}

/// <summary>Groups examples into batches of images [B, 3, S, S] and token ids [B, L].</summary>
public static class ImageTextBatches
{
    /// <summary>Consecutive batches of <paramref name="batchSize"/>; a last, smaller batch is kept unless <paramref name="dropLast"/>.</summary>
    public static IEnumerable<SiglipBatch> Create(IEnumerable<ImageTextExample> examples, ITextTokenizer tokenizer, int batchSize, int maxLength, bool dropLast = false)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), $"Batch size must be at least 1, got {batchSize}.");
        var pending = new List<ImageTextExample>(batchSize);
        foreach (var e in examples)
        {
            pending.Add(e);
            if (pending.Count == batchSize) { yield return Make(pending, tokenizer, maxLength); pending.Clear(); }
        }
        if (pending.Count > 0 && !dropLast) yield return Make(pending, tokenizer, maxLength);
    }

    public static SiglipBatch Make(IReadOnlyList<ImageTextExample> examples, ITextTokenizer tokenizer, int maxLength)
    {
        if (examples.Count == 0) throw new ArgumentException("A batch needs at least one example.");
        var shape = examples[0].Pixels.Shape;
        int per = examples[0].Pixels.Size;
        var data = new double[examples.Count * per];
        for (int b = 0; b < examples.Count; b++)
        {
            if (!examples[b].Pixels.Shape.SequenceEqual(shape))
                throw new ArgumentException($"Example {b} has pixels {Tensor.ShapeToString(examples[b].Pixels.Shape)} but example 0 has {Tensor.ShapeToString(shape)}.");
            Array.Copy(examples[b].Pixels.Data, 0, data, b * per, per);
        }
        var pixels = new Tensor([examples.Count, .. shape], data);
        var ids = tokenizer.Encode(examples.Select(e => e.Caption).ToList(), maxLength);
        return new SiglipBatch(pixels, ids);
    }
}
