using SigLip.Reference.Models;

namespace SigLip.Reference.IO.Golden;

/// <summary>
/// The golden cases' own random numbers: SplitMix64 and only exact IEEE arithmetic (+, -, *, /,
/// sqrt), so the same seed gives the same bits on every machine and in any language. Written out
/// here rather than borrowed, so that no change elsewhere can move the golden cases.
/// </summary>
public sealed class GoldenRandom(ulong seed)
{
    private ulong _state = seed;

    /// <summary>The next 64 random bits (SplitMix64).</summary>
    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1), 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [-1, 1).</summary>
    public double NextSigned() => 2 * NextDouble() - 1;

    /// <summary>Uniform integer in [0, n) (the tiny modulo bias does not matter for test data).</summary>
    public int NextInt(int n) => (int)(NextUInt64() % (ulong)n);

    /// <summary>A seed for stream <paramref name="index"/> of <paramref name="seed"/>, independent of the other streams.</summary>
    public static ulong Stream(ulong seed, ulong index) => new GoldenRandom(seed ^ (index * 0xD1B54A32D192ED03UL)).NextUInt64();

    /// <summary><paramref name="count"/> values uniform in [-scale, scale).</summary>
    public double[] Signed(long count, double scale)
    {
        var v = new double[count];
        for (long i = 0; i < count; i++) v[i] = scale * NextSigned();
        return v;
    }

    /// <summary>
    /// Parameters for a golden case: every element non-trivial (no zero bias, no LayerNorm weight of
    /// exactly one), so that every gradient path is exercised, as the HF fixture's perturbation does.
    /// Each parameter draws from its own stream (seed, index in <see cref="ParameterLayout"/>), so a
    /// parameter's values do not depend on the sizes of the others.
    ///   weights:     U(-1, 1) / sqrt(fan_in)
    ///   biases:      U(-0.1, 0.1)
    ///   norms:       weight 1 + U(-0.2, 0.2), bias U(-0.1, 0.1)
    ///   embeddings:  U(-1, 1) (token, position, MAP probe)
    ///   t' and b:    the given values.
    /// </summary>
    public static NamedTensors Parameters(SiglipConfig config, ulong seed, double logitScale, double logitBias)
    {
        var result = new NamedTensors();
        var layout = ParameterLayout.For(config);
        for (int index = 0; index < layout.Count; index++)
        {
            var spec = layout[index];
            var rng = new GoldenRandom(Stream(seed, (ulong)index));
            double[] data;
            switch (spec.Kind)
            {
                case ParameterKind.Weight:
                    long fanIn = spec.Size / spec.Shape[0];
                    data = rng.Signed(spec.Size, 1 / Math.Sqrt(fanIn));
                    break;
                case ParameterKind.Bias:
                    data = rng.Signed(spec.Size, 0.1);
                    break;
                case ParameterKind.Norm:
                    data = spec.Name.EndsWith(".weight", StringComparison.Ordinal)
                        ? rng.Signed(spec.Size, 0.2).Select(x => 1 + x).ToArray()
                        : rng.Signed(spec.Size, 0.1);
                    break;
                case ParameterKind.Embedding:
                    data = rng.Signed(spec.Size, 1.0);
                    break;
                default:
                    data = [spec.Name == ParameterLayout.LogitScale ? logitScale : logitBias];
                    break;
            }
            result.Add(spec.Name, new Tensor(spec.Shape, data));
        }
        return result;
    }
}
