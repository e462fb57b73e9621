using SigLip.Data;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Data;

public sealed class ImageCaptionFolderTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Corrupt_and_missing_images_are_skipped_and_counted(bool tsv)
    {
        using var folder = new TestFolder(goodImages: 6, tsv: tsv);
        var data = new ImageCaptionFolder(folder.Root, imageSize: 16, shuffleBuffer: 1);
        var examples = data.Examples(seed: 0).ToList();
        output.WriteLine(data.SkipSummary());
        Assert.Equal(6, examples.Count);
        Assert.Equal(folder.Good.Select(g => g.Caption), examples.Select(e => e.Caption)); // file order with a buffer of 1
        Assert.All(examples, e => Assert.Equal(new[] { 3, 16, 16 }, e.Pixels.Shape));
        Assert.Equal(2, data.Skipped);
        Assert.Contains(data.SkipReasons, r => r.Reason.Contains("corrupt.jpg"));
        Assert.Contains(data.SkipReasons, r => r.Reason.Contains("missing.png") && r.Reason.Contains("no such image file"));
        Assert.Empty(data.ClassNames);
        Assert.Equal(3, data.Channels);
    }

    [Fact]
    public void Images_arrive_as_their_colour()
    {
        using var folder = new TestFolder(goodImages: 4);
        var data = new ImageCaptionFolder(folder.Root, imageSize: 8, shuffleBuffer: 1);
        var first = data.Examples(0).First(); // red JPEG: top-left corner is pure red, far from the white circle
        Assert.InRange(first.Pixels.Data[0], 0.95, 1.0);          // R
        Assert.InRange(first.Pixels.Data[64], -1.0, -0.95);       // G
        Assert.InRange(first.Pixels.Data[128], -1.0, -0.95);      // B
    }

    [Fact]
    public void Bad_lines_are_skipped_with_reasons()
    {
        var extra = new[]
        {
            "{not json",
            "{\"image\": \"img/00_red.jpg\"}",
            "{\"caption\": \"no image\"}",
            "{\"image\": 5, \"caption\": \"x\"}",
            "[1, 2]",
            "{\"image\": \"../outside.jpg\", \"caption\": \"escape\"}",
            "{\"image\": \"/etc/passwd\", \"caption\": \"absolute\"}",
            "{\"image\": \"img/../../x.jpg\", \"caption\": \"escape 2\"}",
            "",
            "   ",
        };
        using var folder = new TestFolder(goodImages: 2, extraLines: extra);
        var data = new ImageCaptionFolder(folder.Root, imageSize: 8, maxSkipReasons: 20);
        var examples = data.Examples(1).ToList();
        foreach (var r in data.SkipReasons) output.WriteLine(r.ToString());
        Assert.Equal(2, examples.Count);
        Assert.Equal(2 + 8, data.Skipped); // corrupt + missing + 8 bad lines; blank lines are not counted
        var reasons = string.Join("\n", data.SkipReasons);
        foreach (var expected in new[] { "not valid JSON", "missing field \"caption\"", "missing field \"image\"", "field \"image\" is a Number", "a JSON Array", "leaves the folder", "is absolute" })
            Assert.Contains(expected, reasons);
    }

    [Fact]
    public void Only_the_first_few_reasons_are_kept_but_all_are_counted()
    {
        using var folder = new TestFolder(goodImages: 1, extraLines: Enumerable.Range(0, 50).Select(i => $"broken {i}"));
        var data = new ImageCaptionFolder(folder.Root, imageSize: 8, maxSkipReasons: 3);
        Assert.Single(data.Examples(0));
        Assert.Equal(50 + 2, data.Skipped);
        Assert.Equal(3, data.SkipReasons.Count);
        Assert.Contains("52 line(s) or image(s) skipped", data.SkipSummary());
    }

    [Fact]
    public void Order_is_fixed_by_the_seed_and_every_entry_comes_once()
    {
        using var folder = new TestFolder(goodImages: 12);
        var data = new ImageCaptionFolder(folder.Root, imageSize: 8, shuffleBuffer: 5);
        var a = data.Entries(3).Select(e => e.Line).ToList();
        var b = data.Entries(3).Select(e => e.Line).ToList();
        var c = data.Entries(4).Select(e => e.Line).ToList();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.Equal(a.OrderBy(x => x), c.OrderBy(x => x));
        Assert.Equal(14, a.Count); // 12 good + corrupt + missing (images are checked when decoded)
        Assert.Equal(a.Distinct().Count(), a.Count);
    }

    [Fact]
    public void Classes_come_from_classes_txt_and_the_class_field()
    {
        using var folder = new TestFolder(goodImages: 0, extraLines:
        [
            "{\"image\": \"img/a.png\", \"caption\": \"a red thing\", \"class\": \"red\"}",
            "{\"image\": \"img/a.png\", \"caption\": \"a purple thing\", \"class\": \"purple\"}",
        ]);
        using (var bmp = TestImages.Pattern(9, 9)) File.WriteAllBytes(Path.Combine(folder.Root, "img", "a.png"), TestImages.Png(bmp));
        File.WriteAllLines(Path.Combine(folder.Root, "classes.txt"), ["red", "green"]);
        var data = new ImageCaptionFolder(folder.Root, imageSize: 8);
        Assert.Equal(new[] { "red", "green" }, data.ClassNames);
        var only = Assert.Single(data.Examples(0));
        Assert.Equal("red", only.ClassName);
        Assert.Contains(data.SkipReasons, r => r.Reason.Contains("'purple' is not in classes.txt"));
    }

    [Fact]
    public void A_folder_without_captions_file_is_an_error_that_says_what_was_expected()
    {
        string dir = Directory.CreateTempSubdirectory("siglip-empty").FullName;
        try
        {
            var ex = Assert.Throws<FileNotFoundException>(() => new ImageCaptionFolder(dir, 8));
            Assert.Contains("captions.jsonl", ex.Message);
            Assert.Throws<DirectoryNotFoundException>(() => new ImageCaptionFolder(Path.Combine(dir, "nope"), 8));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Batches_stack_pixels_and_tokenize_captions()
    {
        using var folder = new TestFolder(goodImages: 5);
        var data = new ImageCaptionFolder(folder.Root, imageSize: 8, shuffleBuffer: 1);
        var tok = new HashingWordTokenizer(64);
        var batches = ImageTextBatches.Create(data.Examples(0), tok, batchSize: 2, maxLength: 6).ToList();
        Assert.Equal(new[] { 2, 2, 1 }, batches.Select(b => b.Size));
        Assert.Equal(new[] { 2, 3, 8, 8 }, batches[0].PixelValues.Shape);
        Assert.Equal(6, batches[0].InputIds.Length);
        Assert.Equal(2, ImageTextBatches.Create(data.Examples(0), tok, 2, 6, dropLast: true).Count());
    }
}

public sealed class HashingWordTokenizerTests
{
    [Fact]
    public void Words_are_canonicalised_and_rows_follow_siglip_rules()
    {
        var tok = new HashingWordTokenizer(1000);
        var ids = tok.Encode(["A RED, circle!", "a red circle", "", "one two three four five six"], 5);
        int[] Row(int b) => Enumerable.Range(0, 5).Select(t => ids[b, t]).ToArray();
        Assert.Equal(Row(0), Row(1));
        Assert.Equal(new[] { tok.WordId("a"), tok.WordId("red"), tok.WordId("circle"), 0, 0 }, Row(0));
        Assert.All(Row(2), id => Assert.Equal(HashingWordTokenizer.EndId, id));
        Assert.Equal(0, Row(3)[4]); // cut so that </s> stays last
        Assert.All(ids.Ids, id => Assert.InRange(id, 0, 999));
        Assert.DoesNotContain(1, ids.Ids);
        // FNV-1a-32 of "a" is 0xE40C292C (3826002220): 2 + 3826002220 mod 998 = 2 + 520.
        Assert.Equal(2 + (int)(3826002220u % 998), tok.WordId("a"));
    }
}
