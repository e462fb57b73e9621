using SigLip.Reference.Loss;
using SigLip.Reference.Numerics;

namespace SigLip.Reference.Models;

/// <summary>
/// Random initial parameters, deterministic for a seed on every machine (<see cref="DeterministicRandom"/>,
/// one stream drawn in <see cref="ParameterLayout"/> order). The distributions follow HF
/// transformers' <c>SiglipPreTrainedModel._init_weights</c>:
/// <list type="bullet">
/// <item>attention q/k/v/out and MLP fc1/fc2 weights, the MAP probe and in_proj_weight: Xavier uniform,
/// bound sqrt(6 / (fan_in + fan_out));</item>
/// <item>other Linear/Conv weights (patch embedding, text head, MAP out_proj): LeCun normal,
/// truncated at 2 std, std sqrt(1 / fan_in) / 0.8796 (the truncation's correction);</item>
/// <item>token embedding: normal, std sqrt(1 / H) (flax's default embedding init); vision position
/// embedding: normal, std 1 / sqrt(H); text position embedding: normal, std 1 / sqrt(H) (HF leaves
/// it at nn.Embedding's init, which its embedding rule sets the same way);</item>
/// <item>attention and in_proj biases, Linear/Conv biases: zero; MLP biases: normal, std 1e-6;
/// LayerNorm: weight 1, bias 0;</item>
/// <item>t' and b: the paper's ln 10 and -10 by default (HF's init sets both to 0).</item>
/// </list>
/// </summary>
public static class ModelInit
{
    /// <summary>The same divisor PyTorch's truncated-normal LeCun init uses: the std of N(0,1) truncated to [-2, 2].</summary>
    private const double TruncatedStdCorrection = 0.87962566103423978;

    /// <summary>
    /// Every parameter of <paramref name="config"/>, drawn as described above from one stream seeded by
    /// <paramref name="seed"/>: the same numbers on every machine and runtime. t' and b are set to
    /// <paramref name="logitScale"/> and <paramref name="logitBias"/> (the paper's ln 10 and -10 by default).
    /// </summary>
    public static NamedTensors Random(SiglipConfig config, int seed, double logitScale = SigmoidLoss.PaperInitialLogitScale, double logitBias = SigmoidLoss.PaperInitialLogitBias)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var rng = new DeterministicRandom(seed);
        var result = new NamedTensors();
        foreach (var spec in ParameterLayout.For(config))
        {
            var data = new double[spec.Size];
            Fill(data, spec, rng, logitScale, logitBias);
            result.Add(spec.Name, new Tensor(spec.Shape, data));
        }
        return result;
    }

    private static void Fill(double[] data, ParameterSpec spec, DeterministicRandom rng, double logitScale, double logitBias)
    {
        string name = spec.Name;
        var shape = spec.Shape;
        switch (spec.Kind)
        {
            case ParameterKind.Scalar:
                data[0] = name == ParameterLayout.LogitScale ? logitScale : logitBias;
                return;
            case ParameterKind.Norm:
                if (name.EndsWith(".weight", StringComparison.Ordinal)) Array.Fill(data, 1.0);
                return; // LayerNorm bias: 0
            case ParameterKind.Bias:
                if (name.Contains(".mlp.", StringComparison.Ordinal)) rng.FillGaussian(data, 1e-6);
                return; // every other bias: 0
            case ParameterKind.Embedding:
                if (name.EndsWith(".probe", StringComparison.Ordinal))
                    XavierUniform(data, fanIn: shape[1] * shape[2], fanOut: shape[0] * shape[2], rng);
                else
                    rng.FillGaussian(data, 1.0 / Math.Sqrt(shape[1])); // [rows, H]
                return;
            case ParameterKind.Weight:
                int fanIn = shape.Skip(1).Aggregate(1, (a, d) => a * d);
                int receptive = shape.Skip(2).Aggregate(1, (a, d) => a * d);
                bool xavier = name.Contains(".self_attn.", StringComparison.Ordinal)
                    || name.Contains(".mlp.", StringComparison.Ordinal)
                    || name.EndsWith(".in_proj_weight", StringComparison.Ordinal);
                if (xavier) XavierUniform(data, fanIn, shape[0] * receptive, rng);
                else LecunNormal(data, fanIn, rng);
                return;
        }
    }

    private static void XavierUniform(double[] data, int fanIn, int fanOut, DeterministicRandom rng)
    {
        double bound = Math.Sqrt(6.0 / (fanIn + fanOut));
        rng.FillUniform(data, -bound, bound);
    }

    private static void LecunNormal(double[] data, int fanIn, DeterministicRandom rng)
    {
        double std = Math.Sqrt(1.0 / fanIn) / TruncatedStdCorrection;
        for (int i = 0; i < data.Length; i++)
        {
            double z;
            do z = rng.NextGaussian(); while (Math.Abs(z) > 2.0);
            data[i] = std * z;
        }
    }
}
