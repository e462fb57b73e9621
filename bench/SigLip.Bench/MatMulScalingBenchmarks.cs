using BenchmarkDotNet.Attributes;
using SigLip.Backends.Managed;
using SigLip.Backends.Managed.Kernels;

namespace SigLip.Bench;

/// <summary>
/// How the fast float32 GEMM scales from one thread to every core at the sizes `siglip bench` uses.
/// On a machine shared with other work, compare the two thread counts within one run only.
/// </summary>
public class MatMulScalingBenchmarks
{
    [Params(1024, 2048)]
    public int N { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    private float[] a = [], b = [], c = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        a = Enumerable.Range(0, N * N).Select(_ => (float)rng.NextDouble()).ToArray();
        b = Enumerable.Range(0, N * N).Select(_ => (float)rng.NextDouble()).ToArray();
        c = new float[N * N];
    }

    [Benchmark] public void AB_float32() => MatMul.AB(c, a, b, N, N, N, threads: Math.Min(Threads, Environment.ProcessorCount));
}
