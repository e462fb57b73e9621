using SigLip.Reference.Numerics;
using SigLip.Reference.Numerics.Kernels;

namespace SigLip.SpecTests.Kernels;

[CollectionDefinition(nameof(GemmThreadingTests), DisableParallelization = true)]
public sealed class GemmThreadingCollection;

/// <summary>
/// The parallel GEMM splits work across threads (column bands when the product is wide, row and
/// column tasks otherwise) without changing any element's summation order: with 2 or 3 threads the
/// result must be bit-identical to the one-thread product. Runs alone: it changes the process-wide
/// thread count.
/// </summary>
[Collection(nameof(GemmThreadingTests))]
public sealed class GemmThreadingTests
{
    [Theory]
    [InlineData(301, 263, 700)] // wide: column bands (float and double)
    [InlineData(300, 100, 700)] // float: too narrow for bands (n < 2 x 4 x 16), row/column tasks
    [InlineData(97, 40, 600)]   // double and float: narrow, few row blocks
    [InlineData(64, 517, 300)]  // band edges not on a multiple of the panel width
    public void ParallelProductIsBitIdenticalToSerial(int m, int n, int k)
    {
        Same<float>(m, n, k);
        Same<double>(m, n, k);
    }

    private static void Same<T>(int m, int n, int k) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var rng = new DeterministicRandom(m * 7919 + n * 31 + k);
        var a = new T[m * k];
        var b = new T[n * k];
        for (int i = 0; i < a.Length; i++) a[i] = T.CreateChecked(rng.NextGaussian());
        for (int i = 0; i < b.Length; i++) b[i] = T.CreateChecked(rng.NextGaussian());
        int saved = KernelSettings.Threads;
        try
        {
            KernelSettings.Threads = 1;
            var serial = new T[m * n];
            MatMul.ABt(serial, a, b, m, n, k);
            foreach (int threads in new[] { 2, 3 })
            {
                KernelSettings.Threads = threads;
                var parallel = new T[m * n];
                MatMul.ABt(parallel, a, b, m, n, k);
                for (int i = 0; i < serial.Length; i++)
                    if (!serial[i].Equals(parallel[i]))
                        throw new Xunit.Sdk.XunitException($"{typeof(T).Name} m={m} n={n} k={k}, {threads} threads: element [{i / n}, {i % n}] is {parallel[i]} but {serial[i]} on one thread");
            }
        }
        finally
        {
            KernelSettings.Threads = saved;
        }
    }
}
