using SigLip.Reference.IO.Golden;
using SigLip.Reference.Layers;
using SigLip.Reference.Numerics;
using SigLip.Reference.Numerics.Kernels;

namespace SigLip.SpecTests.Robustness;

/// <summary>
/// Kernel switches opened with <see cref="KernelSettings.UseMode"/> (and the tests' UseFallback) belong
/// to the flow that opened them: its Parallel.For workers and tasks see them, other threads never do.
/// Before the scopes existed, golden generation and some tests flipped the process-wide setting, so a
/// training on another thread silently changed kernels (and bits) halfway through.
/// </summary>
public sealed class KernelScopeTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private static KernelMode Other(KernelMode mode) => mode == KernelMode.Fast ? KernelMode.Naive : KernelMode.Fast;

    [Fact]
    public async Task A_mode_scope_reaches_its_own_workers_and_tasks_but_not_another_thread()
    {
        var outside = KernelSettings.Mode;
        var inner = Other(outside);
        using var ask = new ManualResetEventSlim();
        using var answered = new ManualResetEventSlim();
        KernelMode? seenByOtherThread = null;
        // Started before the scope, so it runs in the flow without the override.
        var other = new Thread(() => { ask.Wait(Patience); seenByOtherThread = KernelSettings.Mode; answered.Set(); });
        other.Start();

        using (KernelSettings.UseMode(inner))
        {
            Assert.Equal(inner, KernelSettings.Mode);
            Assert.Equal(inner == KernelMode.Fast, KernelSettings.UseFastPath);
            var seenByWorkers = new KernelMode[64];
            Parallel.For(0, seenByWorkers.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
            {
                Thread.SpinWait(1000); // let several workers join
                seenByWorkers[i] = KernelSettings.Mode;
            });
            Assert.All(seenByWorkers, m => Assert.Equal(inner, m));
            Assert.Equal(inner, await Task.Run(() => KernelSettings.Mode));
            Assert.Equal(inner, KernelSettings.Mode); // after the await too

            using (KernelSettings.UseMode(outside)) Assert.Equal(outside, KernelSettings.Mode); // nested scopes
            Assert.Equal(inner, KernelSettings.Mode);

            ask.Set();
            Assert.True(answered.Wait(Patience), "the other thread did not answer");
        }
        other.Join();
        Assert.Equal(outside, seenByOtherThread);
        Assert.Equal(outside, KernelSettings.Mode);
    }

    [Fact]
    public void Disposing_a_scope_twice_restores_once()
    {
        var outside = KernelSettings.Mode;
        var first = KernelSettings.UseMode(Other(outside));
        first.Dispose();
        Assert.Equal(outside, KernelSettings.Mode);
        using (KernelSettings.UseMode(Other(outside)))
        {
            first.Dispose(); // a stray second dispose must not end the scope opened after it
            Assert.Equal(Other(outside), KernelSettings.Mode);
        }
        Assert.Equal(outside, KernelSettings.Mode);
    }

    /// <summary>Linear.Forward dispatches on UseFastPath; its fast and naive results differ in the last bits.</summary>
    private static double[] LinearProduct(double[] input, double[] weight, int rows, int inFeatures, int outFeatures)
    {
        var output = new double[rows * outFeatures];
        Linear.Forward(output, input, weight, null, rows, inFeatures, outFeatures);
        return output;
    }

    [Fact]
    public void Golden_generation_on_another_thread_does_not_switch_this_threads_kernels()
    {
        const int rows = 7, inFeatures = 300, outFeatures = 9;
        var rng = new DeterministicRandom(4242);
        var input = Enumerable.Range(0, rows * inFeatures).Select(_ => rng.NextGaussian()).ToArray();
        var weight = Enumerable.Range(0, outFeatures * inFeatures).Select(_ => rng.NextGaussian()).ToArray();
        var modeHere = KernelSettings.Mode;
        double[] fast, naive;
        using (KernelSettings.UseMode(KernelMode.Fast)) fast = LinearProduct(input, weight, rows, inFeatures, outFeatures);
        using (KernelSettings.UseMode(KernelMode.Naive)) naive = LinearProduct(input, weight, rows, inFeatures, outFeatures);
        // Precondition: a switch to the naive loops would show in the bits (else this test could not fail).
        Assert.False(fast.SequenceEqual(naive), "fast and naive products are bit-identical here; pick sizes where they differ");
        var expected = modeHere == KernelMode.Fast ? fast : naive;

        var folder = Path.Combine(Path.GetTempPath(), "siglip-scope-" + Guid.NewGuid().ToString("N"));
        using var inside = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        KernelMode? seenByGenerator = null;
        try
        {
            // The generator's log callback runs inside its naive scope: hold it there while this thread computes.
            var generation = new Thread(() =>
            {
                try
                {
                    GoldenGenerator.Generate(folder, log: _ =>
                    {
                        seenByGenerator = KernelSettings.Mode;
                        inside.Set();
                        release.Wait(Patience);
                        throw new OperationCanceledException("enough: the test only needs the generator inside its scope");
                    });
                }
                catch (OperationCanceledException) { }
            });
            generation.Start();
            Assert.True(inside.Wait(Patience), "golden generation did not start");
            var modeDuring = KernelSettings.Mode;
            var during = LinearProduct(input, weight, rows, inFeatures, outFeatures);
            release.Set();
            Assert.True(generation.Join(Patience), "golden generation did not stop");

            Assert.Equal(KernelMode.Naive, seenByGenerator);
            Assert.Equal(modeHere, modeDuring);
            Assert.True(expected.SequenceEqual(during), "the product on this thread changed while golden generation ran on another thread");
            Assert.Equal(modeHere, KernelSettings.Mode);
        }
        finally
        {
            release.Set();
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    private static double[] Product(double[] a, double[] b, int m, int n, int k)
    {
        var c = new double[m * n];
        MatMul.ABt(c, a, b, m, n, k);
        return c;
    }

    [Fact]
    public void Forcing_the_portable_fallback_on_another_thread_does_not_change_this_threads_product()
    {
        // Large enough for the parallel product (several threads) and several KC slices.
        const int m = 61, n = 47, k = 400;
        var rng = new DeterministicRandom(77);
        var a = Enumerable.Range(0, m * k).Select(_ => rng.NextGaussian()).ToArray();
        var b = Enumerable.Range(0, n * k).Select(_ => rng.NextGaussian()).ToArray();
        var before = Product(a, b, m, n, k);
        using (KernelSettings.UseFallback())
        {
            Assert.True(KernelSettings.ForceFallback);
            if (Gemm<double>.HardwareFast)
                Assert.False(before.SequenceEqual(Product(a, b, m, n, k)), "fallback and blocked products are bit-identical here; pick sizes where they differ");
        }
        Assert.False(KernelSettings.ForceFallback);

        using var inside = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var forcing = new Thread(() =>
        {
            using (KernelSettings.UseFallback())
            {
                inside.Set();
                release.Wait(Patience);
            }
        });
        forcing.Start();
        try
        {
            Assert.True(inside.Wait(Patience), "the forcing thread did not start");
            Assert.False(KernelSettings.ForceFallback);
            Assert.True(before.SequenceEqual(Product(a, b, m, n, k)), "the product on this thread changed while another thread forced the fallback");
        }
        finally
        {
            release.Set();
            forcing.Join(Patience);
        }
    }
}
