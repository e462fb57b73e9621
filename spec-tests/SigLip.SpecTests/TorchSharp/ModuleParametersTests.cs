using SigLip.Backends.TorchSharp;
using SigLip.Backends.TorchSharp.Modules;
using SigLip.Reference.Layers;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using HostTensor = SigLip.Reference.Tensor;
using NamedTensors = SigLip.Reference.NamedTensors;

namespace SigLip.SpecTests.TorchSharp;

/// <summary>
/// <see cref="ModuleParameters.Load"/> (what `siglip bench` uses to build the torch backend's encoder
/// layer from the same HF-named parameters as the reference's): each name lands in its own
/// parameter, so the module computes what the reference <see cref="EncoderLayer"/> computes; a
/// missing or misshapen parameter is refused before anything changes.
/// </summary>
public sealed class ModuleParametersTests(ITestOutputHelper output)
{
    private const int Batch = 2, Tokens = 3, Width = 8, Heads = 2, Intermediate = 12;
    private const double Epsilon = 1e-6;

    private static NamedTensors Parameters(string prefix, int seed)
    {
        var rng = new Random(seed);
        var result = new NamedTensors();
        void Add(string name, params int[] shape) =>
            result.Add(prefix + name, new HostTensor(shape, Enumerable.Range(0, shape.Aggregate(1, (a, b) => a * b)).Select(_ => 2 * rng.NextDouble() - 1).ToArray()));
        Add("layer_norm1.weight", Width); Add("layer_norm1.bias", Width);
        foreach (var p in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
        {
            Add($"self_attn.{p}.weight", Width, Width);
            Add($"self_attn.{p}.bias", Width);
        }
        Add("layer_norm2.weight", Width); Add("layer_norm2.bias", Width);
        Add("mlp.fc1.weight", Intermediate, Width); Add("mlp.fc1.bias", Intermediate);
        Add("mlp.fc2.weight", Width, Intermediate); Add("mlp.fc2.bias", Width);
        return result;
    }

    [SkippableFact]
    public void Encoder_layer_module_loaded_by_name_computes_the_reference_layer()
    {
        TorchCpu.Start(output, "float64").Dispose();
        var parameters = Parameters("enc.", seed: 5);
        var rng = new Random(6);
        var x = Enumerable.Range(0, Batch * Tokens * Width).Select(_ => 2 * rng.NextDouble() - 1).ToArray();
        var dy = Enumerable.Range(0, Batch * Tokens * Width).Select(_ => 2 * rng.NextDouble() - 1).ToArray();

        var weights = EncoderLayerWeights.From(parameters, "enc");
        var grads = new EncoderLayerWeights(new NormWeights(new double[Width], new double[Width]), AttentionWeights.Zeros(Width),
            new NormWeights(new double[Width], new double[Width]), MlpWeights.Zeros(Width, Intermediate));
        var saved = new EncoderLayerSaved(Batch, Tokens, Width, Heads, Intermediate);
        var dx = new double[x.Length];
        EncoderLayer.Forward(saved, x, weights, Batch, Tokens, Width, Heads, Intermediate, Epsilon);
        EncoderLayer.Backward(dx, grads, dy, saved, x, weights, Batch, Tokens, Width, Heads, Intermediate);

        using var module = new SiglipEncoderLayer(Width, Intermediate, Heads, Epsilon, Precision.Float64);
        module.to(ScalarType.Float64);
        ModuleParameters.Load(module, parameters, "enc.");
        using var tx = tensor(x, [Batch, Tokens, Width], ScalarType.Float64).requires_grad_();
        using var tdy = tensor(dy, [Batch, Tokens, Width], ScalarType.Float64);
        using var y = module.call(tx);
        using var loss = (y * tdy).sum();
        loss.backward();
        var named = module.named_parameters().ToDictionary(p => p.name, p => p.parameter);

        Close("output", saved.Output, y);
        Close("dx", dx, tx.grad!);
        Close("d q_proj.weight", grads.Attention.QueryWeight, named["self_attn.q_proj.weight"].grad!);
        Close("d k_proj.weight", grads.Attention.KeyWeight, named["self_attn.k_proj.weight"].grad!);
        Close("d v_proj.weight", grads.Attention.ValueWeight, named["self_attn.v_proj.weight"].grad!);
        Close("d fc1.weight", grads.Mlp.Fc1Weight, named["mlp.fc1.weight"].grad!);
        Close("d layer_norm2.weight", grads.Norm2.Weight, named["layer_norm2.weight"].grad!);
    }

    [SkippableFact]
    public void Load_refuses_a_missing_or_misshapen_parameter_and_changes_nothing()
    {
        TorchCpu.Start(output, "float64").Dispose();
        using var module = new SiglipEncoderLayer(Width, Intermediate, Heads, Epsilon, Precision.Float64);
        module.to(ScalarType.Float64);
        var good = Parameters("", seed: 7);
        ModuleParameters.Load(module, good);
        var before = Values(module);

        var e1 = Assert.Throws<ArgumentException>(() => ModuleParameters.Load(module, Parameters("", seed: 8).Where(p => p.Key != "mlp.fc2.bias").ToDictionary()));
        Assert.Contains("mlp.fc2.bias", e1.Message);

        var misshapen = Parameters("", seed: 9).ToDictionary();
        misshapen["self_attn.q_proj.weight"] = new HostTensor([Width * Width], new double[Width * Width]);
        var e2 = Assert.Throws<ArgumentException>(() => ModuleParameters.Load(module, misshapen));
        Assert.Contains("self_attn.q_proj.weight", e2.Message);

        Assert.Equal(before, Values(module));
    }

    private static List<double[]> Values(SiglipEncoderLayer module) =>
        module.named_parameters().Select(p => p.parameter.detach().contiguous().data<double>().ToArray()).ToList();

    /// <summary>The golden float64 bound, |a - e| <= 1e-11 + 1e-9 |e|, element by element.</summary>
    private static void Close(string what, double[] expected, Tensor actual)
    {
        var a = actual.detach().contiguous().data<double>().ToArray();
        Assert.Equal(expected.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
            Assert.True(Math.Abs(a[i] - expected[i]) <= 1e-11 + 1e-9 * Math.Abs(expected[i]),
                $"{what}[{i}]: torch module {a[i]:R}, reference {expected[i]:R}");
    }
}
