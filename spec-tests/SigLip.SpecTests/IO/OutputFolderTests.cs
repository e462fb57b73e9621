using SigLip.Reference.IO;
using SigLip.SpecTests.Data;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.IO;

/// <summary>
/// Issue 15: an output folder (`train --out`, `golden generate --out`) that exists and is not a folder is
/// refused before any work, naming the option, the path and what is there. `train --out /dev/null` used to
/// run the golden check, print the settings and fail on "The file '/dev/null' already exists."
/// </summary>
public sealed class OutputFolderTests : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    [Fact]
    public void The_check_accepts_a_folder_a_new_path_and_a_link_to_a_folder_and_refuses_the_rest()
    {
        string folder = _temp.File("runs");
        Directory.CreateDirectory(folder);
        AtomicFile.CheckFolderWritable(folder, "--out");
        AtomicFile.CheckFolderWritable(_temp.File("new/deeper"), "--out");
        string file = _temp.File("notes.txt");
        File.WriteAllText(file, "mine");
        var ex = Assert.Throws<PathRefusedException>(() => AtomicFile.CheckFolderWritable(file, "--out"));
        Assert.Equal($"Refusing --out {file}: it is a regular file; --out names a folder (an existing one, or a new path that is created).", ex.Message);
        Assert.Equal("mine", File.ReadAllText(file));
        if (!OperatingSystem.IsLinux()) return;
        string link = _temp.File("link");
        File.CreateSymbolicLink(link, folder);
        AtomicFile.CheckFolderWritable(link, "--out");
        Assert.Contains("it is a character device", Assert.Throws<PathRefusedException>(() => AtomicFile.CheckFolderWritable("/dev/null", "--out")).Message);
        string dangling = _temp.File("dangling");
        File.CreateSymbolicLink(dangling, _temp.File("nowhere"));
        Assert.Contains("does not exist", Assert.Throws<PathRefusedException>(() => AtomicFile.CheckFolderWritable(dangling, "--out")).Message);
    }

    [SkippableFact]
    public void A_cycle_of_symbolic_links_is_refused_by_every_check_naming_it()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "symbolic links");
        string a = _temp.File("a"), b = _temp.File("b");
        File.CreateSymbolicLink(a, b);
        File.CreateSymbolicLink(b, a);
        Assert.Contains("it is a cycle of symbolic links", Assert.Throws<PathRefusedException>(() => AtomicFile.CheckWritable(a)).Message);
        Assert.Contains("it is a cycle of symbolic links", Assert.Throws<PathRefusedException>(() => AtomicFile.CheckFolderWritable(a, "--out")).Message);
        Assert.Contains("it is a cycle of symbolic links", Assert.Throws<PathRefusedException>(() => InputFile.CheckReadable(a, "a test file")).Message);
    }

    [Theory]
    [InlineData("train", "--steps", "1")]
    [InlineData("golden", "generate")]
    public void A_verb_refuses_an_output_folder_that_is_a_file_before_any_work(string verb, params string[] rest)
    {
        string file = _temp.File("out.txt");
        File.WriteAllText(file, "mine");
        var (code, stdout, err) = CliRunner.Run([verb, .. rest, "--out", file]);
        Assert.Equal(1, code);
        Assert.Equal($"error: Refusing --out {file}: it is a regular file; --out names a folder (an existing one, or a new path that is created).", err.Trim());
        Assert.DoesNotContain("Golden check", stdout); // refused before the backend's golden check, not after
        Assert.Equal("mine", File.ReadAllText(file));
    }
}
