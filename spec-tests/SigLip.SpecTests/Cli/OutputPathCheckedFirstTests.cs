using SigLip.SpecTests.Data;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Cli;

/// <summary>
/// golden verify, golden compare, bench and embed refuse a bad output path (here a folder, or a dangling
/// symbolic link) before their work, as train, eval and explain do, instead of failing at the end. Each test
/// gives an input that would fail (or a bench that would print its machine lines) if the work started first:
/// the one-line refusal of the output path is what comes out, and the path is left as it was.
/// </summary>
public sealed class OutputPathCheckedFirstTests : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private string Folder()
    {
        string dir = _temp.File("out-folder");
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static void RefusedFirst(string path, (int ExitCode, string Out, string Err) run)
    {
        Assert.Equal(1, run.ExitCode);
        string err = run.Err.TrimEnd();
        Assert.Contains($"Refusing to write {path}", err);
        Assert.DoesNotContain('\n', err); // only the refusal: nothing else ran and reported first
    }

    [Fact]
    public void Golden_verify_refuses_a_folder_as_its_report_before_looking_for_cases()
    {
        string report = Folder();
        RefusedFirst(report, CliRunner.Run("golden", "verify", "--cases", _temp.File("no-cases"), "--report", report));
        Assert.Empty(Directory.GetFileSystemEntries(report));
    }

    [Fact]
    public void Golden_compare_refuses_a_folder_as_its_report_before_reading_the_case()
    {
        string report = Folder();
        RefusedFirst(report, CliRunner.Run("golden", "compare", "--case", _temp.File("no-case"), "--actual", _temp.File("no-dump.safetensors"), "--dtype", "float64", "--report", report));
        Assert.Empty(Directory.GetFileSystemEntries(report));
    }

    [Fact]
    public void Embed_refuses_a_folder_as_its_output_before_loading_the_checkpoint()
    {
        string output = Folder();
        RefusedFirst(output, CliRunner.Run("embed", "--checkpoint", _temp.File("no-checkpoint"), "--texts", "a cat", "--out", output));
        Assert.Empty(Directory.GetFileSystemEntries(output));
    }

    [SkippableFact]
    public void Bench_refuses_a_dangling_link_as_its_report_before_measuring()
    {
        Skip.If(OperatingSystem.IsWindows(), "symbolic links need privileges on Windows");
        string report = _temp.File("report.json");
        string nowhere = _temp.File("nowhere/report.json");
        File.CreateSymbolicLink(report, nowhere);
        // --only with no matching item: started first, the bench would still describe the machine on standard output.
        var run = CliRunner.Run("bench", "--quick", "--only", "no-such-item", "--report", report);
        RefusedFirst(report, run);
        Assert.Equal("", run.Out);
        Assert.Equal(nowhere, new FileInfo(report).LinkTarget);
        Assert.False(Directory.Exists(_temp.File("nowhere")));
    }
}
