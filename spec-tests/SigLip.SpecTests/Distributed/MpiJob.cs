using System.Diagnostics;
using System.Text;

namespace SigLip.SpecTests.Distributed;

/// <summary>
/// Starts the MPI test host (spec-tests/SigLip.Mpi.TestHost) under Open MPI's mpirun, with a time
/// limit, and collects its output. Skips the calling test, saying why, where mpirun is missing or is
/// not Open MPI's.
/// </summary>
internal static class MpiJob
{
    /// <summary>
    /// The xunit collection of every test class that starts mpirun: one job at a time, so two Open MPI jobs
    /// never share the machine's cores, ports and session folders. (In one CI run, with other test classes'
    /// jobs possibly overlapping, Open MPI's own error reporting failed with "Out of resource".)
    /// </summary>
    public const string Collection = "mpirun jobs, one at a time";

    public sealed record Result(int ExitCode, bool TimedOut, TimeSpan Elapsed, string Output);

    private static readonly Lazy<(string? Path, string? SkipReason)> Mpirun = new(FindMpirun);

    /// <summary>Skips the test when this machine cannot run Open MPI jobs; returns mpirun's path.</summary>
    public static string RequireMpirun()
    {
        var (path, reason) = Mpirun.Value;
        Skip.If(path is null, reason);
        return path!;
    }

    /// <summary>
    /// mpirun [mpirunArgs] dotnet SigLip.Mpi.TestHost.dll [hostArgs]; root is allowed through the
    /// environment (OMPI_ALLOW_RUN_AS_ROOT=1, OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1). Kills the whole job
    /// when it outlives <paramref name="timeout"/> (and says so in the result).
    /// </summary>
    public static Result Run(IEnumerable<string> mpirunArgs, IEnumerable<string> hostArgs, TimeSpan timeout) =>
        RunDll(mpirunArgs, "SigLip.Mpi.TestHost.dll", hostArgs, timeout);

    /// <summary>
    /// mpirun [mpirunArgs] dotnet DLL [args], DLL built beside the tests (e.g. siglip.dll, the CLI);
    /// as <see cref="Run"/>. <paramref name="whileRunning"/>, when given, is called with mpirun's
    /// process once started (e.g. to kill a rank); the time limit counts from the start.
    /// The variables in <paramref name="environment"/> are set for mpirun, which passes them to its ranks.
    /// </summary>
    public static Result RunDll(IEnumerable<string> mpirunArgs, string dll, IEnumerable<string> args, TimeSpan timeout,
        Action<Process>? whileRunning = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var mpirun = RequireMpirun();
        var host = Path.Combine(AppContext.BaseDirectory, dll);
        Assert.True(File.Exists(host), $"{dll} is not built beside the tests: {host}");
        var hostArgs = args;
        var info = new ProcessStartInfo(mpirun)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in mpirunArgs) info.ArgumentList.Add(a);
        info.ArgumentList.Add(DotnetPath());
        info.ArgumentList.Add(host);
        foreach (var a in hostArgs) info.ArgumentList.Add(a);
        info.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        info.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        info.Environment["TERM"] = "dumb";
        info.Environment.Remove("SIGLIP_MPI_LIBRARY");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;

        var output = new StringBuilder();
        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        whileRunning?.Invoke(process);
        var left = timeout - clock.Elapsed;
        var exited = process.WaitForExit((int)Math.Max(0, left.TotalMilliseconds));
        if (!exited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        else process.WaitForExit(); // drains the output events
        clock.Stop();
        lock (output)
            return new Result(exited ? process.ExitCode : -1, !exited, clock.Elapsed, output.ToString());
    }

    /// <summary>-np W, with --oversubscribe when W exceeds this machine's cores (Open MPI refuses otherwise).</summary>
    public static List<string> Ranks(int w, bool oversubscribe = false)
    {
        var args = new List<string> { "-np", w.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (oversubscribe || w > Environment.ProcessorCount) args.Add("--oversubscribe");
        return args;
    }

    /// <summary>The dotnet host running the tests (or the one on PATH).</summary>
    public static string DotnetPath()
    {
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host)) return host;
        if (Environment.GetEnvironmentVariable("DOTNET_ROOT") is { Length: > 0 } root && File.Exists(Path.Combine(root, "dotnet")))
            return Path.Combine(root, "dotnet");
        return "dotnet";
    }

    private static (string?, string?) FindMpirun()
    {
        var path = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "mpirun"))
            .FirstOrDefault(File.Exists);
        if (path is null)
            return (null, "mpirun is not on PATH: install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin; .ci/run does this when it runs as root or has sudo)");
        try
        {
            using var version = Process.Start(new ProcessStartInfo(path, "--version") { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var text = version.StandardOutput.ReadToEnd() + version.StandardError.ReadToEnd();
            version.WaitForExit(30_000);
            if (!text.Contains("Open MPI", StringComparison.OrdinalIgnoreCase))
                return (null, $"{path} is not Open MPI's mpirun ('{text.Trim().Split('\n')[0]}'); the binding supports Open MPI only (apt-get install openmpi-bin)");
        }
        catch (Exception e)
        {
            return (null, $"{path} --version failed: {e.Message}");
        }
        return (path, null);
    }
}
