using SigLip.Cli;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.IO.Golden;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.TorchSharp;

/// <summary>
/// Every golden case (golden/) on every backend that can start here, through the same
/// GoldenVerifier and manifest tolerances as `siglip golden verify`, whose verdict alone decides. A
/// backend that cannot start (cuda without a GPU) makes the test Skipped, with the reason.
/// </summary>
public sealed class GoldenOnEveryBackendTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> Backends => new()
    {
        { "reference", "" },
        { "managed", "float64" },
        { "managed", "float32" },
        { "torch", "float64" },
        { "torch", "float32" },
        { "torch", "bfloat16" },
        { "cuda", "float32" },
        { "cuda", "bfloat16" },
    };

    [SkippableTheory]
    [MemberData(nameof(Backends))]
    public void Every_golden_case_passes(string backendName, string dtype)
    {
        // The CLI's registry, plus the reference backend where the CLI does not (yet) register it.
        var registry = CliBackends.Registry();
        if (!registry.Providers.Any(p => p.Name == ReferenceBackendProvider.BackendName)) registry.Register(new ReferenceBackendProvider());
        var provider = registry.Find(backendName);
        var probe = provider.Probe();
        Skip.If(!probe.CanStart, $"backend '{backendName}' cannot start on this machine: {probe.Reason}");
        using var backend = provider.Start(new BackendOptions(DType: dtype.Length == 0 ? null : DTypes.Parse(dtype)));
        var report = GoldenVerifier.Verify(backend, RepoPaths.Golden);
        output.WriteLine($"{report.Backend} on {report.Device}, {report.DType}: {report.Cases.Count} cases");
        foreach (var note in report.Notes) output.WriteLine($"note: {note}");
        Assert.True(report.Cases.Count > 0, $"no golden cases under {RepoPaths.Golden}");

        foreach (var c in report.Cases)
            output.WriteLine($"{c.Name}: {c.Status} in {c.Seconds:F2} s{(c.Problem is null ? "" : $" ({c.Problem})")}");
        Assert.True(report.Passed, $"{report.Backend} {report.DType}:\n" + string.Join("\n", report.Failures));
    }
}
