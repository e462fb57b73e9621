using System.Text.Json;
using System.Text.RegularExpressions;
using SigLip.Data;
using SigLip.Reference;
using SigLip.Reference.Data;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Data;

/// <summary>Issue 15: bad lines and bad images are skipped and counted by reason, in the API, in what train and eval print, and in their report JSON.</summary>
public sealed class SkipCountTests(ITestOutputHelper output)
{
    /// <summary>A line of each bad kind the JSONL reader can meet (the TestFolder adds a corrupt and a missing image).</summary>
    private static readonly (string Line, SkipCategory Category)[] BadLines =
    [
        ("{not json", SkipCategory.InvalidJson),
        ("{\"image\": \"img/00_red.jpg\", \"caption\": ", SkipCategory.InvalidJson),
        ("[1, 2]", SkipCategory.NotAnObject),
        ("{\"image\": \"img/00_red.jpg\"}", SkipCategory.MissingField),
        ("{\"image\": 5, \"caption\": \"x\"}", SkipCategory.WrongFieldType),
        ("{\"image\": \"img/00_red.jpg\", \"caption\": \"a lone \\ud800x surrogate\"}", SkipCategory.InvalidText),
        ("{\"image\": \"img/00_red.jpg\", \"caption\": \"fine\", \"class\": \"\\udc00\"}", SkipCategory.InvalidText),
        ("{\"image\": \"/etc/passwd\", \"caption\": \"absolute\"}", SkipCategory.PathAbsolute),
        ("{\"image\": \"../outside.jpg\", \"caption\": \"escape\"}", SkipCategory.PathRefused),
        ("{\"image\": \"img/00_red.jpg\", \"caption\": \"a purple thing\", \"class\": \"purple\"}", SkipCategory.UnknownClass),
        ("{\"image\": \"img/huge.png\", \"caption\": \"a huge picture\"}", SkipCategory.ImageTooLarge),
    ];

    /// <summary>The expected count of each category in <see cref="MakeFolder"/>'s folder.</summary>
    private static Dictionary<SkipCategory, long> Expected() =>
        BadLines.GroupBy(l => l.Category).ToDictionary(g => g.Key, g => (long)g.Count()) is var d
            ? new(d) { [SkipCategory.ImageUndecodable] = 1, [SkipCategory.ImageMissing] = 1 }
            : throw new InvalidOperationException();

    private static TestFolder MakeFolder()
    {
        var folder = new TestFolder(goodImages: 8, extraLines: BadLines.Select(l => l.Line));
        File.WriteAllBytes(Path.Combine(folder.Root, "img", "huge.png"), TestImages.HeaderOnlyPng(20_000, 10_000)); // 200 megapixels
        File.WriteAllLines(Path.Combine(folder.Root, "classes.txt"), TestFolder.Colours);
        return folder;
    }

    /// <summary>1-based line of the first bad line of <paramref name="category"/> in the captions file.</summary>
    private static int FirstLine(TestFolder folder, SkipCategory category)
    {
        var lines = File.ReadAllLines(Path.Combine(folder.Root, "captions.jsonl"));
        string marker = category switch
        {
            SkipCategory.ImageUndecodable => "corrupt.jpg",
            SkipCategory.ImageMissing => "missing.png",
            _ => BadLines.First(l => l.Category == category).Line,
        };
        return Array.FindIndex(lines, l => l.Contains(marker, StringComparison.Ordinal)) + 1;
    }

    [Fact]
    public void Every_kind_of_bad_line_and_image_is_counted_by_its_reason_once_however_many_passes()
    {
        using var folder = MakeFolder();
        var data = new ImageCaptionFolder(folder.Root, imageSize: 8, shuffleBuffer: 1);
        Assert.Equal(8, data.Examples(0).Count());
        Assert.Equal(8, data.Examples(1).Count()); // a second pass meets the same bad lines: they are not counted again
        // Readers at once, as the ranks of an in-process data-parallel group read one folder: not counted again either.
        Parallel.For(0, 3, rank => Assert.Equal(8, data.Examples(rank).Count()));
        var tally = data.Tally;
        output.WriteLine(data.SkipSummary());
        var expected = Expected();
        Assert.Equal(expected.Values.Sum(), tally.Total);
        Assert.Equal(tally.Total, data.Skipped);
        Assert.Equal(File.ReadAllLines(Path.Combine(folder.Root, "captions.jsonl")).Length, tally.LinesRead);
        Assert.Equal(expected.OrderBy(e => e.Key).Select(e => (e.Key, e.Value)), tally.ByReason.Select(c => (c.Category, c.Count)));
        foreach (var c in tally.ByReason)
        {
            Assert.Equal(FirstLine(folder, c.Category), c.FirstExample.Line);
            Assert.Equal(c.Category, c.FirstExample.Category);
            Assert.Equal(SkipCategories.Key(c.Category), c.Key);
        }
        Assert.Equal(2, tally.CountOf(SkipCategory.InvalidJson));
        Assert.Equal(0, tally.CountOf(SkipCategory.TsvColumns));
        Assert.Contains("not valid Unicode", tally.ByReason.Single(c => c.Category == SkipCategory.InvalidText).FirstExample.Reason);
        Assert.Contains("100 megapixels", tally.ByReason.Single(c => c.Category == SkipCategory.ImageTooLarge).FirstExample.Reason);

        // The summary: a total, then a line per reason with its count and first example.
        var summary = data.SkipSummary().Split(Environment.NewLine);
        Assert.StartsWith($"{tally.Total} line(s) or image(s) skipped", summary[0]);
        Assert.Equal(tally.ByReason.Count, summary.Length - 1);
        foreach (var c in tally.ByReason)
            Assert.Contains(summary, l => l.Trim().StartsWith($"{c.Key}: {c.Count} (first: line {c.FirstExample.Line}: ", StringComparison.Ordinal));
    }

    [Fact]
    public void A_lone_surrogate_escape_in_a_caption_is_one_skipped_line_not_a_stopped_run()
    {
        using var folder = new TestFolder(goodImages: 2, extraLines: ["{\"image\": \"img/00_red.jpg\", \"caption\": \"\\ud800x\"}"]);
        var data = new ImageCaptionFolder(folder.Root, imageSize: 8, shuffleBuffer: 1);
        Assert.Equal(2, data.Examples(0).Count());
        Assert.Equal(1, data.Tally.CountOf(SkipCategory.InvalidText));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void A_line_that_is_not_valid_utf8_is_counted_as_invalid_text(bool tsv, bool byteOrderMark)
    {
        using var folder = new TestFolder(goodImages: 2, tsv: tsv);
        string captions = Path.Combine(folder.Root, tsv ? "captions.tsv" : "captions.jsonl");
        if (byteOrderMark) File.WriteAllBytes(captions, [0xEF, 0xBB, 0xBF, .. File.ReadAllBytes(captions)]);
        // A caption holding the bytes FF FE (never valid UTF-8) and a caption holding an encoded surrogate (ED A0 80).
        byte[] Line(string before, byte[] bad, string after) => [.. System.Text.Encoding.UTF8.GetBytes(before), .. bad, .. System.Text.Encoding.UTF8.GetBytes(after + "\n")];
        string prefix = tsv ? "img/00_red.jpg\tbad " : "{\"image\": \"img/00_red.jpg\", \"caption\": \"bad ";
        string suffix = tsv ? " bytes" : " bytes\"}";
        File.AppendAllBytes(captions, [.. Line(prefix, [0xFF, 0xFE], suffix), .. Line(prefix, [0xED, 0xA0, 0x80], suffix)]);
        var data = new ImageCaptionFolder(folder.Root, imageSize: 8, shuffleBuffer: 1);
        var examples = data.Examples(0).ToList();
        output.WriteLine(data.SkipSummary());
        Assert.Equal(2, examples.Count);
        Assert.DoesNotContain(examples, e => e.Caption.Contains('\uFFFD'));
        var invalid = Assert.Single(data.Tally.ByReason, c => c.Category == SkipCategory.InvalidText);
        Assert.Equal(2, invalid.Count);
        Assert.Contains("UTF-8", invalid.FirstExample.Reason);
    }

    [Fact]
    public void Tsv_lines_with_the_wrong_columns_are_counted_as_such()
    {
        using var folder = new TestFolder(goodImages: 2, tsv: true, extraLines: ["no tab here", "a\tb\tc\td"]);
        var data = new ImageCaptionFolder(folder.Root, imageSize: 8);
        Assert.Equal(2, data.Examples(0).Count());
        Assert.Equal(2, data.Tally.CountOf(SkipCategory.TsvColumns));
        Assert.Equal(1, data.Tally.CountOf(SkipCategory.ImageUndecodable));
        Assert.Equal(1, data.Tally.CountOf(SkipCategory.ImageMissing));
    }

    /// <summary>Refuses any caption holding "refuse", as a tokenizer refuses what it cannot encode.</summary>
    private sealed class PickyTokenizer : ITextTokenizer
    {
        public int VocabSize => 10;
        public TokenIds Encode(IReadOnlyList<string> texts, int maxLength) =>
            texts.Any(t => t.Contains("refuse", StringComparison.Ordinal))
                ? throw new ArgumentException("cannot encode this caption")
                : new TokenIds(texts.Count, maxLength, new int[texts.Count * maxLength]);
    }

    [Fact]
    public void A_caption_the_checking_tokenizer_refuses_is_skipped_and_counted()
    {
        using var folder = new TestFolder(goodImages: 3, extraLines: ["{\"image\": \"img/00_red.jpg\", \"caption\": \"please refuse me\"}"]);
        var data = new ImageCaptionFolder(folder.Root, imageSize: 8, captionTokenizer: new PickyTokenizer());
        Assert.Equal(3, data.Examples(0).Count());
        var refused = Assert.Single(data.Tally.ByReason, c => c.Category == SkipCategory.CaptionRefused);
        Assert.Equal(1, refused.Count);
        Assert.Contains("cannot encode this caption", refused.FirstExample.Reason);
        // Without a checking tokenizer the caption is read as it is.
        Assert.Equal(4, new ImageCaptionFolder(folder.Root, imageSize: 8).Examples(0).Count());
    }

    /// <summary>Whitespace (Spectre wraps long lines) collapsed to single spaces.</summary>
    private static string OneLine(string text) => Regex.Replace(text, @"\s+", " ");

    private static void AssertPrinted(string printed, TestFolder folder)
    {
        string flat = OneLine(printed);
        var expected = Expected();
        Assert.Contains($"{expected.Values.Sum()} line(s) or image(s) skipped", flat);
        foreach (var (category, count) in expected)
            Assert.Contains($"{SkipCategories.Key(category)}: {count} (first: line {FirstLine(folder, category)}: ", flat);
    }

    private static void AssertReport(string reportPath, TestFolder folder)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(reportPath));
        var skipped = json.RootElement.GetProperty("skipped");
        var expected = Expected();
        Assert.Equal(expected.Values.Sum(), skipped.GetProperty("total").GetInt64());
        var byReason = skipped.GetProperty("by_reason").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64());
        Assert.Equal(expected.ToDictionary(e => SkipCategories.Key(e.Key), e => e.Value).OrderBy(e => e.Key), byReason.OrderBy(e => e.Key));
        foreach (var (category, _) in expected)
            Assert.StartsWith($"line {FirstLine(folder, category)}: ", skipped.GetProperty("first").GetProperty(SkipCategories.Key(category)).GetString());
    }

    [Fact]
    public void Train_and_eval_print_the_counts_by_reason_and_their_reports_hold_them()
    {
        using var folder = MakeFolder();
        using var temp = new TempFolder();
        string run = temp.File("run"), trainReport = temp.File("train.json"), evalReport = temp.File("eval.json");

        var (code, stdout, stderr) = CliRunner.Run("train", "--data", folder.Root, "--steps", "2", "--batch-size", "4", "--skip-golden-check",
            "--out", run, "--report", trainReport);
        output.WriteLine(stdout + stderr);
        Assert.True(code == 0, stderr);
        AssertPrinted(stdout, folder);
        AssertReport(trainReport, folder);

        (code, stdout, stderr) = CliRunner.Run("eval", "--checkpoint", run, "--data", folder.Root, "--report", evalReport);
        output.WriteLine(stdout + stderr);
        Assert.True(code == 0, stderr);
        AssertPrinted(stdout, folder);
        AssertReport(evalReport, folder);
    }

    [Fact]
    public void Train_on_a_folder_without_a_usable_line_fails_and_says_what_was_skipped()
    {
        using var folder = new TestFolder(goodImages: 0, extraLines: ["{not json", "[1]"]);
        using var temp = new TempFolder();
        var (code, stdout, stderr) = CliRunner.Run("train", "--data", folder.Root, "--steps", "1", "--batch-size", "2", "--skip-golden-check", "--out", temp.File("run"));
        output.WriteLine(stdout + stderr);
        Assert.NotEqual(0, code);
        Assert.Contains("no usable examples", stderr);
        string flat = OneLine(stdout);
        Assert.Contains("invalid-json: 1 (first: line 1: ", flat);
        Assert.Contains("not-an-object: 1 (first: line 2: ", flat);
    }
}
