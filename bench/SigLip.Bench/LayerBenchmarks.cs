using BenchmarkDotNet.Attributes;
using SigLip.Backends.Managed;
using SigLip.Backends.Managed.Kernels;
using SigLip.Reference.Backends;
using SigLip.Reference.Layers;

namespace SigLip.Bench;

/// <summary>
/// One B/16-width encoder layer (768 wide, 12 heads, MLP 3072) forward+backward: the reference's
/// <see cref="EncoderLayer"/> on the managed backend's operations (<see cref="ManagedOps"/>) in float32
/// and float64, activations and scratch allocated once; and the element-wise kernels against the
/// reference's readable loops. MemoryDiagnoser shows what a call allocates.
/// </summary>
[MemoryDiagnoser]
public class LayerBenchmarks
{
    [Params(2)]
    public int Batch { get; set; }

    private const int Tokens = 196, Width = 768, Heads = 12, Intermediate = 3072;
    private readonly ManagedOps ops32 = new(DType.Float32);
    private readonly ManagedOps ops64 = new(DType.Float64);
    private EncoderLayerWeights weights = null!, grads = null!;
    private EncoderLayerSaved saved = null!;
    private EncoderLayerScratch scratch = null!;
    private double[] x = [], dy = [], dx = [];
    private double[] g = [], gOut = [], gIn = [], ln = [], lnOut = [], mean = [], rstd = [], w = [], b = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(3);
        double[] R(int n, double s) => Enumerable.Range(0, n).Select(_ => s * (2 * rng.NextDouble() - 1)).ToArray();
        double ws = 1 / Math.Sqrt(Width), wi = 1 / Math.Sqrt(Intermediate);
        weights = new EncoderLayerWeights(
            new NormWeights(R(Width, 0.1).Select(v => 1 + v).ToArray(), R(Width, 0.1)),
            new AttentionWeights(R(Width * Width, ws), R(Width, 0.02), R(Width * Width, ws), R(Width, 0.02),
                R(Width * Width, ws), R(Width, 0.02), R(Width * Width, ws), R(Width, 0.02)),
            new NormWeights(R(Width, 0.1).Select(v => 1 + v).ToArray(), R(Width, 0.1)),
            new MlpWeights(R(Intermediate * Width, ws), R(Intermediate, 0.02), R(Width * Intermediate, wi), R(Width, 0.02)));
        grads = new EncoderLayerWeights(new NormWeights(new double[Width], new double[Width]), AttentionWeights.Zeros(Width),
            new NormWeights(new double[Width], new double[Width]), MlpWeights.Zeros(Width, Intermediate));
        int rows = Batch * Tokens;
        saved = new EncoderLayerSaved(Batch, Tokens, Width, Heads, Intermediate);
        scratch = new EncoderLayerScratch(rows, Width, Intermediate);
        x = R(rows * Width, 1); dy = R(rows * Width, 1); dx = new double[rows * Width];
        g = R(rows * Intermediate, 3);
        gOut = new double[g.Length]; gIn = new double[g.Length];
        ln = R(rows * Width, 2); lnOut = new double[ln.Length];
        mean = new double[rows]; rstd = new double[rows];
        w = Enumerable.Repeat(1.0, Width).ToArray(); b = new double[Width];
    }

    private void Layer(ManagedOps ops)
    {
        // Gradients accumulate; their size does not change the work, so they are not cleared between calls.
        EncoderLayer.Forward(saved, x, weights, Batch, Tokens, Width, Heads, Intermediate, 1e-6, ops);
        EncoderLayer.Backward(dx, grads, dy, saved, x, weights, Batch, Tokens, Width, Heads, Intermediate, scratch, ops);
    }

    [Benchmark] public void EncoderLayer_managed_float32_forward_backward() => Layer(ops32);
    [Benchmark] public void EncoderLayer_managed_float64_forward_backward() => Layer(ops64);

    [Benchmark] public void Gelu_float64_managed() => GeluKernels.Forward(gOut, g, g.Length);
    [Benchmark] public void Gelu_float64_reference() => Gelu.Forward(gOut, g, g.Length);
    [Benchmark] public void GeluBackward_float64_managed() => GeluKernels.Backward(gIn, gOut, g, g.Length);
    [Benchmark] public void LayerNorm_float64_managed() => LayerNormKernels.Forward(lnOut, mean, rstd, ln, w, b, Batch * Tokens, Width, 1e-6);
    [Benchmark] public void LayerNorm_float64_reference() => LayerNorm.Forward(lnOut, mean, rstd, ln, w, b, Batch * Tokens, Width, 1e-6);
}
