namespace SigLip.Reference.IO.Golden;

/// <summary>
/// Finds the folder of golden cases, the one way every caller does (`siglip train`'s golden gate
/// and `siglip golden verify`). In this order:
/// <list type="number">
/// <item>a folder the user named (<c>--golden</c> / <c>--cases</c>); it must exist;</item>
/// <item><c>SIGLIP_GOLDEN</c>; it must exist;</item>
/// <item><c>golden/</c> beside the executable (the CLI build and the tool package ship a copy: the
/// cases of the very build that runs);</item>
/// <item><c>golden/</c> of the repository (the folder holding <c>SigLip.Reference.sln</c>) above the
/// working folder;</item>
/// <item><c>golden/</c> of the repository above the executable.</item>
/// </list>
/// A candidate of steps 3 to 5 counts only when it holds something. When none is found, the message
/// lists every place tried and what to pass instead.
/// </summary>
public static class GoldenLocator
{
    /// <summary>"SIGLIP_GOLDEN": a folder of golden cases that wins over the built-in places.</summary>
    public const string EnvironmentVariable = "SIGLIP_GOLDEN";

    /// <summary>The file that marks the repository's root.</summary>
    public const string RepositoryMarker = "SigLip.Reference.sln";

    /// <summary>
    /// The golden folder to use, looking in this process's environment, working folder and
    /// executable folder. <paramref name="optionName"/> names the option that gave
    /// <paramref name="explicitPath"/>, for messages.
    /// </summary>
    public static string Find(string? explicitPath, string optionName = "--golden") =>
        Find(explicitPath, optionName, Environment.GetEnvironmentVariable(EnvironmentVariable), Directory.GetCurrentDirectory(), AppContext.BaseDirectory);

    /// <summary>The resolution itself, with every input given (tests call it directly).</summary>
    public static string Find(string? explicitPath, string optionName, string? fromEnvironment, string workingFolder, string executableFolder)
    {
        if (!string.IsNullOrEmpty(explicitPath))
        {
            if (Directory.Exists(explicitPath)) return explicitPath;
            throw new DirectoryNotFoundException($"{optionName} '{explicitPath}': no such folder; point it at a folder of golden cases (the repository's golden/, or one case folder).");
        }
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            if (Directory.Exists(fromEnvironment)) return fromEnvironment;
            throw new DirectoryNotFoundException($"{EnvironmentVariable} '{fromEnvironment}': no such folder; set it to a folder of golden cases or unset it.");
        }
        var tried = new List<string>();
        string beside = Path.Combine(executableFolder, "golden");
        if (HasCases(beside)) return beside;
        tried.Add(beside);
        foreach (var start in new[] { workingFolder, executableFolder })
        {
            if (RepositoryGolden(start) is { } candidate && HasCases(candidate)) return candidate;
            tried.Add($"golden/ of a repository ({RepositoryMarker}) above {start}");
        }
        throw new DirectoryNotFoundException($"No golden cases found (tried {optionName}, {EnvironmentVariable}, {string.Join(", ", tried)}). " +
            $"Pass {optionName} DIR with the repository's golden/ folder, or set {EnvironmentVariable}.");
    }

    /// <summary>golden/ of the repository above <paramref name="start"/> (whether or not it exists yet), or null outside a repository.</summary>
    public static string? RepositoryGolden(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, RepositoryMarker))) return Path.Combine(dir.FullName, "golden");
        return null;
    }

    private static bool HasCases(string dir) => Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any();
}
