using BenchmarkDotNet.Attributes;
using SigLip.Backends.Managed;
using SigLip.Backends.Managed.Kernels;

namespace SigLip.Bench;

/// <summary>The matmul family, fast kernels (float32 and float64), square sizes; naive twin at the small size only.</summary>
[MemoryDiagnoser]
public class MatMulBenchmarks
{
    [Params(256, 1024)]
    public int N { get; set; }

    private float[] a32 = [], b32 = [], c32 = [];
    private double[] a64 = [], b64 = [], c64 = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        a32 = Enumerable.Range(0, N * N).Select(_ => (float)rng.NextDouble()).ToArray();
        b32 = Enumerable.Range(0, N * N).Select(_ => (float)rng.NextDouble()).ToArray();
        c32 = new float[N * N];
        a64 = a32.Select(v => (double)v).ToArray();
        b64 = b32.Select(v => (double)v).ToArray();
        c64 = new double[N * N];
    }

    [Benchmark] public void ABt_float32() => MatMul.ABt(c32, a32, b32, N, N, N);
    [Benchmark] public void AB_float32() => MatMul.AB(c32, a32, b32, N, N, N);
    [Benchmark] public void AtB_float32() => MatMul.AtB(c32, a32, b32, N, N, N);
    [Benchmark] public void ABt_float64() => MatMul.ABt(c64, a64, b64, N, N, N);
    [Benchmark] public void AtB_float64() => MatMul.AtB(c64, a64, b64, N, N, N);

    [Benchmark]
    public void ABt_float64_reference()
    {
        if (N > 256) return; // the reference's Linear loop is ~100x slower; measured at the small size only
        SigLip.Reference.Layers.Linear.Forward(c64, a64, b64, null, N, N, N);
    }
}
