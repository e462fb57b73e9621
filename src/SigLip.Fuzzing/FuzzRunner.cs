using System.Diagnostics;
using System.Text;

namespace SigLip.Fuzzing;

/// <summary>How a fuzz run goes.</summary>
/// <param name="Seed">The run's seed; each case's seed is derived from it, the format and the case index.</param>
/// <param name="Cases">Cases per format (the seeds themselves come first).</param>
/// <param name="OnlyCase">Replay just this case index.</param>
/// <param name="CaseTimeoutSeconds">A case running longer is a failure (a hang).</param>
/// <param name="FailureFolder">Where the files of failing cases are written; null: the temporary folder's siglip-fuzz-failures.</param>
/// <param name="MaxFailuresKept">Failures kept in full (with files) per format; all are counted.</param>
/// <param name="ProgressSeconds">Seconds between progress lines (0: none).</param>
/// <param name="EveryOutcome">Report every case's outcome and message through the progress callback (for replaying a few cases).</param>
public sealed record FuzzSettings(
    long Seed = 1,
    long Cases = 1000,
    long? OnlyCase = null,
    double CaseTimeoutSeconds = 20,
    string? FailureFolder = null,
    int MaxFailuresKept = 10,
    double ProgressSeconds = 10,
    bool EveryOutcome = false);

/// <summary>A case whose outcome was neither success nor one of the project's typed errors.</summary>
public sealed record FuzzFailure(
    string Format,
    long RunSeed,
    long CaseIndex,
    string ExceptionType,
    string Message,
    string StackTop,
    string CasePreview,
    string? CaseFolder,
    string ReplayCommand)
{
    /// <summary>Everything needed to reproduce it, over a few lines.</summary>
    public string Report() =>
        $"FAIL {Format} seed {RunSeed} case {CaseIndex}: {ExceptionType}: {Message}\n" +
        $"  at {StackTop}\n" +
        $"  case: {CasePreview}\n" +
        (CaseFolder is null ? "" : $"  files: {CaseFolder}\n") +
        $"  replay: {ReplayCommand}";
}

/// <summary>One format's run: outcome counts (success, or the name of each typed error), and the failures.</summary>
public sealed record FuzzFormatResult(
    string Format,
    long RunSeed,
    long Cases,
    IReadOnlyDictionary<string, long> Outcomes,
    long FailureCount,
    IReadOnlyList<FuzzFailure> Failures,
    double Seconds)
{
    public bool Passed => FailureCount == 0;
}

/// <summary>
/// Runs cases and sorts their outcomes. A case passes when the parser returns, or throws an exception
/// whose type the project declares (an assembly named SigLip.*, the fuzzer's own excepted): those are the
/// typed errors whose messages name the file and what would be right. Anything else (an exception from
/// the BCL or a library, a hang past the timeout) is a failure, reported with the seed, the case index,
/// the case's bytes and the command that replays it.
/// </summary>
public static class FuzzRunner
{
    public const string SuccessOutcome = "success";
    public const string UntypedPrefix = "UNTYPED ";
    public const string HangOutcome = "UNTYPED hang";

    /// <summary>Whether <paramref name="ex"/> is one of the project's own typed errors.</summary>
    public static bool IsProjectError(Exception ex)
    {
        string assembly = ex.GetType().Assembly.GetName().Name ?? "";
        return assembly.StartsWith("SigLip.", StringComparison.Ordinal) && assembly != typeof(FuzzRunner).Assembly.GetName().Name;
    }

    /// <summary>Runs <paramref name="target"/> (prepared) for the cases of <paramref name="settings"/>.</summary>
    public static FuzzFormatResult Run(FuzzTarget target, FuzzSettings settings, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Cases < 0) throw new ArgumentOutOfRangeException(nameof(settings), $"Cases must be non-negative, got {settings.Cases}.");
        var outcomes = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var failures = new List<FuzzFailure>();
        long failureCount = 0, done = 0;
        var clock = Stopwatch.StartNew();
        double nextProgress = settings.ProgressSeconds;
        var timeout = TimeSpan.FromSeconds(settings.CaseTimeoutSeconds);
        long first = settings.OnlyCase ?? 0, end = settings.OnlyCase is { } only ? only + 1 : settings.Cases;
        for (long index = first; index < end; index++)
        {
            FuzzCase? input = null;
            Exception? error;
            bool hung = false;
            try
            {
                input = target.MakeCase(settings.Seed, index);
                var c = input;
                var task = Task.Run(() => target.Run(c));
                try { hung = !task.Wait(timeout); }
                catch (AggregateException) { }
                error = hung ? null : task.Exception?.InnerException;
            }
            catch (Exception ex) // the mutator itself failed: a bug of the fuzzer, reported like any other
            {
                error = ex;
            }
            done++;
            string outcome = hung ? HangOutcome
                : error is null ? SuccessOutcome
                : IsProjectError(error) ? error.GetType().Name
                : UntypedPrefix + error.GetType().FullName;
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            if (settings.EveryOutcome && progress is not null)
                progress($"{target.Name} case {index}: {outcome}{(error is null ? "" : ": " + OneLine(error.Message))}");
            if (hung || (error is not null && !IsProjectError(error)))
            {
                failureCount++;
                if (failures.Count < settings.MaxFailuresKept)
                    failures.Add(Describe(target, settings, index, input, error, hung));
                if (hung) target.Abandon(); // the hung case may still write to its folder
            }
            if (progress is not null && settings.ProgressSeconds > 0 && clock.Elapsed.TotalSeconds >= nextProgress)
            {
                nextProgress = clock.Elapsed.TotalSeconds + settings.ProgressSeconds;
                progress($"{target.Name}: {done}/{end - first} cases, {failureCount} failure(s), {done / clock.Elapsed.TotalSeconds:F0} cases/s");
            }
        }
        return new FuzzFormatResult(target.Name, settings.Seed, done, outcomes, failureCount, failures, clock.Elapsed.TotalSeconds);
    }

    private static FuzzFailure Describe(FuzzTarget target, FuzzSettings settings, long index, FuzzCase? input, Exception? error, bool hung)
    {
        string? folder = null;
        string preview = "(the case could not be made)";
        if (input is not null)
        {
            var main = input.Files[0];
            preview = $"{main.Name} hex {ByteMutations.HexPrefix(main.Bytes)} text \"{ByteMutations.TextPrefix(main.Bytes)}\"";
            try
            {
                folder = Path.Combine(settings.FailureFolder ?? Path.Combine(Path.GetTempPath(), "siglip-fuzz-failures"), $"{target.Name}-seed{settings.Seed}-case{index}");
                Directory.CreateDirectory(folder);
                foreach (var f in input.Files) File.WriteAllBytes(Path.Combine(folder, f.Name), f.Bytes);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                folder = $"(not written: {ex.Message})";
            }
        }
        string stackTop = error is null ? "(no stack)" : StackTop(error);
        return new FuzzFailure(
            target.Name, settings.Seed, index,
            hung ? "hang" : error!.GetType().FullName ?? error.GetType().Name,
            hung ? $"the case ran longer than {settings.CaseTimeoutSeconds} s" : OneLine(error!.Message),
            hung ? "(still running)" : stackTop,
            preview, folder,
            $"siglip fuzz --format {target.Name} --seed {settings.Seed} --case {index}");
    }

    /// <summary>The throwing frame, and the first frame in the project's code when that is not it.</summary>
    private static string StackTop(Exception error)
    {
        var frames = (error.StackTrace ?? "").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0)
            .Select(l => l.StartsWith("at ", StringComparison.Ordinal) ? l[3..] : l).ToList();
        if (frames.Count == 0) return "(no stack)";
        var ours = frames.FirstOrDefault(f => f.StartsWith("SigLip.", StringComparison.Ordinal));
        return ours is null || ours == frames[0] ? frames[0] : $"{frames[0]}\n  at {ours}";
    }

    private static string OneLine(string s) => s.Replace("\r", "\\r").Replace("\n", "\\n");

    /// <summary>A table of outcome counts per format, then the failures kept.</summary>
    public static string Table(IReadOnlyList<FuzzFormatResult> results)
    {
        var sb = new StringBuilder();
        int w = Math.Max(8, results.Select(r => r.Format.Length).DefaultIfEmpty(0).Max());
        sb.AppendLine($"{"format".PadRight(w)}  {"cases",9}  {"seconds",8}  outcomes");
        foreach (var r in results)
        {
            string counts = string.Join(", ", r.Outcomes.OrderBy(o => o.Key.StartsWith(UntypedPrefix, StringComparison.Ordinal) ? 0 : o.Key == SuccessOutcome ? 1 : 2)
                                                           .ThenByDescending(o => o.Value).Select(o => $"{o.Key} {o.Value}"));
            sb.AppendLine($"{r.Format.PadRight(w)}  {r.Cases,9}  {r.Seconds,8:F1}  {counts}");
        }
        long failed = results.Sum(r => r.FailureCount);
        sb.AppendLine(failed == 0 ? "no untyped outcome" : $"{failed} untyped outcome(s):");
        foreach (var f in results.SelectMany(r => r.Failures)) sb.AppendLine(f.Report());
        return sb.ToString();
    }
}
