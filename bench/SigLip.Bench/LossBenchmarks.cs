using BenchmarkDotNet.Attributes;
using SigLip.Backends.Managed;
using SigLip.Backends.Managed.Kernels;

namespace SigLip.Bench;

/// <summary>
/// Sigmoid loss forward+backward (width 768): the managed kernel on normalised embeddings in both dtypes, and
/// the managed backend's whole dense loss (<see cref="ManagedLoss.SigmoidDense"/>: L2 normalisation, kernel,
/// normalisation backward) in float32, as `siglip bench` times it.
/// </summary>
[MemoryDiagnoser]
public class LossBenchmarks
{
    [Params(1024, 4096)]
    public int N { get; set; }

    private const int Width = 768;
    private float[] x32 = [], y32 = [], dx32 = [], dy32 = [];
    private double[] x64 = [], y64 = [], dx64 = [], dy64 = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(2);
        double[] Unit()
        {
            var a = Enumerable.Range(0, N * Width).Select(_ => rng.NextDouble() - 0.5).ToArray();
            for (int r = 0; r < N; r++)
            {
                double s = 0;
                for (int c = 0; c < Width; c++) s += a[r * Width + c] * a[r * Width + c];
                for (int c = 0; c < Width; c++) a[r * Width + c] /= Math.Sqrt(s);
            }
            return a;
        }
        x64 = Unit(); y64 = Unit();
        x32 = x64.Select(v => (float)v).ToArray(); y32 = y64.Select(v => (float)v).ToArray();
        dx32 = new float[N * Width]; dy32 = new float[N * Width];
        dx64 = new double[N * Width]; dy64 = new double[N * Width];
    }

    [Benchmark] public double SigmoidLoss_float32() => SigmoidLossKernels.ForwardBackward(dx32, dy32, x32, y32, N, Width, Math.Log(10), -10).Loss;
    [Benchmark] public double SigmoidLossWithNormalisation_float32() => ManagedLoss.SigmoidDense(x32, y32, N, Width, Math.Log(10), -10, 0, 0).Loss;
    [Benchmark] public double SigmoidLoss_float64() => SigmoidLossKernels.ForwardBackward(dx64, dy64, x64, y64, N, Width, Math.Log(10), -10).Loss;
}
