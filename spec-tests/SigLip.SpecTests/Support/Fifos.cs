using System.Diagnostics;

namespace SigLip.SpecTests.Support;

/// <summary>Named pipes for the tests that check a FIFO is refused instead of read (reading one would block).</summary>
public static class Fifos
{
    /// <summary>Creates a FIFO at <paramref name="path"/> with mkfifo(1) (Linux).</summary>
    public static string Make(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        return path;
    }
}
