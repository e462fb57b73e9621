using System.Runtime.InteropServices;
using SigLip.Backends.Managed;
using SigLip.Backends.TorchSharp;
using TorchSharp;

namespace SigLip.Bench.Harness;

/// <summary>
/// `siglip bench`: the managed backend against the torch backend (libtorch CPU) on the same work,
/// the same data, the same dtype and the same thread count, in one process. Each item runs each
/// backend's own code: the managed kernels (<see cref="Backends.Managed.Kernels.MatMul"/>,
/// <see cref="ManagedLoss"/>, the reference's <see cref="Reference.Layers.EncoderLayer"/> on
/// <see cref="ManagedOps"/>, <see cref="ManagedBackend"/>'s model) against libtorch's matmul,
/// <see cref="TorchLoss"/>, the torch backend's <see cref="Backends.TorchSharp.Modules.SiglipEncoderLayer"/>
/// module and its model. Timing: see <see cref="Timer"/>. Ratio = managed / libtorch (lower is
/// better); every item also checks that both sides computed the same numbers.
/// </summary>
public static class BenchHarness
{
    /// <summary>The items, in the order they run; <see cref="BenchOptions.Only"/> filters them by name.</summary>
    public static IReadOnlyList<string> ItemNames { get; } =
    [
        "matmul 1024x1024x1024",
        "matmul 2048x2048x2048",
        "sigmoid loss fwd+bwd n=4096 d=768",
        "encoder layer fwd+bwd B/16 width, batch 8x196, float32",
        "encoder layer fwd+bwd B/16 width, batch 8x196, float64",
        "training step, built-in model, float32",
        "training step, built-in model, float64",
    ];

    /// <summary>Runs the items <paramref name="options"/> asks for, writing each line to <paramref name="log"/> as it is measured.</summary>
    public static BenchReport Run(BenchOptions options, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        if (options.Threads < 0) throw new ArgumentException($"The thread count must be at least 1 (or 0 for every core), got {options.Threads}.");
        int threads = options.Threads == 0 ? Environment.ProcessorCount : options.Threads;
        var settings = TimingSettings.For(options);
        var torchProblem = LibTorchRuntime.CpuProblem();
        if (torchProblem is null) torch.set_num_threads(threads);
        var machine = DescribeMachine(torchProblem, threads);
        log.WriteLine($"cpu: {machine.Cpu}, {machine.Cores} cores, {machine.Isa}");
        log.WriteLine($"managed: {machine.ManagedKernels}; libtorch: {machine.LibTorch}; {machine.Runtime}");
        log.WriteLine($"load average at start: {machine.LoadStart} (the machine may be shared: ratios are measured side by side)");
        log.WriteLine($"libtorch environment: {machine.LibTorchEnv}");
        log.WriteLine($"timing: {Timer.Describe(settings)}");
        log.WriteLine();

        var items = new List<BenchItem>();
        var context = new ItemContext(settings, torchProblem, threads);
        var workloads = new Func<BenchItem>[]
        {
            () => Items.MatMul(1024, context),
            () => Items.MatMul(2048, context),
            () => Items.Loss(4096, 768, context),
            () => Items.Layer(Reference.Backends.DType.Float32, context),
            () => Items.Layer(Reference.Backends.DType.Float64, context),
            () => Items.TrainingStep(Reference.Backends.DType.Float32, context),
            () => Items.TrainingStep(Reference.Backends.DType.Float64, context),
        };
        for (int i = 0; i < workloads.Length; i++)
        {
            if (!Wanted(ItemNames[i], options.Only)) continue;
            var item = workloads[i]();
            items.Add(item);
            log.WriteLine(Format(item));
        }
        return new BenchReport(machine with { LoadEnd = LoadAverage() }, settings.Repeats, settings.Warmup, Timer.Describe(settings), items);
    }

    /// <summary>Whether the item <paramref name="name"/> runs when only the items containing one of <paramref name="only"/> are wanted.</summary>
    public static bool Wanted(string name, IReadOnlyList<string>? only) =>
        only is null || only.Count == 0 || only.Any(w => name.Contains(w, StringComparison.OrdinalIgnoreCase));

    /// <summary>One item as the console line(s) `siglip bench` prints.</summary>
    public static string Format(BenchItem i) =>
        $"{i.Name,-58} {i.DType,-8} managed {i.ManagedMs,9:F1} ms  libtorch {(i.LibTorchMs is { } l ? $"{l,9:F1} ms" : "      n/a   ")}  ratio {(i.Ratio is { } r ? $"{r,5:F2}" : " n/a ")}" +
        (i.ManagedGflops is { } mg ? $"  ({mg:F0} vs {i.LibTorchGflops:F0} GFLOP/s)" : "") +
        (i.ManagedMeanMs is { } mm ? $"  [means {mm:F1} / {(i.LibTorchMeanMs is { } lm ? lm.ToString("F1") : "n/a")} ms]" : "") +
        (i.ManagedBackToBackMs is { } mb ? $"  [back to back {mb:F1} / {(i.LibTorchBackToBackMs is { } lb ? lb.ToString("F1") : "n/a")} ms{(i.RatioBackToBack is { } rb ? $", ratio {rb:F2}" : "")}]" : "") +
        (i.Target is null ? "" : $"  target {i.Target}: {(i.Met == true ? "met" : "MISSED")}") +
        (i.ManagedAllocatedBytesPerStep is { } bytes ? $"\n{"",-58} managed allocation: {bytes:N0} bytes per step; target {i.AllocationTarget}: {(i.AllocationMet == true ? "met" : "MISSED")}" : "") +
        (i.Agreement is null ? "" : $"\n{"",-58} agreement: {i.Agreement}") +
        (i.Note is null ? "" : $"\n{"",-58} note: {i.Note}");

    /// <summary>A markdown table of the report's items (the form docs/fast-path.md quotes).</summary>
    public static string MarkdownTable(BenchReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var lines = new List<string>
        {
            "| item | dtype | managed ms | libtorch ms | ratio | back to back (managed / libtorch, ratio) | target |",
            "|---|---|---|---|---|---|---|",
        };
        foreach (var i in report.Items)
        {
            string Ms(double? ms, double? gflops) => ms is { } v ? $"{v:0.###}" + (gflops is { } g ? $" ({g:F0} GFLOP/s)" : "") : "n/a";
            string back = i.ManagedBackToBackMs is { } mb ? $"{mb:0.###} / {(i.LibTorchBackToBackMs is { } lb ? lb.ToString("0.###") : "n/a")}{(i.RatioBackToBack is { } rb ? $", {rb:F2}" : "")}" : "";
            var targets = new List<string>();
            if (i.Target is not null) targets.Add($"{i.Target}: {(i.Met == true ? "met" : "**missed**")}");
            if (i.ManagedAllocatedBytesPerStep is { } bytes) targets.Add($"{bytes:N0} bytes/step, {i.AllocationTarget}: {(i.AllocationMet == true ? "met" : "**missed**")}");
            lines.Add($"| {i.Name} | {i.DType} | {Ms(i.ManagedMs, i.ManagedGflops)} | {Ms(i.LibTorchMs, i.LibTorchGflops)} | {(i.Ratio is { } r ? r.ToString("F2") : "n/a")} | {back} | {string.Join("; ", targets)} |");
        }
        return string.Join("\n", lines) + "\n";
    }

    // ------------------------------------------------------------------ machine

    private static BenchMachine DescribeMachine(string? torchProblem, int threads)
    {
        string cpu = "unknown";
        try
        {
            var info = File.ReadLines("/proc/cpuinfo").TakeWhile(l => l.Length > 0).ToList();
            string? Field(string key) => info.FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal) && l[key.Length..].TrimStart().StartsWith(':'))?.Split(':', 2)[1].Trim();
            cpu = Field("model name") ?? cpu;
            if (Field("cpu family") is { } family && Field("model") is { } model) cpu += $" (family {family}, model {model})";
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        var isa = new List<string>();
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported) isa.Add("AVX2");
        if (System.Runtime.Intrinsics.X86.Fma.IsSupported) isa.Add("FMA");
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) isa.Add("AVX-512F");
        if (isa.Count == 0) isa.Add(RuntimeInformation.ProcessArchitecture.ToString());
        string lib = torchProblem is null
            ? $"TorchSharp {typeof(torch).Assembly.GetName().Version} / libtorch CPU, {torch.get_num_threads()} threads"
            : $"unavailable ({torchProblem})";
        return new BenchMachine(cpu, Environment.ProcessorCount, string.Join("+", isa),
            $"managed backend ({ManagedBackend.DescribeCpu()}, {threads} threads)", lib,
            $"{RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}", LoadAverage() ?? "unknown", null, LibTorchEnvironment());
    }

    /// <summary>The OpenMP settings libtorch's libgomp read when it loaded (this process's environment, as inherited: the bench changes none of it).</summary>
    private static string LibTorchEnvironment()
    {
        var names = new[] { "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "OMP_PROC_BIND", "MKL_NUM_THREADS" };
        var set = names.Select(n => (n, v: Environment.GetEnvironmentVariable(n))).Where(p => p.v is not null).Select(p => $"{p.n}={p.v}").ToList();
        return (set.Count == 0 ? "OMP_WAIT_POLICY, GOMP_SPINCOUNT, OMP_NUM_THREADS unset: libgomp's defaults (idle workers spin, then sleep)"
                : string.Join(", ", set) + " (inherited; unchanged by the bench)")
            + "; libtorch threads set by torch.set_num_threads";
    }

    private static string? LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Trim(); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}
