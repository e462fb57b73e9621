using System.Diagnostics;

namespace SigLip.SpecTests.Support;

/// <summary>
/// `siglip ...` in its own process, with a time limit: a command that would hang (or train for days) is killed and
/// fails the test instead of hanging CI. Standard output and standard error together.
/// </summary>
internal static class SiglipProcess
{
    public static (int ExitCode, string Output) Run(TimeSpan limit, params string[] args) =>
        RunFrom(AppContext.BaseDirectory, limit, args);

    /// <summary>`siglip ...` from the siglip.dll in <paramref name="folder"/> (a modified copy of the build output).</summary>
    public static (int ExitCode, string Output) RunFrom(string folder, TimeSpan limit, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(folder, "siglip.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"siglip {string.Join(' ', args)} did not exit within {limit.TotalSeconds} s (it hangs or works on a size it should have refused)");
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>The one "error: ..." line of a refused command (and no stack trace anywhere).</summary>
    public static string ErrorLine(string output)
    {
        Assert.DoesNotContain("   at ", output);
        return Assert.Single(output.Split('\n'), l => l.StartsWith("error:", StringComparison.Ordinal));
    }
}
