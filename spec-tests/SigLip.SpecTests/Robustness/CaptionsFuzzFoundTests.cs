using System.Buffers.Binary;
using System.Text;
using SigLip.Data;
using SigLip.Fuzzing;
using SigLip.Fuzzing.Targets;
using SigLip.Reference.IO;
using SigLip.Reference.IO.Golden;
using SigLip.Reference.Training;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Robustness;

/// <summary>Holes the fuzzer found in the captions parser (see <see cref="FuzzFoundTestBase"/>).</summary>
public sealed class CaptionsFuzzFoundTests : FuzzFoundTestBase
{
    [Theory]
    [InlineData("{\"image\": \"b.png\", \"caption\": \"\\ud800\"}")]             // fuzz captions-jsonl seed 1 case 80
    [InlineData("{\"image\": \"\\udc00.png\", \"caption\": \"x\"}")]
    [InlineData("{\"image\": \"b.png\", \"caption\": \"x\", \"class\": \"\\ud800\"}")]
    [InlineData("{\"\\ud800\": 1, \"image\": \"b.png\", \"caption\": \"x\"}")]
    public void A_caption_line_with_an_escaped_lone_surrogate_is_skipped_and_counted(string badLine)
    {
        Write("data/captions.jsonl", "{\"image\": \"a.png\", \"caption\": \"first\"}\n" + badLine + "\n{\"image\": \"c.png\", \"caption\": \"third\"}\n");
        var folder = new ImageCaptionFolder(_temp.File("data"), 16, shuffleBuffer: 1);
        var entries = folder.Entries(0).ToList();
        Assert.Equal(["first", "third"], entries.Select(e => e.Caption));
        Assert.Equal(1, folder.Skipped);
        Assert.Equal(2, folder.SkipReasons.Single().Line);
        Assert.Contains("surrogate", folder.SkipReasons.Single().Reason);
    }
    [Theory]
    [InlineData("cat\ncat\n", "listed twice")]
    [InlineData("\n  \n", "no class names")]
    public void A_bad_classes_txt_is_an_InputFormatException(string classes, string mention)
    {
        Write("data/captions.tsv", "a.png\ta cat\n");
        string path = Write("data/classes.txt", classes);
        var ex = Assert.Throws<InputFormatException>(() => new ImageCaptionFolder(_temp.File("data"), 16));
        OneLine(ex, path);
        Assert.Contains(mention, ex.Message);
    }
}
