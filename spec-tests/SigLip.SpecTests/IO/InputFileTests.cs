using SigLip.Data;
using SigLip.Reference.IO;
using SigLip.Reference.IO.Golden;
using SigLip.SpecTests.Data;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.IO;

/// <summary>
/// Issue 15: a file the user names (an image, a tokenizer model, a checkpoint's config.json or weights, a
/// golden manifest, a captions file) is read only when it is a regular file. A FIFO used to block the
/// command for ever, /dev/zero to be read until "Array dimensions exceeded supported range". Every case
/// runs under a time limit, so a hang fails the test instead of stopping the run.
/// </summary>
public sealed class InputFileTests : IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private string Fifo(string name) => Fifos.Make(_temp.File(name));

    private string LinkToDevZero(string name)
    {
        string path = _temp.File(name);
        File.CreateSymbolicLink(path, "/dev/zero");
        return path;
    }

    /// <summary>Runs <paramref name="work"/> under <see cref="Limit"/>; a hang fails the test.</summary>
    private static T Within<T>(Func<T> work)
    {
        var task = Task.Run(work);
        Assert.True(task.Wait(Limit), $"reading did not finish within {Limit.TotalSeconds} s (it blocks on the file)");
        return task.Result;
    }

    /// <summary>What <paramref name="read"/> threw, within <see cref="Limit"/>.</summary>
    private static Exception Refusal(Action read) =>
        Assert.IsAssignableFrom<Exception>(Within<Exception?>(() =>
        {
            try { read(); return null; }
            catch (Exception ex) { return ex; }
        }));

    [SkippableFact]
    public void An_image_that_is_a_FIFO_or_a_device_is_an_unreadable_image_not_a_hang()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "mkfifo and /dev/zero");
        var fifo = Assert.IsType<ImageDecodeException>(Refusal(() => ImageLoader.Decode(Fifo("cat.png"))));
        Assert.Equal(ImageProblem.Unreadable, fifo.Problem);
        Assert.Contains("a FIFO (named pipe)", fifo.Message);
        var zero = Assert.IsType<ImageDecodeException>(Refusal(() => ImageLoader.Decode("/dev/zero")));
        Assert.Contains("/dev/zero: it is a character device; expected an image file", zero.Message);
    }

    [SkippableFact]
    public void A_tokenizer_model_config_weights_or_manifest_that_is_not_a_regular_file_is_refused_naming_it()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "mkfifo and /dev/zero");
        var spiece = Assert.IsType<PathRefusedException>(Refusal(() => SiglipTokenizer.Load(LinkToDevZero("spiece.model"))));
        Assert.Contains("(a SentencePiece model): it is a symbolic link to /dev/zero, which is a character device; expected a regular file", spiece.Message);
        Assert.IsType<PathRefusedException>(Refusal(() => SiglipTokenizer.Load(Fifo("fifo.model"))));
        var config = Assert.IsType<PathRefusedException>(Refusal(() => HfConfig.Read(Fifo("config.json"))));
        Assert.Contains("(config.json): it is a FIFO (named pipe)", config.Message);
        Assert.IsType<PathRefusedException>(Refusal(() => SafeTensorsFile.Open(Fifo("model.safetensors"))));
        Assert.IsType<PathRefusedException>(Refusal(() => SafeTensorsFile.Open(LinkToDevZero("zero.safetensors"))));
        Assert.IsType<PathRefusedException>(Refusal(() => GoldenManifest.Read(Fifo("manifest.json"))));
        Assert.IsType<PathRefusedException>(Refusal(() => GoldenManifest.Sha256("/dev/zero")));
    }

    [SkippableFact]
    public void A_captions_file_named_by_the_user_that_is_a_FIFO_is_refused()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "mkfifo");
        string folder = _temp.File("data");
        Directory.CreateDirectory(folder);
        string captions = Fifo("captions.jsonl");
        var ex = Assert.IsType<PathRefusedException>(Refusal(() => _ = new ImageCaptionFolder(folder, 16, captions)));
        Assert.Contains("(the captions file)", ex.Message);
    }

    [SkippableFact]
    public void Embed_with_an_image_that_is_a_FIFO_ends_with_one_line()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "mkfifo");
        // A checkpoint folder as embed wants it: the tiny HF model and the tiny SentencePiece model.
        string checkpoint = _temp.File("checkpoint");
        Directory.CreateDirectory(checkpoint);
        foreach (var f in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(RepoPaths.Fixture("hf-siglip-tiny"), f), Path.Combine(checkpoint, f));
        File.Copy(RepoPaths.Fixture(Path.Combine("sentencepiece-tiny", "spiece.model")), Path.Combine(checkpoint, "spiece.model"));
        string fifo = Fifo("photo.png");
        var (code, _, err) = Within(() => CliRunner.Run("embed", "--checkpoint", checkpoint, "--images", fifo));
        Assert.Equal(1, code);
        Assert.Contains($"{fifo}: it is a FIFO (named pipe); expected an image file", err);
        Assert.Single(err.Trim().Split('\n'), l => l.StartsWith("error:", StringComparison.Ordinal));
    }
}
