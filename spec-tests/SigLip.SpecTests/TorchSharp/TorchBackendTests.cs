using SigLip.Backends.TorchSharp;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;
using SigLip.Reference.Training;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.TorchSharp;

/// <summary>Starts the torch (CPU) backend, or skips the calling test (Xunit.SkippableFact) with the reason it cannot start.</summary>
internal static class TorchCpu
{
    public static IBackend Start(ITestOutputHelper output, string? dtype = null)
    {
        var provider = TorchBackends.Providers().Single(p => p.Name == TorchBackends.CpuName);
        var probe = provider.Probe();
        // Reported by the runner as Skipped (with the reason), never as a pass: callers are [SkippableFact]/[SkippableTheory].
        Skip.If(!probe.CanStart, $"backend 'torch' cannot start on this machine: {probe.Reason}");
        output.WriteLine($"backend 'torch' ({dtype ?? "default dtype"}) started");
        return provider.Start(new BackendOptions(DType: dtype is null ? null : DTypes.Parse(dtype)));
    }

    /// <summary>float32 against HF's float64: ~1000 float32 roundoffs (6e-8) relative, and an absolute floor for
    /// entries that cancel to ~0 (e.g. k_proj.bias gradients, exactly 0 in exact arithmetic). Measured worst: 3e-6 abs on
    /// logits of magnitude 9 (rel 3.4e-7), 1e-6 on hidden states, 8e-8 on the zero k_proj.bias gradients.</summary>
    public static Tolerance Float32 { get; } = new(1e-5, 1e-4);

    /// <summary>Tensor-wide relative error ||a - e|| / ||e||: bf16 keeps 8 bits (roundoff 3.9e-3), so
    /// element-wise bounds would be meaningless for small entries; a wiring bug gives errors of order 1.</summary>
    public static double RelativeNormError(Tensor actual, Tensor expected)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Size; i++)
        {
            double d = actual.Data[i] - expected.Data[i];
            diff += d * d;
            norm += expected.Data[i] * expected.Data[i];
        }
        return Math.Sqrt(diff) / Math.Max(Math.Sqrt(norm), 1e-300);
    }
}

/// <summary>The torch (CPU) backend against HF transformers' float64 numbers for the tiny fixture.</summary>
public sealed class TorchBackendTests(ITestOutputHelper output)
{
    private static readonly string[] OutputsToCheck =
    [
        OutputNames.ImageEmbeds, OutputNames.TextEmbeds, OutputNames.LogitsPerText, OutputNames.LogitsPerImage, OutputNames.Loss,
        OutputNames.VisionLastHiddenState, OutputNames.VisionPoolerOutput, OutputNames.TextLastHiddenState, OutputNames.TextPoolerOutput,
    ];

    // float64 against HF at 1e-11 + 1e-9|e| runs with the other backends in Models/HfFixtureTests
    // (every tensor of the fixture, both ways); here the float32 run at float32 tolerances.
    [SkippableTheory]
    [InlineData("float32")]
    public void Forward_outputs_and_every_gradient_match_HF(string dtype)
    {
        using var backend = TorchCpu.Start(output, dtype);
        Assert.Equal(dtype, backend.DType.Name());
        var tolerance = dtype == "float64" ? Tolerance.Float64 : TorchCpu.Float32;
        var f = TinyFixture.Instance;
        using var model = backend.CreateModel(f.Config, f.Parameters);
        var step = model.ForwardBackward(f.Batch, LossOptions.Default, collectOutputs: true);
        var failures = new List<string>();
        void Compare(string name, Tensor actual)
        {
            var c = Comparison.Of(name, actual, f.Expected[name], tolerance);
            if (!c.Passed) failures.Add(c.ToString());
        }
        foreach (var name in OutputsToCheck) Compare(name, step.Outputs[name]);
        AssertClose.Scalar(step.Loss, f.Expected[OutputNames.Loss].Data[0], tolerance, "StepResult.Loss");
        var grads = model.Gradients();
        Assert.Equal(ParameterLayout.For(f.Config).Select(s => s.Name), grads.Keys);
        foreach (var (name, g) in grads) Compare(OutputNames.GradPrefix + name, g);
        output.WriteLine($"{OutputsToCheck.Length} outputs and {grads.Count} gradients checked at {tolerance}");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [SkippableFact]
    public void BFloat16_mixed_precision_stays_within_bf16_accuracy_of_HF()
    {
        using var backend = TorchCpu.Start(output, "bfloat16");
        var f = TinyFixture.Instance;
        using var model = backend.CreateModel(f.Config, f.Parameters);
        var step = model.ForwardBackward(f.Batch, LossOptions.Default, collectOutputs: true);
        // The master weights stay float32.
        var parameters = model.GetParameters();
        Assert.Equal(f.Parameters["text_model.head.weight"].Data.Select(v => (double)(float)v), parameters["text_model.head.weight"].Data);
        var tensors = OutputsToCheck.Select(n => (n, step.Outputs[n]))
            .Concat(model.Gradients().Select(kv => (OutputNames.GradPrefix + kv.Key, kv.Value)));
        double worst = 0;
        string worstName = "";
        foreach (var (name, actual) in tensors)
        {
            var expected = f.Expected[name];
            if (expected.Data.All(v => Math.Abs(v) < 1e-12))
            {
                // Analytically zero (k_proj.bias: softmax ignores a shift shared by all keys): bf16 leaves roundoff.
                Assert.True(actual.Data.All(v => Math.Abs(v) < 1e-2), $"{name}: expected ~0, got up to {actual.Data.Max(Math.Abs):E3}");
                continue;
            }
            double e = TorchCpu.RelativeNormError(actual, expected);
            if (e > worst) (worst, worstName) = (e, name);
        }
        output.WriteLine($"worst ||a - e|| / ||e|| = {worst:E3} in {worstName}");
        Assert.True(worst < 3e-2, $"bf16 mixed precision: ||a - e|| / ||e|| = {worst:E3} in {worstName}, above 3e-2 (bf16 roundoff is 3.9e-3)");
    }

    [SkippableFact]
    public void Locked_image_tower_has_no_gradients_and_the_rest_are_unchanged()
    {
        using var backend = TorchCpu.Start(output, "float64");
        var f = TinyFixture.Instance;
        using var locked = backend.CreateModel(f.Config, f.Parameters, LockedTowers.Image);
        Assert.Equal(LockedTowers.Image, locked.Locked);
        locked.ForwardBackward(f.Batch, LossOptions.Default, collectOutputs: false);
        var grads = locked.Gradients();
        Assert.DoesNotContain(grads.Keys, n => n.StartsWith("vision_model.", StringComparison.Ordinal));
        Assert.Equal(ParameterLayout.For(f.Config).Count(s => s.Tower != Tower.Image), grads.Count);
        foreach (var (name, g) in grads)
            AssertClose.Tensor(g, f.Expected[OutputNames.GradPrefix + name], Tolerance.Float64, name);
        // A locked tower never changes under the optimizer.
        var before = locked.GetParameters();
        locked.OptimizerStep(new AdamWSettings(), 1e-2);
        var after = locked.GetParameters();
        Assert.Equal(before["vision_model.head.probe"].Data, after["vision_model.head.probe"].Data);
        Assert.NotEqual(before["text_model.head.weight"].Data, after["text_model.head.weight"].Data);
        Assert.DoesNotContain(locked.GetOptimizerState().Keys, n => n.Contains("vision_model.", StringComparison.Ordinal));
    }

    [SkippableFact]
    public void Embeddings_and_parameters_round_trip()
    {
        using var backend = TorchCpu.Start(output, "float64");
        var f = TinyFixture.Instance;
        using var model = backend.CreateModel(f.Config, f.Parameters);
        var parameters = model.GetParameters();
        Assert.Equal(f.Parameters.Keys, parameters.Keys);
        foreach (var (name, t) in f.Parameters) Assert.Equal(t.Data, parameters[name].Data);
        AssertClose.Tensor(model.EmbedImages(f.Batch.PixelValues), f.Expected[OutputNames.ImageEmbeds], Tolerance.Float64, "EmbedImages");
        AssertClose.Tensor(model.EmbedTexts(f.Batch.InputIds), f.Expected[OutputNames.TextEmbeds], Tolerance.Float64, "EmbedTexts");
    }

    [SkippableFact]
    public void AdamW_steps_match_the_reference_AdamW_and_state_round_trips()
    {
        using var backend = TorchCpu.Start(output, "float64");
        var f = TinyFixture.Instance;
        // Clipping active (the fixture's gradient norm is well above 0.5), decay on, two steps.
        var settings = new AdamWSettings(Beta1: 0.8, Beta2: 0.95, Epsilon: 1e-6, WeightDecay: 0.1, MaxGradNorm: 0.5);
        using var model = backend.CreateModel(f.Config, f.Parameters, LockedTowers.Text);
        var reference = new AdamW(AdamW.TrainableParameters(f.Config, LockedTowers.Text));
        var referenceParameters = f.Parameters.DeepClone();
        for (int step = 0; step < 2; step++)
        {
            model.ForwardBackward(f.Batch, LossOptions.Default, collectOutputs: false);
            var grads = model.Gradients();
            double expectedNorm = reference.Step(referenceParameters, grads, settings, 0.01);
            double norm = model.OptimizerStep(settings, 0.01);
            AssertClose.Scalar(norm, expectedNorm, Tolerance.Float64, $"gradient norm at step {step + 1}");
            Assert.True(norm > settings.MaxGradNorm, "the test means to exercise clipping");
        }
        var actual = model.GetParameters();
        foreach (var (name, t) in referenceParameters) AssertClose.Tensor(actual[name], t, Tolerance.Float64, name);
        var state = model.GetOptimizerState();
        var expectedState = reference.GetState();
        Assert.Equal(expectedState.Keys.OrderBy(k => k, StringComparer.Ordinal), state.Keys.OrderBy(k => k, StringComparer.Ordinal));
        foreach (var (name, t) in expectedState) AssertClose.Tensor(state[name], t, Tolerance.Float64, name);

        // A fresh model given the parameters and the state takes the same next step.
        using var resumed = backend.CreateModel(f.Config, actual, LockedTowers.Text);
        resumed.SetOptimizerState(state);
        model.ForwardBackward(f.Batch, LossOptions.Default, false);
        resumed.ForwardBackward(f.Batch, LossOptions.Default, false);
        model.OptimizerStep(settings, 0.01);
        resumed.OptimizerStep(settings, 0.01);
        var a = model.GetParameters();
        foreach (var (name, t) in resumed.GetParameters()) Assert.Equal(a[name].Data, t.Data);
    }

    [SkippableFact]
    public void Bad_parameters_and_settings_are_named_in_the_error()
    {
        using var backend = TorchCpu.Start(output, "float64");
        var f = TinyFixture.Instance;
        var wrongShape = f.Parameters.DeepClone();
        wrongShape.Set("text_model.head.bias", Tensor.Zeros(3));
        var e1 = Assert.Throws<ArgumentException>(() => backend.CreateModel(f.Config, wrongShape));
        Assert.Contains("text_model.head.bias", e1.Message);
        Assert.Contains("[3]", e1.Message);
        var missing = new NamedTensors(f.Parameters.Where(kv => kv.Key != "logit_bias"));
        Assert.Contains("logit_bias", Assert.Throws<ArgumentException>(() => backend.CreateModel(f.Config, missing)).Message);
        using var model = backend.CreateModel(f.Config, f.Parameters);
        var extra = new NamedTensors { { "vision_model.head.nonsense", Tensor.Zeros(1) } };
        Assert.Contains("vision_model.head.nonsense", Assert.Throws<ArgumentException>(() => model.SetParameters(extra)).Message);
        Assert.Throws<InvalidOperationException>(() => model.Gradients());
        var badIds = new TokenIds(1, 3, [0, 1, 9999]);
        Assert.Contains("9999", Assert.Throws<ArgumentException>(() => model.EmbedTexts(badIds)).Message);
        var provider = TorchBackends.Providers().Single(p => p.Name == TorchBackends.CpuName);
        Assert.Contains("float16", Assert.Throws<ArgumentException>(() => DTypes.Parse("float16")).Message);
    }

    [SkippableFact]
    public void Cuda_probe_says_what_was_tried_and_what_to_set()
    {
        var cuda = TorchBackends.Providers().Single(p => p.Name == TorchBackends.CudaName);
        var probe = cuda.Probe();
        output.WriteLine($"cuda: CanStart {probe.CanStart}: {probe.Reason}");
        // Reported as Skipped, never as a pass: a machine where cuda starts cannot show the cannot-start message.
        Skip.If(probe.CanStart, $"backend 'cuda' can start here ({probe.Reason}): its cannot-start message is not exercised");
        Assert.Contains("no CUDA device", probe.Reason);
        Assert.Contains(LibTorchRuntime.EnvironmentVariable, probe.Reason);
        Assert.Contains("--libtorch", probe.Reason);
        var e = Assert.Throws<BackendUnavailableException>(() => cuda.Start(new BackendOptions()));
        Assert.Contains(LibTorchRuntime.EnvironmentVariable, e.Message);
    }
}
