using SigLip.Reference.Numerics;
using SigLip.Backends.Managed.Kernels;

namespace SigLip.SpecTests.Kernels;

[CollectionDefinition(nameof(GemmThreadingTests), DisableParallelization = true)]
public sealed class GemmThreadingCollection;

/// <summary>
/// The parallel GEMM packs op(B) once and splits the rows into small tasks (and the columns too when
/// the rows are few) that threads claim one at a time, without changing any element's summation
/// order: with 2, 3 or 4 threads the result must be bit-identical to the one-thread product, for
/// every transpose. Runs alone: it changes the process-wide thread count.
/// </summary>
[Collection(nameof(GemmThreadingTests))]
public sealed class GemmThreadingTests
{
    [Theory]
    [InlineData(301, 263, 700)]  // many row tasks, k not a multiple of the KC slice
    [InlineData(300, 100, 700)]  // narrow: n not a multiple of the panel width
    [InlineData(97, 40, 600)]    // few row panels: rows and columns split
    [InlineData(64, 517, 300)]   // few rows, column splits not on a multiple of the panel width
    [InlineData(7, 2100, 70)]    // one row chunk, more columns than one NC block
    [InlineData(1000, 33, 257)]  // row chunks capped at MC rows
    public void ParallelProductIsBitIdenticalToSerial(int m, int n, int k)
    {
        Same<float>(m, n, k);
        Same<double>(m, n, k);
    }

    private static void Same<T>(int m, int n, int k) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var rng = new DeterministicRandom(m * 7919 + n * 31 + k);
        var a = new T[m * k];  // [m, k] for ABt and AB, [k, m] for AtB
        var b = new T[n * k];  // [n, k] for ABt, [k, n] for AB and AtB
        for (int i = 0; i < a.Length; i++) a[i] = T.CreateChecked(rng.NextGaussian());
        for (int i = 0; i < b.Length; i++) b[i] = T.CreateChecked(rng.NextGaussian());
        var c0 = new T[m * n]; // C is accumulated into: the kernel adds each KC slice's tile to it
        for (int i = 0; i < c0.Length; i++) c0[i] = T.CreateChecked(rng.NextGaussian());
        {
            foreach (var (op, product) in new (string, Action<T[], int>)[]
            {
                ("ABt", (c, threads) => MatMul.ABt(c, a, b, m, n, k, accumulate: true, threads: threads)),
                ("AB", (c, threads) => MatMul.AB(c, a, b, m, n, k, accumulate: true, threads: threads)),
                ("AtB", (c, threads) => MatMul.AtB(c, a, b, m, n, k, accumulate: true, threads: threads)),
            })
            {
                var serial = (T[])c0.Clone();
                product(serial, 1);
                foreach (int threads in new[] { 2, 3, 4 })
                {
                    var parallel = (T[])c0.Clone();
                    product(parallel, threads);
                    for (int i = 0; i < serial.Length; i++)
                        if (!serial[i].Equals(parallel[i]))
                            throw new Xunit.Sdk.XunitException($"{op} {typeof(T).Name} m={m} n={n} k={k}, {threads} threads: element [{i / n}, {i % n}] is {parallel[i]} but {serial[i]} on one thread");
                }
            }
        }
    }
}
