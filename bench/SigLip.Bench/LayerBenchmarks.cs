using BenchmarkDotNet.Attributes;
using SigLip.Backends.Managed;
using SigLip.Backends.Managed.Kernels;

namespace SigLip.Bench;

/// <summary>
/// One B/16-width encoder layer (768 wide, 12 heads, MLP 3072) forward+backward on the fast kernels,
/// and the element-wise kernels against their naive twins. MemoryDiagnoser shows the steady state allocates ~nothing.
/// </summary>
[MemoryDiagnoser]
public class LayerBenchmarks
{
    [Params(2)]
    public int Batch { get; set; }

    private const int Tokens = 196, Width = 768, Heads = 12, Intermediate = 3072;
    private FastEncoderLayer<float> layer32 = null!;
    private float[] x = [], dy = [], dx = [];
    private double[] g = [], gOut = [], gIn = [], ln = [], lnOut = [], mean = [], rstd = [], w = [], b = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(3);
        float[] R(int n, double s) => Enumerable.Range(0, n).Select(_ => (float)(s * (2 * rng.NextDouble() - 1))).ToArray();
        double ws = 1 / Math.Sqrt(Width), wi = 1 / Math.Sqrt(Intermediate);
        var weights = new EncoderLayerArrays<float>(
            R(Width, 0.1).Select(v => 1 + v).ToArray(), R(Width, 0.1), R(Width * Width, ws), R(Width, 0.02), R(Width * Width, ws), R(Width, 0.02),
            R(Width * Width, ws), R(Width, 0.02), R(Width * Width, ws), R(Width, 0.02), R(Width, 0.1).Select(v => 1 + v).ToArray(), R(Width, 0.1),
            R(Intermediate * Width, ws), R(Intermediate, 0.02), R(Width * Intermediate, wi), R(Width, 0.02));
        layer32 = new FastEncoderLayer<float>(weights, Batch, Tokens, Width, Heads, Intermediate);
        int rows = Batch * Tokens;
        x = R(rows * Width, 1); dy = R(rows * Width, 1); dx = new float[rows * Width];
        g = R(rows * Intermediate, 3).Select(v => (double)v).ToArray();
        gOut = new double[g.Length]; gIn = new double[g.Length];
        ln = R(rows * Width, 2).Select(v => (double)v).ToArray(); lnOut = new double[ln.Length];
        mean = new double[rows]; rstd = new double[rows];
        w = Enumerable.Repeat(1.0, Width).ToArray(); b = new double[Width];
    }

    [Benchmark]
    public void EncoderLayer_float32_forward_backward()
    {
        layer32.Forward(x);
        layer32.Backward(dy, x, dx);
    }

    [Benchmark] public void Gelu_float64_fast() => GeluKernels.Forward(gOut, g, g.Length);
    [Benchmark] public void Gelu_float64_reference() => SigLip.Reference.Layers.Gelu.Forward(gOut, g, g.Length);
    [Benchmark] public void GeluBackward_float64_fast() => GeluKernels.Backward(gIn, gOut, g, g.Length);
    [Benchmark] public void LayerNorm_float64_fast() => LayerNormKernels.Forward(lnOut, mean, rstd, ln, w, b, Batch * Tokens, Width, 1e-6);
    [Benchmark] public void LayerNorm_float64_reference() => SigLip.Reference.Layers.LayerNorm.Forward(lnOut, mean, rstd, ln, w, b, Batch * Tokens, Width, 1e-6);
}
