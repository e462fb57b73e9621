using System.Runtime.InteropServices;
using SigLip.Data;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Data;

/// <summary>
/// Issue 15, library failures are translated: the built siglip run from a copy of its output folder that
/// lacks SkiaSharp's native library (runtimes/RID/native/libSkiaSharp.so). Decoding an image used to end
/// with "The type initializer for 'SkiaSharp.SKData' threw an exception." and a folder skipped every
/// image as undecodable; now one error line names libSkiaSharp. Training keeps its checkpoint and says on
/// one line that the loss curve was not written.
/// </summary>
public sealed class MissingSkiaLibraryTests : IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(180);
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private static string NativeLibrary => Path.Combine("runtimes", RuntimeInformation.RuntimeIdentifier, "native", "libSkiaSharp.so");

    /// <summary>
    /// The test's output folder (which holds siglip.dll) rebuilt in a temp folder without libSkiaSharp.so:
    /// every other file is a symbolic link, except siglip.dll and its .json files, which are copied, since
    /// the dotnet host resolves the app's real path and would otherwise look beside the original (which has the library),
    /// and golden/ (4 MB), since train's golden check refuses a case file that resolves outside its folder.
    /// </summary>
    private string BinWithoutSkia()
    {
        string source = AppContext.BaseDirectory;
        Assert.True(File.Exists(Path.Combine(source, NativeLibrary)), $"the build output has no {NativeLibrary}: nothing to take away");
        string copy = Path.Combine(_temp.Path, "bin");
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(source, file);
            if (relative == NativeLibrary) continue;
            string target = Path.Combine(copy, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (relative.StartsWith("siglip.", StringComparison.Ordinal) || relative.StartsWith("golden" + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                File.Copy(file, target);
            else File.CreateSymbolicLink(target, file);
        }
        Assert.False(File.Exists(Path.Combine(copy, NativeLibrary)));
        return copy;
    }

    private string TinyCheckpoint()
    {
        string checkpoint = _temp.File("checkpoint");
        Directory.CreateDirectory(checkpoint);
        foreach (var f in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(RepoPaths.Fixture("hf-siglip-tiny"), f), Path.Combine(checkpoint, f));
        File.Copy(RepoPaths.Fixture(Path.Combine("sentencepiece-tiny", "spiece.model")), Path.Combine(checkpoint, "spiece.model"));
        return checkpoint;
    }

    [SkippableFact]
    public void Embed_without_libSkiaSharp_ends_with_one_line_naming_it()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the copy leaves out the Linux native library libSkiaSharp.so");
        string bin = BinWithoutSkia();
        using var folder = new TestFolder(goodImages: 2);
        string image = Path.Combine(folder.Root, folder.Good[1].Image); // a PNG

        var (code, output) = SiglipProcess.RunFrom(bin, Limit, "embed", "--checkpoint", TinyCheckpoint(), "--images", image);

        Assert.Equal(1, code);
        string error = SiglipProcess.ErrorLine(output); // exactly one error line, no stack trace
        Assert.Contains("libSkiaSharp could not be loaded", error);
        Assert.Contains("SkiaSharp.NativeAssets.Linux.NoDependencies", error);
        Assert.Contains(image, error);
        Assert.DoesNotContain("type initializer", output);
    }

    [SkippableFact]
    public void Train_on_a_folder_without_libSkiaSharp_stops_instead_of_skipping_every_image()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the copy leaves out the Linux native library libSkiaSharp.so");
        string bin = BinWithoutSkia();
        using var folder = new TestFolder(goodImages: 4);
        string output = _temp.File("run");

        var (code, text) = SiglipProcess.RunFrom(bin, Limit, "train", "--data", folder.Root, "--steps", "1", "--batch-size", "2", "--out", output);

        Assert.Equal(1, code);
        string error = SiglipProcess.ErrorLine(text);
        Assert.Contains("libSkiaSharp could not be loaded", error);
        Assert.DoesNotContain("image-undecodable", text); // not counted as bad images
    }

    [SkippableFact]
    public void Train_without_libSkiaSharp_keeps_the_checkpoint_and_says_the_loss_curve_was_not_written()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the copy leaves out the Linux native library libSkiaSharp.so");
        string bin = BinWithoutSkia();
        string output = _temp.File("run");

        var (code, text) = SiglipProcess.RunFrom(bin, Limit, "train", "--steps", "1", "--out", output);

        Assert.Equal(0, code); // the training's results are kept: a missing plot is a warning (TrainCommand says why)
        Assert.DoesNotContain("   at ", text);
        Assert.DoesNotContain("error:", text);
        Assert.NotEmpty(Directory.EnumerateFiles(output, "model.safetensors", SearchOption.AllDirectories));
        Assert.Empty(Directory.EnumerateFiles(output, "loss.png", SearchOption.AllDirectories));
        string warning = Assert.Single(text.Split('\n'), l => l.Contains("loss curve", StringComparison.OrdinalIgnoreCase));
        Assert.StartsWith("warning:", warning);
        Assert.Contains("not written", warning);
        Assert.Contains("libSkiaSharp could not be loaded", warning);
    }

    [SkippableFact]
    public void Explain_without_libSkiaSharp_ends_with_one_line_naming_the_heatmap_and_the_library()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the copy leaves out the Linux native library libSkiaSharp.so");
        string bin = BinWithoutSkia();
        string output = _temp.File("explain");

        var (code, text) = SiglipProcess.RunFrom(bin, Limit, "explain", "--out", output);

        Assert.Equal(1, code); // the heatmaps are what explain writes: nothing is kept, so it fails
        string error = SiglipProcess.ErrorLine(text);
        Assert.Contains("was not written", error);
        Assert.Contains("libSkiaSharp could not be loaded", error);
    }

    [Fact]
    public void Only_a_native_load_failure_is_translated_and_its_message_is_one_line()
    {
        // The shape .NET gives when SkiaSharp.SKData's static constructor cannot load libSkiaSharp.
        var missing = new DllNotFoundException(
            "Unable to load shared library 'libSkiaSharp' or one of its dependencies. In order to help diagnose loading problems, consider using a tool like strace.\n" +
            "/app/runtimes/linux-x64/native/libSkiaSharp.so: libfontconfig.so.1: cannot open shared object file: No such file or directory\n" +
            "/app/libSkiaSharp.so: cannot open shared object file: No such file or directory\n");
        var wrapped = new TypeInitializationException("SkiaSharp.SKData", missing);

        var translated = ImageLibraryException.Translate(wrapped, "x.png: cannot decode images");
        Assert.NotNull(translated);
        Assert.Same(wrapped, translated.InnerException);
        Assert.DoesNotContain('\n', translated.Message);
        Assert.StartsWith("x.png: cannot decode images: SkiaSharp's native library libSkiaSharp could not be loaded", translated.Message);
        Assert.Contains("libfontconfig.so.1: cannot open shared object file", translated.Message); // the first path's reason is kept
        Assert.Contains("1 other path(s) tried", translated.Message);
        Assert.DoesNotContain("strace", translated.Message);

        Assert.NotNull(ImageLibraryException.Translate(new EntryPointNotFoundException("sk_data_new_with_copy"), "w"));
        Assert.NotNull(ImageLibraryException.Translate(new BadImageFormatException("wrong architecture"), "w"));
        Assert.Null(ImageLibraryException.Translate(new TypeInitializationException("SkiaSharp.SKData", new InvalidOperationException("other")), "w"));
        Assert.Null(ImageLibraryException.Translate(new ImageDecodeException("x.png: not an image"), "w"));
    }
}
