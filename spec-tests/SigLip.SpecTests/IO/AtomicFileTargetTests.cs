using SigLip.Reference.Evaluation;
using SigLip.Reference.IO;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.IO;

/// <summary>
/// Issue 15: the atomic writer replaces only a regular file or nothing. A FIFO, a directory or a
/// device (reached through a link in a temp folder, never touched) is refused with a message that
/// names the path and what is there, and is left as it was. A symbolic link to a regular file is
/// followed: the target is written, the link stays a link.
/// </summary>
public sealed class AtomicFileTargetTests : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();


    [SkippableFact]
    public void A_fifo_is_refused_and_stays_a_fifo()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "mkfifo and statx are Linux here");
        var fifo = _temp.File("report.json");
        Fifos.Make(fifo);
        var ex = Assert.Throws<PathRefusedException>(() => AtomicFile.WriteAllText(fifo, "{}"));
        Assert.Contains(fifo, ex.Message);
        Assert.Contains("FIFO", ex.Message);
        Assert.Equal(FileKind.Fifo, FileKinds.Of(fifo));
        Assert.Equal(["report.json"], Directory.GetFileSystemEntries(_temp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void A_directory_is_refused_and_keeps_its_content()
    {
        var dir = _temp.File("out");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "keep.txt"), "mine");
        var ex = Assert.Throws<PathRefusedException>(() => AtomicFile.WriteAllText(dir, "{}"));
        Assert.Contains("directory", ex.Message);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(dir, "keep.txt")));
    }

    [SkippableFact]
    public void A_link_to_a_device_is_refused_and_the_link_is_kept()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && File.Exists("/dev/null"), "needs /dev/null");
        var link = _temp.File("report.json");
        File.CreateSymbolicLink(link, "/dev/null");
        var ex = Assert.Throws<PathRefusedException>(() => AtomicFile.WriteAllText(link, "{}"));
        Assert.Contains("character device", ex.Message);
        Assert.Equal("/dev/null", new FileInfo(link).LinkTarget);
        Assert.Equal(FileKind.CharacterDevice, FileKinds.Of("/dev/null"));
    }

    [SkippableFact]
    public void A_link_to_a_regular_file_writes_the_target_and_keeps_the_link()
    {
        Skip.If(OperatingSystem.IsWindows(), "symbolic links need privileges on Windows");
        var target = _temp.File("real.json");
        File.WriteAllText(target, "old");
        var link = _temp.File("report.json");
        File.CreateSymbolicLink(link, target);
        AtomicFile.WriteAllText(link, "new");
        Assert.Equal("new", File.ReadAllText(target));
        Assert.Equal(target, new FileInfo(link).LinkTarget);
        Assert.Equal(2, Directory.GetFileSystemEntries(_temp.Path).Length); // no temporary left behind
    }

    [SkippableFact]
    public void A_dangling_link_is_refused()
    {
        Skip.If(OperatingSystem.IsWindows(), "symbolic links need privileges on Windows");
        var link = _temp.File("report.json");
        File.CreateSymbolicLink(link, _temp.File("nowhere/else.json"));
        var ex = Assert.Throws<PathRefusedException>(() => AtomicFile.WriteAllText(link, "{}"));
        Assert.Contains("does not exist", ex.Message);
        Assert.NotNull(new FileInfo(link).LinkTarget);
        Assert.False(Directory.Exists(_temp.File("nowhere")));
    }

    [SkippableFact]
    public void Train_report_to_a_fifo_is_refused_before_training_and_the_fifo_stays()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "mkfifo and statx are Linux here");
        var fifo = _temp.File("report.json");
        Fifos.Make(fifo);
        var run = _temp.File("run");
        var (code, _, err) = SigLip.SpecTests.Data.CliRunner.Run("train", "--report", fifo, "--skip-golden-check", "--steps", "1", "--out", run);
        Assert.Equal(1, code);
        Assert.Contains($"Refusing to write {fifo}: it is a FIFO", err);
        Assert.Equal(FileKind.Fifo, FileKinds.Of(fifo));
        Assert.False(Directory.Exists(run)); // refused before any work: no run folder
    }

    private static EvaluationReport SomeReport() =>
        new("some data", null, null, new RetrievalResult(2, 2, [new RecallAtK(1, 0.5)], [new RecallAtK(1, 1.0)]));

    [SkippableFact]
    public void An_evaluation_report_follows_the_same_rules()
    {
        // EvaluationReport.WriteJson (eval --report) had its own temporary-and-rename, which replaced a FIFO
        // with a JSON file and replaced a symbolic link instead of writing its target.
        Skip.IfNot(OperatingSystem.IsLinux(), "mkfifo and statx are Linux here");
        var fifo = _temp.File("report.json");
        Fifos.Make(fifo);
        var ex = Assert.Throws<PathRefusedException>(() => SomeReport().WriteJson(fifo));
        Assert.Contains("FIFO", ex.Message);
        Assert.Equal(FileKind.Fifo, FileKinds.Of(fifo));

        var target = _temp.File("real.json");
        File.WriteAllText(target, "old");
        var link = _temp.File("link.json");
        File.CreateSymbolicLink(link, target);
        SomeReport().WriteJson(link);
        Assert.Contains("image_to_text_recall_at_1", File.ReadAllText(target));
        Assert.Equal(target, new FileInfo(link).LinkTarget);
        Assert.Equal(3, Directory.GetFileSystemEntries(_temp.Path).Length); // no temporary left behind
    }

    [Fact]
    public void A_missing_or_regular_file_is_still_written()
    {
        var path = _temp.File("sub/new.json");
        AtomicFile.WriteAllText(path, "a");
        AtomicFile.WriteAllText(path, "b");
        Assert.Equal("b", File.ReadAllText(path));
    }
}
