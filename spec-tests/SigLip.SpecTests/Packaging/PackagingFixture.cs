using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Xml.Linq;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Packaging;

/// <summary>The packaging tests share one `dotnet pack` (it takes about a minute): one collection, one fixture.</summary>
[CollectionDefinition(Name)]
public sealed class PackagingCollection : ICollectionFixture<PackagingFixture>
{
    public const string Name = "Packaging";
}

/// <summary>
/// Packs SigLip.Reference, SigLip.Backends.TorchSharp and the SigLip.Cli tool once, as a user would
/// (`dotnet pack` of the repository's projects), into a temporary feed folder. The nested build uses
/// its own artifacts folder (SIGLIP_ARTIFACTS) and no build servers, so it never touches the outer
/// build's output and leaves no process behind. Everything lives under one temporary folder, deleted
/// at the end; that folder also holds empty Directory.Build.props / Directory.Packages.props so that a
/// project created there sees none of the repository's (or /tmp's) build settings.
/// </summary>
public sealed class PackagingFixture : IDisposable
{
    public const string LibraryId = "SigLip.Reference";
    public const string BackendId = "SigLip.Backends.TorchSharp";
    public const string ManagedId = "SigLip.Backends.Managed";
    public const string ToolId = "SigLip.Cli";

    /// <summary>The projects packed, relative to the repository root.</summary>
    public static readonly string[] PackedProjects =
    [
        "src/SigLip.Reference/SigLip.Reference.csproj",
        "backends/SigLip.Backends.Managed/SigLip.Backends.Managed.csproj",
        "backends/SigLip.Backends.TorchSharp/SigLip.Backends.TorchSharp.csproj",
        "src/SigLip.Cli/SigLip.Cli.csproj",
    ];

    private readonly Lazy<string> _toolPath;

    public PackagingFixture()
    {
        Root = Directory.CreateTempSubdirectory("siglip-packaging-").FullName;
        Feed = Directory.CreateDirectory(Path.Combine(Root, "feed")).FullName;
        // Stop MSBuild's upward search for these files here.
        File.WriteAllText(Path.Combine(Root, "Directory.Build.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(Root, "Directory.Build.targets"), "<Project />\n");
        File.WriteAllText(Path.Combine(Root, "Directory.Packages.props"), "<Project />\n");

        // A solution filter packs the four projects in one build (SigLip.Data comes along as a reference).
        var filter = Path.Combine(Root, "packages.slnf");
        var solution = Path.Combine(RepoPaths.Root, "SigLip.Reference.sln");
        File.WriteAllText(filter,
            "{\"solution\":{\"path\":" + Json(solution) + ",\"projects\":[" +
            string.Join(",", PackedProjects.Select(p => Json(p.Replace('/', Path.DirectorySeparatorChar)))) + "]}}\n");
        var pack = Run("dotnet", ["pack", filter, "-c", "Release", "-o", Feed, "--disable-build-servers", "-nodeReuse:false"],
            Root, TimeSpan.FromMinutes(15), new Dictionary<string, string?> { ["SIGLIP_ARTIFACTS"] = Path.Combine(Root, "artifacts") });
        PackLog = pack.Describe();
        Timings.Add(("dotnet pack (4 packages)", pack.Elapsed));
        if (pack.ExitCode != 0) throw new InvalidOperationException($"dotnet pack of the repository's packages failed.\n{PackLog}");
        _toolPath = new Lazy<string>(InstallTool);
    }

    /// <summary>The temporary folder holding the feed, the artifacts and anything a test creates.</summary>
    public string Root { get; }

    /// <summary>The local package folder `dotnet pack` wrote into.</summary>
    public string Feed { get; }

    public string PackLog { get; }

    /// <summary>How long each nested step took (reported by the tests, never asserted).</summary>
    public List<(string Step, TimeSpan Elapsed)> Timings { get; } = [];

    /// <summary>The .nupkg (not .snupkg) of a package id; its version is whatever Directory.Build.props says.</summary>
    public string Package(string id) => PackageFile(id, ".nupkg");

    public string SymbolPackage(string id) => PackageFile(id, ".snupkg");

    private string PackageFile(string id, string extension)
    {
        var candidates = Directory.EnumerateFiles(Feed, id + ".*" + extension)
            .Where(f => char.IsDigit(Path.GetFileName(f)[(id.Length + 1)..][0]))   // not SigLip.Reference.Something
            .ToList();
        Assert.True(candidates.Count == 1, $"expected one {id} {extension} in {Feed}, found: {string.Join(", ", Directory.EnumerateFiles(Feed).Select(Path.GetFileName))}\n{PackLog}");
        return candidates[0];
    }

    /// <summary>The package's version, read from its nuspec.</summary>
    public string Version(string id) => (string)Metadata(Package(id)).Child("version")!;

    /// <summary>The `siglip` executable installed with `dotnet tool install --tool-path` from the feed (installed once).</summary>
    public string ToolPath => _toolPath.Value;

    private string InstallTool()
    {
        var toolDir = Path.Combine(Root, "tool");
        // Only the local folder as a source: the id cannot come from anywhere else.
        var config = Path.Combine(Root, "tool-nuget.config");
        File.WriteAllText(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{Feed}" />
              </packageSources>
            </configuration>
            """);
        var install = Run("dotnet", ["tool", "install", "--tool-path", toolDir, "--configfile", config, "--add-source", Feed, ToolId, "--version", Version(ToolId)],
            Root, TimeSpan.FromMinutes(10));
        Timings.Add(("dotnet tool install", install.Elapsed));
        Assert.True(install.ExitCode == 0, $"dotnet tool install of {ToolId} from {Feed} failed.\n{install.Describe()}");
        var exe = Path.Combine(toolDir, OperatingSystem.IsWindows() ? "siglip.exe" : "siglip");
        Assert.True(File.Exists(exe), $"dotnet tool install reported success but {exe} does not exist.\n{install.Describe()}");
        return exe;
    }

    public static XDocument Nuspec(string nupkg)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        var entry = zip.Entries.Single(e => !e.FullName.Contains('/') && e.FullName.EndsWith(".nuspec", StringComparison.OrdinalIgnoreCase));
        using var stream = entry.Open();
        return XDocument.Load(stream);
    }

    /// <summary>The nuspec's &lt;metadata&gt; element.</summary>
    public static XElement Metadata(string nupkg)
    {
        var root = Nuspec(nupkg).Root!;
        return root.Element(root.Name.Namespace + "metadata") ?? throw new InvalidDataException($"{nupkg}: the nuspec has no <metadata>:\n{root}");
    }



    public static IReadOnlyList<string> Entries(string nupkg)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        return zip.Entries.Select(e => e.FullName).ToList();
    }

    public static byte[] ReadEntry(string nupkg, string name)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        var entry = zip.GetEntry(name) ?? throw new FileNotFoundException($"{nupkg} holds no {name}; it holds: {string.Join(", ", zip.Entries.Select(e => e.FullName))}");
        using var stream = entry.Open();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    public sealed record ProcessResult(string Command, string WorkingDirectory, int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed, bool TimedOut)
    {
        /// <summary>The command, exit code and the output's tail, for failure messages.</summary>
        public string Describe(int tail = 6000) =>
            $"$ {Command}   (in {WorkingDirectory})\nexit code {ExitCode}{(TimedOut ? " (TIMED OUT, killed)" : "")} after {Elapsed.TotalSeconds:0.0} s\n" +
            $"--- stdout (last {tail} chars) ---\n{Tail(Stdout, tail)}\n--- stderr (last {tail} chars) ---\n{Tail(Stderr, tail)}";

        private static string Tail(string s, int n) => s.Length <= n ? s : "..." + s[^n..];
    }

    /// <summary>
    /// Runs a process with output captured. The environment drops what an outer `dotnet test` (MSBuild)
    /// sets for itself and the repository's own SIGLIP_* settings, so the nested command behaves as it
    /// would for a user; <paramref name="environment"/> adds or removes (null) variables.
    /// </summary>
    public static ProcessResult Run(string file, IReadOnlyList<string> args, string workingDirectory, TimeSpan timeout,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var key in psi.Environment.Keys.ToList())
            if (key.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || key.StartsWith("SIGLIP_", StringComparison.Ordinal)
                || key.Equals("DOTNET_HOST_PATH", StringComparison.Ordinal))
                psi.Environment.Remove(key);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        psi.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        psi.Environment["NO_COLOR"] = "1";
        if (environment is not null)
            foreach (var (key, value) in environment)
                if (value is null) psi.Environment.Remove(key); else psi.Environment[key] = value;

        string command = file + " " + string.Join(" ", args.Select(a => a.Contains(' ') ? $"\"{a}\"" : a));
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var watch = Stopwatch.StartNew();
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        bool exited = process.WaitForExit(timeout);
        if (!exited)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit(TimeSpan.FromSeconds(30));
        }
        else
        {
            process.WaitForExit(); // drains the asynchronous readers
        }
        watch.Stop();
        lock (stdout) lock (stderr)
            return new ProcessResult(command, workingDirectory, exited ? process.ExitCode : -1, stdout.ToString(), stderr.ToString(), watch.Elapsed, !exited);
    }

    private static string Json(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { }           // a file still held open: leave the temporary folder behind
        catch (UnauthorizedAccessException) { }
    }
}

/// <summary>
/// Nuspec elements by local name: NuGet picks the nuspec schema (namespace) by the features a package
/// uses (a tool's packageTypes need a newer one than a library's).
/// </summary>
public static class NuspecXml
{
    public static XElement? Child(this XElement element, string localName) => element.Element(element.Name.Namespace + localName);
}
