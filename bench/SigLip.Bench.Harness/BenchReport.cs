using System.Text.Json;
using System.Text.Json.Serialization;

namespace SigLip.Bench.Harness;

/// <summary>What a bench run is asked to do.</summary>
/// <param name="Quick">Fewer repeats (1 warm-up + 3), same sizes.</param>
/// <param name="Only">Run only the items whose name contains one of these words (case-insensitive); null: all.</param>
/// <param name="Threads">Threads for both sides (the managed backend's option and torch.set_num_threads).</param>
/// <param name="Settle">Wait until the process's threads are idle before each timed call.</param>
public sealed record BenchOptions(bool Quick = false, IReadOnlyList<string>? Only = null, int Threads = 0, bool Settle = true);

/// <summary>The machine a run measured on.</summary>
public sealed record BenchMachine(
    [property: JsonPropertyName("cpu")] string Cpu,
    [property: JsonPropertyName("cores")] int Cores,
    [property: JsonPropertyName("isa")] string Isa,
    [property: JsonPropertyName("managed_kernels")] string ManagedKernels,
    [property: JsonPropertyName("libtorch")] string LibTorch,
    [property: JsonPropertyName("runtime")] string Runtime,
    [property: JsonPropertyName("load_average_start")] string LoadStart,
    [property: JsonPropertyName("load_average_end")] string? LoadEnd,
    [property: JsonPropertyName("libtorch_env")] string LibTorchEnv);

/// <summary>One measured item. Ratio = managed / libtorch time (lower is better).</summary>
public sealed record BenchItem(
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
    [property: JsonPropertyName("settle_after_managed_ms")] double? SettleAfterManagedMs = null,
    [property: JsonPropertyName("managed_allocated_bytes_per_step")] long? ManagedAllocatedBytesPerStep = null,
    [property: JsonPropertyName("allocation_target")] string? AllocationTarget = null,
    [property: JsonPropertyName("allocation_met")] bool? AllocationMet = null);

/// <summary>A whole run.</summary>
public sealed record BenchReport(
    [property: JsonPropertyName("machine")] BenchMachine Machine,
    [property: JsonPropertyName("repeats")] int Repeats,
    [property: JsonPropertyName("warmup")] int Warmup,
    [property: JsonPropertyName("timing")] string TimingMethod,
    [property: JsonPropertyName("items")] IReadOnlyList<BenchItem> Items)
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The report as indented JSON (the fields `siglip bench --report` has always written).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>A report read back from <see cref="ToJson"/>.</summary>
    public static BenchReport FromJson(string json) =>
        JsonSerializer.Deserialize<BenchReport>(json, JsonOptions) ?? throw new ArgumentException("The bench report is empty.");
}
