using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using SigLip.Backends.TorchSharp;
using SiglipBatch = SigLip.Reference.SiglipBatch;
using SigLip.Reference.Backends;
using SigLip.Reference.IO;
using SigLip.Reference.Models;
using SigLip.Reference.Training;
using SigLip.Reference.Layers;
using SigLip.Backends.Managed;
using SigLip.Backends.Managed.Kernels;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SigLip.Cli.Commands;

/// <summary>
/// `siglip bench [--report FILE.json] [--quick]`: the managed fast path against libtorch CPU
/// (TorchSharp, called directly) on the same work, the same data and the same dtype, in one process.
/// Managed and libtorch repetitions alternate, so that load from other processes on a shared machine
/// hits both alike; each figure is the median of the repeats after warm-up. Before each timed call
/// the process waits until its own threads are idle (<see cref="Settle"/>): libtorch's OpenMP
/// workers (libgomp) spin for milliseconds after each op and would otherwise take a core from the
/// managed call that follows (and .NET's pool workers, briefly, from libtorch's). Each side is also
/// timed back to back (its repeats in a row, its workers hot: libtorch's best case), reported beside.
/// Ratio = managed / libtorch (lower is better). Every item also checks that both sides computed
/// the same numbers.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var report = new Option<string?>("--report") { Description = "Write the results as JSON to this file (atomically)." };
        var quick = new Option<bool>("--quick") { Description = "Fewer repeats (1 warm-up + 3), same sizes: a rougher but faster run." };
        var only = new Option<string?>("--only") { Description = "Run only the items whose name contains one of these comma-separated words (e.g. matmul,loss)." };
        var noSettle = new Option<bool>("--no-settle") { Description = "Do not wait for the process's threads to go idle before each timed call (the earlier method: libtorch's spinning OpenMP workers then overlap the managed call that follows)." };
        var threads = new Option<int>("--threads") { Description = "Threads for both sides (default: every core).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var command = new Command("bench", "Measure the managed fast path against libtorch CPU (TorchSharp) on the same work, and print managed/libtorch ratios.");
        command.Options.Add(report);
        command.Options.Add(quick);
        command.Options.Add(only);
        command.Options.Add(threads);
        command.Options.Add(noSettle);
        command.SetAction(parse =>
        {
            int t = parse.GetValue(threads);
            if (t < 1) throw new ArgumentException($"--threads must be at least 1, got {t}.");
            var filter = parse.GetValue(only)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var result = Run(parse.GetValue(quick), filter, t, !parse.GetValue(noSettle), Console.Out);
            if (parse.GetValue(report) is { } path)
            {
                AtomicFile.WriteAllText(path, JsonSerializer.Serialize(result, JsonOptions));
                Console.Out.WriteLine($"report written to {path}");
            }
            return 0;
        });
        return command;
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public sealed record Machine(
        [property: JsonPropertyName("cpu")] string Cpu,
        [property: JsonPropertyName("cores")] int Cores,
        [property: JsonPropertyName("isa")] string Isa,
        [property: JsonPropertyName("managed_kernels")] string ManagedKernels,
        [property: JsonPropertyName("libtorch")] string LibTorch,
        [property: JsonPropertyName("runtime")] string Runtime,
        [property: JsonPropertyName("load_average_start")] string LoadStart,
        [property: JsonPropertyName("load_average_end")] string? LoadEnd,
        [property: JsonPropertyName("libtorch_env")] string LibTorchEnv);

    public sealed record Item(
        [property: JsonPropertyName("name")] string Name,
        [property: JsonPropertyName("dtype")] string DType,
        [property: JsonPropertyName("managed_ms")] double ManagedMs,
        [property: JsonPropertyName("libtorch_ms")] double? LibTorchMs,
        [property: JsonPropertyName("ratio")] double? Ratio,
        [property: JsonPropertyName("managed_gflops")] double? ManagedGflops,
        [property: JsonPropertyName("libtorch_gflops")] double? LibTorchGflops,
        [property: JsonPropertyName("target")] string? Target,
        [property: JsonPropertyName("met")] bool? Met,
        [property: JsonPropertyName("agreement")] string? Agreement,
        [property: JsonPropertyName("note")] string? Note,
        [property: JsonPropertyName("managed_mean_ms")] double? ManagedMeanMs = null,
        [property: JsonPropertyName("libtorch_mean_ms")] double? LibTorchMeanMs = null,
        [property: JsonPropertyName("managed_back_to_back_ms")] double? ManagedBackToBackMs = null,
        [property: JsonPropertyName("libtorch_back_to_back_ms")] double? LibTorchBackToBackMs = null,
        [property: JsonPropertyName("ratio_back_to_back")] double? RatioBackToBack = null,
        [property: JsonPropertyName("settle_after_libtorch_ms")] double? SettleAfterLibTorchMs = null,
        [property: JsonPropertyName("settle_after_managed_ms")] double? SettleAfterManagedMs = null);

    public sealed record Report(
        [property: JsonPropertyName("machine")] Machine Machine,
        [property: JsonPropertyName("repeats")] int Repeats,
        [property: JsonPropertyName("warmup")] int Warmup,
        [property: JsonPropertyName("timing")] string TimingMethod,
        [property: JsonPropertyName("items")] IReadOnlyList<Item> Items);

    private sealed record Settings(int Warmup, int Repeats, bool Settle);

    private static Report Run(bool quick, string[]? only, int threads, bool settle, TextWriter log)
    {
        var settings = quick ? new Settings(1, 3, settle) : new Settings(2, 7, settle);
        var torchProblem = LibTorchRuntime.CpuProblem();
        if (torchProblem is null) torch.set_num_threads(threads);
        var machine = DescribeMachine(torchProblem, threads);
        log.WriteLine($"cpu: {machine.Cpu}, {machine.Cores} cores, {machine.Isa}");
        log.WriteLine($"managed: {machine.ManagedKernels}; libtorch: {machine.LibTorch}; {machine.Runtime}");
        log.WriteLine($"load average at start: {machine.LoadStart} (the machine may be shared: ratios are measured side by side)");
        log.WriteLine($"libtorch environment: {machine.LibTorchEnv}");
        log.WriteLine($"timing: {TimingMethod(settings)}");
        log.WriteLine();

        var items = new List<Item>();
        bool Wanted(string name) => only is null || only.Any(w => name.Contains(w, StringComparison.OrdinalIgnoreCase));
        void Add(Item item)
        {
            items.Add(item);
            log.WriteLine(Format(item));
        }
        var workloads = new (string Name, Func<Item> Run)[]
        {
            ("matmul 1024x1024x1024", () => MatMulItem(1024, settings, torchProblem)),
            ("matmul 2048x2048x2048", () => MatMulItem(2048, settings, torchProblem)),
            ("sigmoid loss fwd+bwd n=4096 d=768", () => LossItem(4096, 768, settings, torchProblem)),
            ("encoder layer fwd+bwd B/16 width, batch 8x196", () => LayerItem<float>(settings, torchProblem, modelLayer: false, threads)),
            // The readable loops at this size take minutes: measured on the fast path only.
            ("encoder layer fwd+bwd B/16 width, batch 8x196, reference EncoderLayer",
                () => LayerItem<double>(settings, torchProblem, modelLayer: true, threads)),
            ("training step, built-in model", () => TrainingStepItem(DType.Float64, settings, torchProblem, threads)),
            ("training step, built-in model (libtorch float32)", () => TrainingStepItem(DType.Float32, settings, torchProblem, threads)),
        };
        foreach (var (name, run) in workloads)
        {
            if (!Wanted(name)) continue;
            Add(run());
        }
        return new Report(machine with { LoadEnd = LoadAverage() }, settings.Repeats, settings.Warmup, TimingMethod(settings), items);
    }

    private static string Format(Item i) =>
        $"{i.Name,-58} {i.DType,-8} managed {i.ManagedMs,9:F1} ms  libtorch {(i.LibTorchMs is { } l ? $"{l,9:F1} ms" : "      n/a   ")}  ratio {(i.Ratio is { } r ? $"{r,5:F2}" : " n/a ")}" +
        (i.ManagedGflops is { } mg ? $"  ({mg:F0} vs {i.LibTorchGflops:F0} GFLOP/s)" : "") +
        (i.ManagedMeanMs is { } mm ? $"  [means {mm:F1} / {(i.LibTorchMeanMs is { } lm ? lm.ToString("F1") : "n/a")} ms]" : "") +
        (i.ManagedBackToBackMs is { } mb ? $"  [back to back {mb:F1} / {(i.LibTorchBackToBackMs is { } lb ? lb.ToString("F1") : "n/a")} ms{(i.RatioBackToBack is { } rb ? $", ratio {rb:F2}" : "")}]" : "") +
        (i.Target is null ? "" : $"  target {i.Target}: {(i.Met == true ? "met" : "MISSED")}") +
        (i.Agreement is null ? "" : $"\n{"",-58} agreement: {i.Agreement}") +
        (i.Note is null ? "" : $"\n{"",-58} note: {i.Note}");

    // ------------------------------------------------------------------ timing

    private static string TimingMethod(Settings s) =>
        $"warm-up {s.Warmup}, then {s.Repeats} repeats (x{MatMulRepeatScale} for matmul) alternating managed and libtorch, median; " +
        (s.Settle
            ? $"before each timed call the process waits until its own threads are idle (< {SettleBusyFraction:P0} of a core over {SettleWindowMs} ms, at most {SettleMaxMs} ms), " +
              "so neither side's idle workers (libgomp's spin after a libtorch op, .NET's pool) run during the other side's call; "
            : "--no-settle: no wait between the calls (each side's idle workers may still be spinning when the other side's call starts); ") +
        "'back to back': the same repeats of each side in a row (its workers hot)" + (s.Settle ? ", after the same wait" : "");

    /// <summary>
    /// Median milliseconds of each side: repetitions alternating between the two, each after
    /// <see cref="Settle"/>; then each side's repetitions back to back.
    /// </summary>
    private static Timing Time(Action managed, Action? libtorch, Settings s, int repeatScale = 1)
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

    /// <summary>Medians (the reported figures), means (which include GC pauses and other outliers), back-to-back medians, settle waits.</summary>
    private sealed record Timing(double Managed, double? Torch, double ManagedMean, double? TorchMean,
        double ManagedBackToBack, double? TorchBackToBack, double SettleAfterTorch, double? SettleAfterManaged);

    // ------------------------------------------------------------------ settling

    private const int MatMulRepeatScale = 3;
    private const double SettleWindowMs = 5;
    private const double SettleBusyFraction = 0.2;
    private const double SettleMaxMs = 250;

    /// <summary>
    /// Waits until this process's threads together use less than <see cref="SettleBusyFraction"/> of
    /// one core over a <see cref="SettleWindowMs"/> window (at most <see cref="SettleMaxMs"/>), and
    /// returns how long it waited. Idle OpenMP workers spin (libgomp's default: about 300,000 polls,
    /// milliseconds) before they sleep; on a 2-core machine that spin takes one core from whatever the
    /// process times next. Measured with the process CPU clock, which counts every thread.
    /// </summary>
    private static double Settle()
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

    private static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }

    private static Item Make(string name, string dtype, Timing ms, string? target, Func<double, bool>? meets,
        string? agreement, string? note, double? flops = null)
    {
        double? ratio = ms.Torch is { } t ? ms.Managed / t : null;
        double? ratioBack = ms.TorchBackToBack is { } tb ? ms.ManagedBackToBack / tb : null;
        return new Item(name, dtype, Round(ms.Managed), ms.Torch is { } tt ? Round(tt) : null, ratio is { } r ? Math.Round(r, 3) : null,
            flops is { } f ? Math.Round(f / ms.Managed / 1e6, 1) : null,
            flops is { } f2 && ms.Torch is { } t2 ? Math.Round(f2 / t2 / 1e6, 1) : null,
            target, ratio is { } r2 && meets is not null ? meets(r2) : null, agreement, note,
            Round(ms.ManagedMean), ms.TorchMean is { } tm ? Round(tm) : null,
            Round(ms.ManagedBackToBack), ms.TorchBackToBack is { } tb2 ? Round(tb2) : null, ratioBack is { } rb ? Math.Round(rb, 3) : null,
            ms.SettleAfterTorch > 0 ? Round(ms.SettleAfterTorch) : null, ms.SettleAfterManaged is { } sm && sm > 0 ? Round(sm) : null);
    }

    private static double Round(double ms) => Math.Round(ms, ms < 10 ? 3 : 1);

    // ------------------------------------------------------------------ data

    private static float[] RandomFloats(int count, int seed, double scale = 1.0)
    {
        // Bench data only: a seeded generator keeps runs comparable.
        var rng = new Random(seed);
        var a = new float[count];
        for (int i = 0; i < count; i++) a[i] = (float)(scale * (2 * rng.NextDouble() - 1));
        return a;
    }

    private static T[] Convert<T>(float[] a) where T : unmanaged =>
        typeof(T) == typeof(float) ? (T[])(object)a : (T[])(object)a.Select(v => (double)v).ToArray();

    private static Tensor ToTorch<T>(T[] data, params long[] shape) where T : unmanaged =>
        typeof(T) == typeof(float) ? torch.tensor((float[])(object)data, shape) : torch.tensor((double[])(object)data, shape);

    private static double[] FromTorch(Tensor t) =>
        t.dtype == ScalarType.Float32 ? t.contiguous().data<float>().ToArray().Select(v => (double)v).ToArray() : t.contiguous().data<double>().ToArray();

    private static double[] ToDoubles<T>(T[] a) where T : unmanaged =>
        typeof(T) == typeof(float) ? ((float[])(object)a).Select(v => (double)v).ToArray() : (double[])(object)a;

    /// <summary>max |a - b| / max |b|: how far the two sides' results are apart.</summary>
    private static double RelativeGap(double[] a, double[] b)
    {
        double gap = 0, scale = 0;
        for (int i = 0; i < a.Length; i++)
        {
            gap = Math.Max(gap, Math.Abs(a[i] - b[i]));
            scale = Math.Max(scale, Math.Abs(b[i]));
        }
        return scale == 0 ? gap : gap / scale;
    }

    // ------------------------------------------------------------------ items

    private static Item MatMulItem(int n, Settings s, string? torchProblem)
    {
        string name = $"matmul {n}x{n}x{n}";
        var a = RandomFloats(n * n, 1);
        var b = RandomFloats(n * n, 2);
        var c = new float[n * n];
        void Managed() => MatMul.AB(c, a, b, n, n, n);
        double flops = 2.0 * n * n * n;
        if (torchProblem is not null)
            return Make(name, "float32", Time(Managed, null, s, MatMulRepeatScale), null, null, null, $"libtorch unavailable: {torchProblem}", flops);
        using var ta = ToTorch(a, n, n);
        using var tb = ToTorch(b, n, n);
        void Torch()
        {
            using var scope = torch.NewDisposeScope();
            _ = ta.matmul(tb);
        }
        var ms = Time(Managed, Torch, s, MatMulRepeatScale);
        string agreement;
        using (var scope = torch.NewDisposeScope())
            agreement = $"max|managed - libtorch| / max|libtorch| = {RelativeGap(ToDoubles(c), FromTorch(ta.matmul(tb))):E1}";
        return Make(name, "float32", ms, "GFLOP/s >= 0.7x libtorch (ratio <= 1.43)", r => r <= 1 / 0.7, agreement, null, flops);
    }

    private static Item LossItem(int n, int d, Settings s, string? torchProblem)
    {
        string name = $"sigmoid loss fwd+bwd n={n} d={d}";
        double logitScale = Math.Log(10), logitBias = -10;
        // Unnormalised embeddings in; the L2 normalisation and its backward are part of the work on both sides.
        var xr = RandomFloats(n * d, 3);
        var yr = RandomFloats(n * d, 4);
        float[] x = new float[n * d], y = new float[n * d], xNorms = new float[n], yNorms = new float[n];
        float[] dx = new float[n * d], dy = new float[n * d], dxr = new float[n * d], dyr = new float[n * d];
        SigmoidLossValue value = new(0, 0, 0);
        void Managed()
        {
            L2Normalize.Forward(x, xNorms, xr, n, d, 0f);
            L2Normalize.Forward(y, yNorms, yr, n, d, 0f);
            Array.Clear(dx); Array.Clear(dy); Array.Clear(dxr); Array.Clear(dyr);
            value = SigmoidLossKernels.ForwardBackward(dx, dy, x, y, n, d, logitScale, logitBias);
            L2Normalize.Backward(dxr, dx, x, xNorms, n, d);
            L2Normalize.Backward(dyr, dy, y, yNorms, n, d);
        }
        if (torchProblem is not null)
            return Make(name, "float32", Time(Managed, null, s), null, null, null, $"libtorch unavailable: {torchProblem}");
        using var tx = ToTorch(xr, n, d).requires_grad_();
        using var ty = ToTorch(yr, n, d).requires_grad_();
        using var tScale = torch.tensor(new[] { (float)logitScale }).requires_grad_();
        using var tBias = torch.tensor(new[] { (float)logitBias }).requires_grad_();
        using var signs = 2 * torch.eye(n, dtype: ScalarType.Float32) - 1;   // z: made once, outside the timing
        double torchLoss = 0;
        void Torch()
        {
            using var scope = torch.NewDisposeScope();
            foreach (var p in new[] { tx, ty, tScale, tBias }) p.grad?.zero_();
            var xn = tx / tx.norm(1, keepdim: true);
            var yn = ty / ty.norm(1, keepdim: true);
            var logits = xn.matmul(yn.t()) * tScale.exp() + tBias;
            var loss = -F.logsigmoid(signs * logits).sum() / n;
            loss.backward();
            torchLoss = loss.item<float>();
        }
        var ms = Time(Managed, Torch, s);
        string agreement = $"loss {value.Loss:G6} vs {torchLoss:G6}; dL/dx max rel gap {RelativeGap(ToDoubles(dxr), FromTorch(tx.grad!)):E1}; " +
            $"dL/dt' {value.DLogitScale:G5} vs {tScale.grad!.item<float>():G5}; dL/db {value.DLogitBias:G5} vs {tBias.grad!.item<float>():G5}";
        return Make(name, "float32", ms, "time <= 1.5x libtorch", r => r <= 1.5, agreement,
            "managed: L2Normalize + SigmoidLossKernels (logits in slabs of <= 2^20 elements); libtorch: the dense loss with autograd");
    }

    private static Item LayerItem<T>(Settings s, string? torchProblem, bool modelLayer, int threads) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        const int batch = 8, tokens = 196, width = 768, heads = 12, intermediate = 3072;
        string dtype = typeof(T) == typeof(float) ? "float32" : "float64";
        string name = modelLayer ? "encoder layer fwd+bwd B/16 width, batch 8x196, reference EncoderLayer" : "encoder layer fwd+bwd B/16 width, batch 8x196";
        int rows = batch * tokens;
        int seed = 10;
        float[] W(int count, double scale) => RandomFloats(count, seed++, scale);
        float[] Ones(int count) => Enumerable.Repeat(1f, count).ToArray();
        float[] Zero(int count) => new float[count];
        double ws = 1 / Math.Sqrt(width), wi = 1 / Math.Sqrt(intermediate);
        var f = new[]
        {
            Ones(width), Zero(width), W(width * width, ws), W(width, 0.02), W(width * width, ws), W(width, 0.02),
            W(width * width, ws), W(width, 0.02), W(width * width, ws), W(width, 0.02), Ones(width), Zero(width),
            W(intermediate * width, ws), W(intermediate, 0.02), W(width * intermediate, wi), W(width, 0.02),
        };
        var arrays = f.Select(Convert<T>).ToArray();
        var x = Convert<T>(RandomFloats(rows * width, 30));
        var dyArr = Convert<T>(RandomFloats(rows * width, 31));
        var dx = new T[rows * width];
        // What the agreement check reads from the managed side after a step: dx, dW(fc1), dW(q).
        T[] gradFc1, gradQuery;
        Action managedStep;
        string managedNote;
        if (!modelLayer)
        {
            var weights = new EncoderLayerArrays<T>(arrays[0], arrays[1], arrays[2], arrays[3], arrays[4], arrays[5], arrays[6], arrays[7],
                arrays[8], arrays[9], arrays[10], arrays[11], arrays[12], arrays[13], arrays[14], arrays[15]);
            var layer = new FastEncoderLayer<T>(weights, batch, tokens, width, heads, intermediate, 1e-6);
            (gradFc1, gradQuery) = (layer.Gradients.Fc1Weight, layer.Gradients.QueryWeight);
            managedStep = () =>
            {
                foreach (var g in layer.Gradients.All()) Array.Clear(g);
                Array.Clear(dx);
                layer.Forward(x);
                layer.Backward(dyArr, x, dx);
            };
            managedNote = "managed: FastEncoderLayer (fast kernels, buffers reused)";
        }
        else
        {
            // The model's own layer (Layers/EncoderLayer, float64) on the managed backend's operations.
            var ops = new ManagedOps(DType.Float64, threads);
            if (typeof(T) != typeof(double)) throw new InvalidOperationException("The reference EncoderLayer is float64 only.");
            var d = arrays.Cast<double[]>().ToArray();
            var reference = new EncoderLayerWeights(new NormWeights(d[0], d[1]),
                new AttentionWeights(d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9]), new NormWeights(d[10], d[11]), new MlpWeights(d[12], d[13], d[14], d[15]));
            var grads = new EncoderLayerWeights(new NormWeights(new double[width], new double[width]), AttentionWeights.Zeros(width),
                new NormWeights(new double[width], new double[width]), MlpWeights.Zeros(width, intermediate));
            var gradArrays = new[] { grads.Norm1.Weight, grads.Norm1.Bias, grads.Attention.QueryWeight, grads.Attention.QueryBias, grads.Attention.KeyWeight,
                grads.Attention.KeyBias, grads.Attention.ValueWeight, grads.Attention.ValueBias, grads.Attention.OutWeight, grads.Attention.OutBias,
                grads.Norm2.Weight, grads.Norm2.Bias, grads.Mlp.Fc1Weight, grads.Mlp.Fc1Bias, grads.Mlp.Fc2Weight, grads.Mlp.Fc2Bias };
            var saved = new EncoderLayerSaved(batch, tokens, width, heads, intermediate);
            var (xd, dyd, dxd) = ((double[])(object)x, (double[])(object)dyArr, (double[])(object)dx);
            (gradFc1, gradQuery) = ((T[])(object)grads.Mlp.Fc1Weight, (T[])(object)grads.Attention.QueryWeight);
            managedStep = () =>
            {
                foreach (var g in gradArrays) Array.Clear(g);
                Array.Clear(dxd);
                EncoderLayer.Forward(saved, xd, reference, batch, tokens, width, heads, intermediate, 1e-6, ops);
                EncoderLayer.Backward(dxd, grads, dyd, saved, xd, reference, batch, tokens, width, heads, intermediate, ops);
            };
            managedNote = $"managed: the reference's Layers/EncoderLayer on the managed backend's operations ({ops.Name}), saved activations allocated once";
        }
        void Managed() => managedStep();
        if (torchProblem is not null)
            return Make(name, dtype, Time(Managed, null, s), null, null, null, $"libtorch unavailable: {torchProblem}");

        var tw = arrays.Select((a, i) => (i is 2 or 4 or 6 or 8) ? ToTorch(a, width, width)
            : i == 12 ? ToTorch(a, intermediate, width) : i == 14 ? ToTorch(a, width, intermediate) : ToTorch(a, a.Length)).ToArray();
        foreach (var t in tw) t.requires_grad_();
        using var tx = ToTorch(x, batch, tokens, width).requires_grad_();
        using var tdy = ToTorch(dyArr, batch, tokens, width);
        int hd = width / heads;
        void Torch()
        {
            using var scope = torch.NewDisposeScope();
            foreach (var p in tw.Append(tx)) p.grad?.zero_();
            var h = F.layer_norm(tx, [width], tw[0], tw[1], 1e-6);
            Tensor Heads(Tensor t) => t.view(batch, tokens, heads, hd).transpose(1, 2);
            var q = Heads(F.linear(h, tw[2], tw[3]));
            var k = Heads(F.linear(h, tw[4], tw[5]));
            var v = Heads(F.linear(h, tw[6], tw[7]));
            var ctx = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, tokens, width);
            var r = tx + F.linear(ctx, tw[8], tw[9]);
            var h2 = F.layer_norm(r, [width], tw[10], tw[11], 1e-6);
            var y = r + F.linear(F.gelu(F.linear(h2, tw[12], tw[13]), TorchSharp.Modules.GELU.Approximate.tanh), tw[14], tw[15]);
            (y * tdy).sum().backward();
        }
        try
        {
            var ms = Time(Managed, Torch, s);
            string agreement = $"dx max rel gap {RelativeGap(ToDoubles(dx), FromTorch(tx.grad!)):E1}; " +
                $"dW(fc1) {RelativeGap(ToDoubles(gradFc1), FromTorch(tw[12].grad!)):E1}; " +
                $"dW(q) {RelativeGap(ToDoubles(gradQuery), FromTorch(tw[2].grad!)):E1}";
            return Make(name, dtype, ms, null, null, agreement,
                managedNote + "; libtorch: functional ops + scaled_dot_product_attention + autograd");
        }
        finally
        {
            foreach (var t in tw) t.Dispose();
        }
    }

    /// <summary>
    /// One step of `siglip train`'s default recipe (BuiltInRecipe: its config, batch size and AdamW
    /// settings) on one fixed batch: ForwardBackward + OptimizerStep through the backend contract.
    /// The reference backend computes in float64 only; libtorch runs in <paramref name="torchDType"/>.
    /// </summary>
    private static Item TrainingStepItem(DType torchDType, Settings s, string? torchProblem, int threads)
    {
        string name = torchDType == DType.Float64 ? "training step, built-in model" : "training step, built-in model (libtorch float32)";
        var config = BuiltInRecipe.Config();
        var recipe = BuiltInRecipe.Settings;
        var parameters = ModelInit.Random(config, recipe.Seed);
        SiglipBatch batch;
        using (var stream = new BatchStream(BuiltInRecipe.TrainData(), BuiltInRecipe.Tokenizer(), recipe.Seed, recipe.BatchSize,
                   config.Text.MaxPositionEmbeddings, config.Vision.NumChannels, config.Vision.ImageSize))
            batch = stream.Next();
        using var managedBackend = new ManagedBackendProvider().Start(new BackendOptions(DType: DType.Float64, Threads: threads));
        using var managed = managedBackend.CreateModel(config, parameters);
        double managedLoss = 0, torchLoss = 0;
        void Managed()
        {
            managedLoss = managed.ForwardBackward(batch, LossOptions.Default, collectOutputs: false).Loss;
            managed.OptimizerStep(recipe.Optimizer ?? new AdamWSettings(), recipe.LearningRate);
        }
        string what = $"batch {recipe.BatchSize}, width {config.Vision.HiddenSize}, {config.Vision.NumHiddenLayers}+{config.Text.NumHiddenLayers} layers, " +
            $"{config.Vision.ImageSize}px/{config.Vision.PatchSize}, text {config.Text.MaxPositionEmbeddings}; managed = managed backend (float64, {threads} threads)";
        if (torchProblem is not null)
            return Make(name, "float64", Time(Managed, null, s), null, null, null, $"libtorch unavailable: {torchProblem}; {what}");
        using var torchBackend = TorchBackends.Providers().First(p => p.Name == TorchBackends.CpuName).Start(new BackendOptions(DType: torchDType));
        using var libtorch = torchBackend.CreateModel(config, parameters);
        void Torch()
        {
            torchLoss = libtorch.ForwardBackward(batch, LossOptions.Default, collectOutputs: false).Loss;
            libtorch.OptimizerStep(recipe.Optimizer ?? new AdamWSettings(), recipe.LearningRate);
        }
        // Agreement first, on the first step from identical parameters.
        Managed();
        Torch();
        string agreement = $"first-step loss {managedLoss:R} vs {torchLoss:R}";
        var ms = Time(Managed, Torch, s);
        string dtype = torchDType == DType.Float64 ? "float64" : "float64 vs float32";
        return Make(name, dtype, ms, torchDType == DType.Float64 ? "time <= 2x libtorch" : null, torchDType == DType.Float64 ? r => r <= 2 : null, agreement, what);
    }

    // ------------------------------------------------------------------ machine

    private static Machine DescribeMachine(string? torchProblem, int threads)
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
        return new Machine(cpu, Environment.ProcessorCount, string.Join("+", isa),
            $"Vector256+FMA kernels ({ManagedBackend.DescribeCpu() + $", {threads} threads"})", lib,
            $"{RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}", LoadAverage() ?? "unknown", null, LibTorchEnvironment());
    }

    /// <summary>
    /// The OpenMP settings libtorch's libgomp read when it loaded (this process's environment, as
    /// inherited: the bench changes none of it).
    /// </summary>
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
