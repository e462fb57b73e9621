using System.Text.Json;
using SigLip.Bench.Harness;

namespace SigLip.SpecTests.Bench;

/// <summary>
/// The parts of `siglip bench` that are not timing (no timed tests here): its report keeps the JSON
/// field names earlier result files use, and `--only` picks items by words in their names.
/// </summary>
public sealed class BenchHarnessTests
{
    private static BenchReport Sample() => new(
        new BenchMachine("cpu", 2, "AVX2+FMA", "managed backend", "libtorch", "runtime", "1.0 1.0 1.0", "2.0 2.0 2.0", "env"),
        7, 2, "timing",
        [
            new BenchItem("matmul 1024x1024x1024", "float32", 12.5, 11.0, 1.136, 171.8, 195.2, "GFLOP/s >= 0.7x libtorch (ratio <= 1.43)", true, "gap", "note",
                12.9, 11.4, 12.0, 11.1, 1.081, 15.3, 5.1),
            new BenchItem("training step, built-in model, float32", "float32", 10.0, 8.0, 1.25, null, null, "time <= 2x libtorch", true, null, null,
                ManagedAllocatedBytesPerStep: 240_000, AllocationTarget: "managed < 1,000,000 bytes per step", AllocationMet: true),
        ]);

    [Fact]
    public void Report_json_keeps_the_field_names_of_earlier_results()
    {
        using var json = JsonDocument.Parse(Sample().ToJson());
        var root = json.RootElement;
        foreach (var key in new[] { "machine", "repeats", "warmup", "timing", "items" })
            Assert.True(root.TryGetProperty(key, out _), $"report field '{key}' is missing");
        foreach (var key in new[] { "cpu", "cores", "isa", "managed_kernels", "libtorch", "runtime", "load_average_start", "load_average_end", "libtorch_env" })
            Assert.True(root.GetProperty("machine").TryGetProperty(key, out _), $"machine field '{key}' is missing");
        var matmul = root.GetProperty("items")[0];
        foreach (var key in new[] { "name", "dtype", "managed_ms", "libtorch_ms", "ratio", "managed_gflops", "libtorch_gflops", "target", "met", "agreement", "note",
                     "managed_mean_ms", "libtorch_mean_ms", "managed_back_to_back_ms", "libtorch_back_to_back_ms", "ratio_back_to_back",
                     "settle_after_libtorch_ms", "settle_after_managed_ms" })
            Assert.True(matmul.TryGetProperty(key, out _), $"item field '{key}' is missing");
        Assert.Equal(1.136, matmul.GetProperty("ratio").GetDouble());
        var step = root.GetProperty("items")[1];
        Assert.Equal(240_000, step.GetProperty("managed_allocated_bytes_per_step").GetInt64());
        Assert.True(step.GetProperty("allocation_met").GetBoolean());
        Assert.False(step.TryGetProperty("managed_gflops", out _), "null fields are left out, as before");
    }

    [Fact]
    public void Report_json_reads_back_to_the_same_json()
    {
        var text = Sample().ToJson();
        Assert.Equal(text, BenchReport.FromJson(text).ToJson());
    }

    [Fact]
    public void Only_picks_items_by_any_word_in_their_names_case_insensitively()
    {
        Assert.Equal(BenchHarness.ItemNames, BenchHarness.ItemNames.Where(n => BenchHarness.Wanted(n, null)));
        Assert.Equal(["matmul 1024x1024x1024", "matmul 2048x2048x2048"], BenchHarness.ItemNames.Where(n => BenchHarness.Wanted(n, ["MatMul"])));
        Assert.Equal(["sigmoid loss fwd+bwd n=4096 d=768", "training step, built-in model, float32", "training step, built-in model, float64"],
            BenchHarness.ItemNames.Where(n => BenchHarness.Wanted(n, ["loss", "training"])));
        Assert.DoesNotContain(BenchHarness.ItemNames, n => BenchHarness.Wanted(n, ["nothing-like-this"]));
    }

    [Fact]
    public void Markdown_table_has_a_row_per_item_with_its_targets()
    {
        var lines = BenchHarness.MarkdownTable(Sample()).TrimEnd('\n').Split('\n');
        Assert.Equal(2 + 2, lines.Length);
        Assert.Contains("| matmul 1024x1024x1024 | float32 | 12.5 (172 GFLOP/s) | 11 (195 GFLOP/s) | 1.14 |", lines[2]);
        Assert.Contains("240,000 bytes/step", lines[3]);
    }
}
