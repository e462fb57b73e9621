using System.Text.Json;
using SigLip.Reference;
using SigLip.Reference.Data;
using SigLip.Reference.IO;
using SigLip.Reference.Numerics;

namespace SigLip.Data;

/// <summary>Why a line or an image of a folder was skipped, by kind; <see cref="SkipCategories.Key"/> gives each a stable name for reports.</summary>
public enum SkipCategory
{
    /// <summary>"invalid-json": the line is not JSON.</summary>
    InvalidJson,
    /// <summary>"not-an-object": JSON, but not an object.</summary>
    NotAnObject,
    /// <summary>"missing-field": no "image" or no "caption".</summary>
    MissingField,
    /// <summary>"wrong-field-type": "image", "caption" or "class" is not a string.</summary>
    WrongFieldType,
    /// <summary>"invalid-text": a line that is not valid UTF-8, or a string that is not valid Unicode (a lone surrogate escape such as \ud800).</summary>
    InvalidText,
    /// <summary>"tsv-columns": a TSV line without a TAB, or with more than three columns.</summary>
    TsvColumns,
    /// <summary>"path-absolute": the image path is absolute.</summary>
    PathAbsolute,
    /// <summary>"path-refused": the image path is empty, holds a NUL, leaves the folder, or is not a regular file.</summary>
    PathRefused,
    /// <summary>"unknown-class": the class is not in classes.txt.</summary>
    UnknownClass,
    /// <summary>"caption-refused": the tokenizer the folder checks captions with cannot take the caption.</summary>
    CaptionRefused,
    /// <summary>"image-missing": no file at the image path.</summary>
    ImageMissing,
    /// <summary>"image-unreadable": the image file cannot be read.</summary>
    ImageUnreadable,
    /// <summary>"image-undecodable": the file is not a whole image the decoder knows.</summary>
    ImageUndecodable,
    /// <summary>"image-too-large": the image has more pixels than the loader accepts.</summary>
    ImageTooLarge,
}

/// <summary>Stable names of <see cref="SkipCategory"/> values, for printed output and report JSON.</summary>
public static class SkipCategories
{
    /// <summary>Every category, in the order reports list them.</summary>
    public static IReadOnlyList<SkipCategory> All { get; } = Enum.GetValues<SkipCategory>();

    /// <summary>The category's name in reports, e.g. "invalid-json".</summary>
    public static string Key(SkipCategory category) => category switch
    {
        SkipCategory.InvalidJson => "invalid-json",
        SkipCategory.NotAnObject => "not-an-object",
        SkipCategory.MissingField => "missing-field",
        SkipCategory.WrongFieldType => "wrong-field-type",
        SkipCategory.InvalidText => "invalid-text",
        SkipCategory.TsvColumns => "tsv-columns",
        SkipCategory.PathAbsolute => "path-absolute",
        SkipCategory.PathRefused => "path-refused",
        SkipCategory.UnknownClass => "unknown-class",
        SkipCategory.CaptionRefused => "caption-refused",
        SkipCategory.ImageMissing => "image-missing",
        SkipCategory.ImageUnreadable => "image-unreadable",
        SkipCategory.ImageUndecodable => "image-undecodable",
        SkipCategory.ImageTooLarge => "image-too-large",
        _ => throw new ArgumentOutOfRangeException(nameof(category), category, "Unknown skip category."),
    };
}

/// <summary>Why one line or image of a folder was skipped.</summary>
/// <param name="Line">1-based line of the captions file.</param>
/// <param name="Category">The kind of problem.</param>
/// <param name="Reason">The problem in words.</param>
public sealed record SkipReason(int Line, SkipCategory Category, string Reason)
{
    /// <summary>The category's stable name, e.g. "invalid-json".</summary>
    public string Key => SkipCategories.Key(Category);

    public override string ToString() => $"line {Line}: {Reason}";
}

/// <summary>How many lines or images were skipped for one reason, and the first of them.</summary>
public sealed record SkipCount(SkipCategory Category, long Count, SkipReason FirstExample)
{
    /// <summary>The category's stable name, e.g. "invalid-json".</summary>
    public string Key => SkipCategories.Key(Category);
}

/// <summary>What a folder skipped so far: the total and the count of each reason met (reasons in <see cref="SkipCategories.All"/> order, only those met).</summary>
/// <param name="LinesRead">The furthest line of the captions file read so far (a run that stops early has not read every line).</param>
public sealed record SkipTally(long Total, long LinesRead, IReadOnlyList<SkipCount> ByReason)
{
    /// <summary>The count of <paramref name="category"/> (0 when none was skipped for it).</summary>
    public long CountOf(SkipCategory category) => ByReason.FirstOrDefault(c => c.Category == category)?.Count ?? 0;
}

/// <summary>
/// A folder of images with a captions file, read as a stream: one line at a time, each image decoded
/// only when its example is produced. The captions file is either
/// - JSON lines (<c>captions.jsonl</c>): <c>{"image": "relative/path.jpg", "caption": "...", "class": "optional"}</c>, or
/// - tab-separated (<c>captions.tsv</c>): <c>relative/path.jpg&lt;TAB&gt;caption[&lt;TAB&gt;class]</c>; a first line
///   <c>image&lt;TAB&gt;caption</c> is taken as a header.
/// Blank lines are ignored. A line that cannot be used (invalid JSON, a missing or non-string field, a
/// string that is not valid Unicode, an image path that is absolute or leaves the folder, a class not in
/// classes.txt, a caption the checking tokenizer refuses) and an image that is missing, unreadable, too
/// large or cannot be decoded are skipped, never fatal: <see cref="Skipped"/> counts them,
/// <see cref="Tally"/> counts them by <see cref="SkipCategory"/>, and <see cref="SkipReasons"/> keeps the
/// first few. Each bad line counts once, however many passes (epochs, an evaluation after training,
/// the ranks of an in-process group) read it. Image paths are resolved after symbolic links and must
/// stay inside the folder.
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
    private readonly ITextTokenizer? _captionTokenizer;
    private readonly object _lock = new();
    // Line -> why it was skipped: a line is counted once, however many passes meet it.
    private readonly Dictionary<int, SkipReason> _skippedLines = [];
    private long _linesRead;

    /// <param name="folder">The folder holding the images (paths in the captions file are relative to it).</param>
    /// <param name="imageSize">The model's image size S: every example is [3, S, S].</param>
    /// <param name="captionsFile">The captions file; null: captions.jsonl or captions.tsv in the folder.</param>
    /// <param name="shuffleBuffer">Lines held for shuffling (1: the file's order).</param>
    /// <param name="maxSkipReasons">How many skip reasons are kept.</param>
    /// <param name="captionTokenizer">When given, every caption is encoded with it as the line is read, and a caption it
    /// refuses is skipped and counted (<see cref="SkipCategory.CaptionRefused"/>) instead of failing a batch later.</param>
    public ImageCaptionFolder(string folder, int imageSize, string? captionsFile = null, ImageResampler resampler = ImageResampler.PilBicubic,
        int shuffleBuffer = 1024, int maxSkipReasons = 5, ITextTokenizer? captionTokenizer = null)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Data folder '{folder}' does not exist.");
        if (shuffleBuffer < 1) throw new ArgumentOutOfRangeException(nameof(shuffleBuffer), $"The shuffle buffer must hold at least 1 line, got {shuffleBuffer}.");
        Folder = Path.GetFullPath(folder);
        CaptionsFile = captionsFile is not null ? Path.GetFullPath(captionsFile, Folder) : FindCaptionsFile(Folder);
        if (!File.Exists(CaptionsFile)) throw new FileNotFoundException($"Captions file '{CaptionsFile}' does not exist.", CaptionsFile);
        InputFile.CheckReadable(CaptionsFile, "the captions file");
        IsTsv = CaptionsFile.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase) || CaptionsFile.EndsWith(".txt", StringComparison.OrdinalIgnoreCase);
        _loader = new ImageLoader(imageSize, resampler);
        ShuffleBuffer = shuffleBuffer;
        MaxSkipReasons = maxSkipReasons;
        _captionTokenizer = captionTokenizer;
        string classesPath = Path.Combine(Folder, "classes.txt");
        if (File.Exists(classesPath))
        {
            InputFile.CheckReadable(classesPath, "the class names");
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

    /// <summary>Lines and images skipped so far (each bad line once, over every pass).</summary>
    public long Skipped { get { lock (_lock) return _skippedLines.Count; } }

    /// <summary>The first <see cref="MaxSkipReasons"/> reasons for skipping, in the order they were met.</summary>
    public IReadOnlyList<SkipReason> SkipReasons { get { lock (_lock) return _reasons.ToList(); } }

    /// <summary>What was skipped so far, counted by reason, with the first example (lowest line) of each.</summary>
    public SkipTally Tally
    {
        get
        {
            lock (_lock)
            {
                var byReason = _skippedLines.Values.GroupBy(r => r.Category).OrderBy(g => g.Key)
                    .Select(g => new SkipCount(g.Key, g.Count(), g.MinBy(r => r.Line)!)).ToList();
                return new SkipTally(_skippedLines.Count, _linesRead, byReason);
            }
        }
    }

    /// <summary>
    /// What was skipped, for a CLI to print ("" when nothing was): a first line with the total, then one
    /// line per reason with its count and first example.
    /// </summary>
    public string SkipSummary()
    {
        var tally = Tally;
        if (tally.Total == 0) return "";
        var lines = new List<string> { $"{tally.Total} line(s) or image(s) skipped in {Description} (of the first {tally.LinesRead} lines read):" };
        foreach (var c in tally.ByReason)
            lines.Add($"  {c.Key}: {c.Count} (first: {c.FirstExample})");
        return string.Join(Environment.NewLine, lines);
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
            // A bad image never stops a run; a missing SkiaSharp native library is not a bad image: it would
            // skip every image, so it stops the run with its own one-line message.
            catch (Exception ex) when (ex is not OutOfMemoryException and not OperationCanceledException and not ImageLibraryException)
            {
                var category = ex is ImageDecodeException d ? d.Problem switch
                {
                    ImageProblem.Missing => SkipCategory.ImageMissing,
                    ImageProblem.Unreadable => SkipCategory.ImageUnreadable,
                    ImageProblem.TooLarge => SkipCategory.ImageTooLarge,
                    _ => SkipCategory.ImageUndecodable,
                } : SkipCategory.ImageUndecodable;
                Skip(entry.Line, category, ex.Message);
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

    /// <summary>
    /// What the reader puts in place of bytes that are not UTF-8: U+FFFF, a noncharacter that no caption needs,
    /// so that such a line is skipped and counted instead of being read with U+FFFD in it (the default).
    /// </summary>
    private const char InvalidUtf8Marker = '\uFFFF';

    private static readonly System.Text.Encoding MarkedUtf8 = System.Text.Encoding.GetEncoding(
        "utf-8", System.Text.EncoderFallback.ReplacementFallback, new System.Text.DecoderReplacementFallback(InvalidUtf8Marker.ToString()));

    private IEnumerable<Entry> ParseLines()
    {
        using var reader = new StreamReader(CaptionsFile, MarkedUtf8, detectEncodingFromByteOrderMarks: true);
        int lineNumber = 0;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNumber++;
            lock (_lock) _linesRead = Math.Max(_linesRead, lineNumber);
            if (string.IsNullOrWhiteSpace(line)) continue;
            if (line.Contains(InvalidUtf8Marker))
            {
                Skip(lineNumber, SkipCategory.InvalidText, "the line is not valid UTF-8 (or holds the noncharacter U+FFFF); save the captions file as UTF-8");
                continue;
            }
            if (IsTsv && lineNumber == 1 && line.Trim().StartsWith("image\tcaption", StringComparison.OrdinalIgnoreCase)) continue;
            var (entry, problem) = IsTsv ? ParseTsv(line, lineNumber) : ParseJson(line, lineNumber);
            if (entry is not null && _captionTokenizer is not null) problem = CheckCaption(entry.Caption);
            if (problem is { } p) { Skip(lineNumber, p.Category, p.Reason); continue; }
            yield return entry!;
        }
    }

    /// <summary>Why a line is not used: its category and the problem in words.</summary>
    private readonly record struct Problem(SkipCategory Category, string Reason);

    private (Entry?, Problem?) ParseJson(string line, int lineNumber)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException ex) { return (null, new(SkipCategory.InvalidJson, $"not valid JSON ({ex.Message}); expected {{\"image\": \"relative/path.jpg\", \"caption\": \"...\"}}")); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return (null, new(SkipCategory.NotAnObject, $"a JSON {root.ValueKind} where an object {{\"image\": ..., \"caption\": ...}} was expected"));
            // System.Text.Json throws InvalidOperationException on an escape that is not valid Unicode (a lone surrogate
            // such as \ud800) when it converts a string, a value or a field name it compares: one bad line, not a stopped run.
            string reading = "a field name";
            string? image, caption, cls = null;
            try
            {
                string? Field(string name, out Problem? problem)
                {
                    problem = null;
                    reading = "a field name";
                    if (!root.TryGetProperty(name, out var v)) { problem = new(SkipCategory.MissingField, $"missing field \"{name}\""); return null; }
                    if (v.ValueKind != JsonValueKind.String) { problem = new(SkipCategory.WrongFieldType, $"field \"{name}\" is a {v.ValueKind}, expected a string"); return null; }
                    reading = $"field \"{name}\"";
                    return v.GetString();
                }
                image = Field("image", out var p1);
                if (image is null) return (null, p1);
                caption = Field("caption", out var p2);
                if (caption is null) return (null, p2);
                if (root.TryGetProperty("class", out _))
                {
                    cls = Field("class", out var p3);
                    if (cls is null) return (null, p3);
                }
            }
            catch (InvalidOperationException ex)
            {
                return (null, new(SkipCategory.InvalidText, $"{reading} is not valid Unicode text ({ex.Message}); strings must not hold unpaired surrogate escapes such as \\ud800"));
            }
            return MakeEntry(lineNumber, image, caption, cls);
        }
    }

    private (Entry?, Problem?) ParseTsv(string line, int lineNumber)
    {
        var parts = line.Split('\t');
        if (parts.Length < 2) return (null, new(SkipCategory.TsvColumns, "no TAB; expected relative/path.jpg<TAB>caption"));
        if (parts.Length > 3) return (null, new(SkipCategory.TsvColumns, $"{parts.Length} TAB-separated columns; expected image, caption and optionally class"));
        return MakeEntry(lineNumber, parts[0].Trim(), parts[1], parts.Length == 3 ? parts[2].Trim() : null);
    }

    private (Entry?, Problem?) MakeEntry(int lineNumber, string image, string caption, string? cls)
    {
        if (image.Length == 0) return (null, new(SkipCategory.PathRefused, "empty image path"));
        if (image.Contains('\0')) return (null, new(SkipCategory.PathRefused, "the image path holds a NUL character"));
        if (Path.IsPathRooted(image)) return (null, new(SkipCategory.PathAbsolute, $"image path '{image}' is absolute; paths must be relative to {Folder}"));
        // Resolved after symbolic links: a link inside the folder that points outside it is refused, and
        // only a regular file is read (a missing one is left to the image loader, which skips and counts it).
        if (!ContainedPath.TryResolve(Folder, image, FileKind.RegularFile, allowMissing: true, out var resolved, out var refused))
            return (null, new(SkipCategory.PathRefused, $"image path '{image}' refused: {refused}"));
        string full = resolved!;
        if (cls is { Length: 0 }) cls = null;
        if (cls is not null && _classSet is not null && !_classSet.Contains(cls))
            return (null, new(SkipCategory.UnknownClass, $"class '{cls}' is not in classes.txt"));
        return (new Entry(lineNumber, full, caption, cls), null);
    }

    /// <summary>Encodes the caption with the checking tokenizer: a caption it refuses is one bad line, not a failed batch later.</summary>
    private Problem? CheckCaption(string caption)
    {
        try
        {
            _captionTokenizer!.Encode([caption], 1);
            return null;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException and not OperationCanceledException)
        {
            return new(SkipCategory.CaptionRefused, $"the tokenizer cannot take the caption ({ex.Message})");
        }
    }

    private void Skip(int line, SkipCategory category, string reason)
    {
        var r = new SkipReason(line, category, reason);
        lock (_lock)
        {
            // Once per line: a second pass over the folder (another epoch, the evaluation, another rank's reader) meets the same bad lines again.
            if (!_skippedLines.TryAdd(line, r)) return;
            if (_reasons.Count < MaxSkipReasons) _reasons.Add(r);
        }
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
