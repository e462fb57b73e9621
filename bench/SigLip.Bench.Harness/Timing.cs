using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SigLip.Bench.Harness;

/// <summary>Warm-up and repeats of a run, and whether each timed call waits for the process to go idle first.</summary>
internal sealed record TimingSettings(int Warmup, int Repeats, bool Settle)
{
    public static TimingSettings For(BenchOptions options) => options.Quick ? new(1, 3, options.Settle) : new(2, 7, options.Settle);
}

/// <summary>Medians (the reported figures), means (which include GC pauses and other outliers), back-to-back medians, settle waits.</summary>
internal sealed record Timing(double Managed, double? Torch, double ManagedMean, double? TorchMean,
    double ManagedBackToBack, double? TorchBackToBack, double SettleAfterTorch, double? SettleAfterManaged);

/// <summary>
/// How the bench times: managed and libtorch repetitions alternate, so that load from other
/// processes on a shared machine hits both alike; each figure is the median of the repeats after
/// warm-up. Before each timed call the process waits until its own threads are idle
/// (<see cref="Settle"/>): libtorch's OpenMP workers (libgomp) spin for milliseconds after each op
/// and would otherwise take a core from the managed call that follows (and .NET's pool workers,
/// briefly, from libtorch's). Each side is also timed back to back (its repeats in a row, its
/// workers hot: libtorch's best case), reported beside.
/// </summary>
internal static class Timer
{
    public const int MatMulRepeatScale = 3;
    private const double SettleWindowMs = 5;
    private const double SettleBusyFraction = 0.2;
    private const double SettleMaxMs = 250;

    public static string Describe(TimingSettings s) =>
        $"warm-up {s.Warmup}, then {s.Repeats} repeats (x{MatMulRepeatScale} for matmul) alternating managed and libtorch, median; " +
        (s.Settle
            ? $"before each timed call the process waits until its own threads are idle (< {SettleBusyFraction:P0} of a core over {SettleWindowMs} ms, at most {SettleMaxMs} ms), " +
              "so neither side's idle workers (libgomp's spin after a libtorch op, .NET's pool) run during the other side's call; "
            : "--no-settle: no wait between the calls (each side's idle workers may still be spinning when the other side's call starts); ") +
        "'back to back': the same repeats of each side in a row (its workers hot)" + (s.Settle ? ", after the same wait" : "");

    /// <summary>Median milliseconds of each side: repetitions alternating between the two, each after <see cref="Settle"/>; then each side's repetitions back to back.</summary>
    public static Timing Time(Action managed, Action? libtorch, TimingSettings s, int repeatScale = 1)
    {
        int repeats = s.Repeats * repeatScale;
        for (int w = 0; w < s.Warmup; w++)
        {
            managed();
            libtorch?.Invoke();
        }
        var m = new List<double>();
        var t = new List<double>();
        var settleAfterTorch = new List<double>();
        var settleAfterManaged = new List<double>();
        for (int r = 0; r < repeats; r++)
        {
            settleAfterTorch.Add(s.Settle ? Settle() : 0);
            m.Add(Milliseconds(managed));
            if (libtorch is null) continue;
            settleAfterManaged.Add(s.Settle ? Settle() : 0);
            t.Add(Milliseconds(libtorch));
        }
        var mBack = new List<double>();
        var tBack = new List<double>();
        if (s.Settle) Settle();
        for (int r = 0; r < repeats; r++) mBack.Add(Milliseconds(managed));
        if (libtorch is not null)
        {
            if (s.Settle) Settle();
            for (int r = 0; r < repeats; r++) tBack.Add(Milliseconds(libtorch));
        }
        bool torch = libtorch is not null;
        return new Timing(Median(m), torch ? Median(t) : null, m.Average(), torch ? t.Average() : null,
            Median(mBack), torch ? Median(tBack) : null, Median(settleAfterTorch), torch ? Median(settleAfterManaged) : null);
    }

    private static double Milliseconds(Action action)
    {
        var sw = Stopwatch.StartNew();
        action();
        return sw.Elapsed.TotalMilliseconds;
    }

    /// <summary>
    /// Waits until this process's threads together use less than <see cref="SettleBusyFraction"/> of
    /// one core over a <see cref="SettleWindowMs"/> window (at most <see cref="SettleMaxMs"/>), and
    /// returns how long it waited. Idle OpenMP workers spin (libgomp's default: about 300,000 polls,
    /// milliseconds) before they sleep; on a 2-core machine that spin takes one core from whatever the
    /// process times next. Measured with the process CPU clock, which counts every thread.
    /// </summary>
    public static double Settle()
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalMilliseconds < SettleMaxMs)
        {
            double cpu0 = ProcessCpuMs(), wall0 = sw.Elapsed.TotalMilliseconds;
            Thread.Sleep(TimeSpan.FromMilliseconds(SettleWindowMs));
            double busy = (ProcessCpuMs() - cpu0) / (sw.Elapsed.TotalMilliseconds - wall0);
            if (busy < SettleBusyFraction) break;
        }
        return sw.Elapsed.TotalMilliseconds;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);

    private const int ClockProcessCpuTime = 2; // CLOCK_PROCESS_CPUTIME_ID: all threads, nanoseconds

    /// <summary>CPU milliseconds used by all of this process's threads.</summary>
    private static double ProcessCpuMs()
    {
        if (OperatingSystem.IsLinux() && ClockGetTime(ClockProcessCpuTime, out var ts) == 0)
            return ts.Seconds * 1e3 + ts.Nanoseconds / 1e6;
        // Elsewhere: the portable, coarser counter.
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime.TotalMilliseconds;
    }

    public static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }
}
