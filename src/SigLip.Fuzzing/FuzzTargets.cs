using SigLip.Fuzzing.Targets;

namespace SigLip.Fuzzing;

/// <summary>Every format the fuzzer knows, by the name <c>siglip fuzz --format</c> takes.</summary>
public static class FuzzTargets
{
    /// <summary>The formats, in the order "all" runs them.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["safetensors", "config", "spiece", "captions-jsonl", "captions-tsv", "manifest", "golden-weights", "trainer-state", "png", "jpeg"];

    /// <summary>
    /// A new target for <paramref name="name"/>. <paramref name="sharedFolder"/> (../shared beside the repository)
    /// adds its fixture spiece.model as a second seed of the spiece target; without it every seed is built in code.
    /// </summary>
    public static FuzzTarget Create(string name, string? sharedFolder = null) => name switch
    {
        "safetensors" => new SafeTensorsTarget(),
        "config" => new ConfigTarget(),
        "spiece" => new SentencePieceTarget(sharedFolder is null ? null : Path.Combine(sharedFolder, "fixtures", "sentencepiece-tiny", "spiece.model")),
        "captions-jsonl" => new CaptionsTarget(tsv: false),
        "captions-tsv" => new CaptionsTarget(tsv: true),
        "manifest" => new ManifestTarget(),
        "golden-weights" => new GoldenWeightsTarget(),
        "trainer-state" => new TrainerStateTarget(),
        "png" => new ImageTarget(png: true),
        "jpeg" => new ImageTarget(png: false),
        _ => throw new ArgumentException($"Unknown fuzz format '{name}'; expected all or one of {string.Join(", ", Names)}."),
    };

    /// <summary>The formats a --format value means ("all", one name, or several separated by commas).</summary>
    public static IReadOnlyList<string> Parse(string formats)
    {
        ArgumentNullException.ThrowIfNull(formats);
        if (formats.Trim() == "all") return Names;
        var list = formats.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        foreach (var f in list)
            if (!Names.Contains(f)) throw new ArgumentException($"Unknown fuzz format '{f}'; expected all or one of {string.Join(", ", Names)}.");
        return list.Count > 0 ? list : throw new ArgumentException($"No fuzz format given; expected all or one of {string.Join(", ", Names)}.");
    }

    /// <summary>
    /// Runs each of <paramref name="formats"/> in turn, each target in its own folder under a fresh temporary
    /// folder, which is removed afterwards.
    /// </summary>
    public static IReadOnlyList<FuzzFormatResult> RunAll(IReadOnlyList<string> formats, FuzzSettings settings, string? sharedFolder = null, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(formats);
        string work = Path.Combine(Path.GetTempPath(), $"siglip-fuzz-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var results = new FuzzFormatResult[formats.Count];
        try
        {
            // The formats are independent (each target works in its own folder under `work`): one per core at a
            // time. Each case's outcome depends only on its seed, so the counts are the same in any order.
            Parallel.For(0, formats.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
            {
                using var target = Create(formats[i], sharedFolder);
                target.Prepare(work);
                results[i] = FuzzRunner.Run(target, settings, progress);
            });
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return results;
    }

    /// <summary>../shared beside the repository above <paramref name="start"/> (or SIGLIP_SHARED), when it exists; otherwise null.</summary>
    public static string? FindShared(string start)
    {
        if (Environment.GetEnvironmentVariable("SIGLIP_SHARED") is { Length: > 0 } s) return Directory.Exists(s) ? s : null;
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "SigLip.Reference.sln")))
            {
                string shared = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared"));
                return Directory.Exists(shared) ? shared : null;
            }
        return null;
    }
}
