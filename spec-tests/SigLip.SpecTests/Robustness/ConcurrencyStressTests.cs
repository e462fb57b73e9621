using SigLip.Reference.Backends;
using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.Evaluation;
using SigLip.Reference.Layers;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;
using SigLip.Backends.Managed;
using SigLip.Backends.Managed.Kernels;
using SigLip.Reference.Training;

namespace SigLip.SpecTests.Robustness;

/// <summary>
/// Work run at the same time on one backend, dataset and tokenizer gives the same bits as the same
/// work run alone, while yet another thread keeps computing with other operations (the managed
/// backend's float32 kernels on one thread). This began as the regression test of
/// BatchSizeExperimentTests' rare failure (serial and parallel experiments differed): a test running
/// beside it flipped what were then process-wide kernel switches. There are none now (the operations
/// are an object each model is given), and this test keeps it that way.
/// Sizes are small but large enough for the kernels' own Parallel.For (nested in the runs' loop).
/// </summary>
public sealed class ConcurrencyStressTests
{
    /// <summary>
    /// Until disposed, a background thread keeps computing with other operations than the work under
    /// test (the managed float32 kernels on one thread).
    /// </summary>
    private sealed class KernelSwitcher : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _task;
        private readonly ManualResetEventSlim _switching = new();

        public KernelSwitcher()
        {
            var rng = new DeterministicRandom(9);
            var x = Enumerable.Range(0, 8 * 40).Select(_ => rng.NextGaussian()).ToArray();
            var w = Enumerable.Range(0, 8 * 40).Select(_ => rng.NextGaussian()).ToArray();
            var switching = _switching;
            var ops = new ManagedOps(DType.Float32, threads: 1);
            _task = Task.Factory.StartNew(() =>
            {
                var y = new double[64];
                while (!_stop.IsCancellationRequested)
                {
                    ops.LinearForward(y, x, w, null, 8, 40, 8);
                    switching.Set();
                    Thread.Sleep(1);
                }
            }, TaskCreationOptions.LongRunning);
            // The work under test starts only once the other thread is switching.
            if (!switching.Wait(TimeSpan.FromSeconds(60))) throw new TimeoutException("The kernel-switching thread did not start.");
        }

        public void Dispose()
        {
            _stop.Cancel();
            _task.Wait();
            _stop.Dispose();
            _switching.Dispose();
        }
    }

    private static SiglipConfig SmallConfig()
    {
        var tokenizer = WordTokenizer.ForShapes();
        // Odd head count, text width != image width; 16 image tokens x batch 16 = 256 rows, so the MLP
        // products (256 x 96 x 48) are above the parallel-product threshold.
        return new SiglipConfig(
            new TextConfig(VocabSize: tokenizer.VocabSize, HiddenSize: 36, IntermediateSize: 72, NumHiddenLayers: 1, NumAttentionHeads: 3,
                MaxPositionEmbeddings: ShapesVocabulary.RecommendedTextLength, ProjectionSize: 48, PadTokenId: WordTokenizer.PadId,
                BosTokenId: WordTokenizer.EndId, EosTokenId: WordTokenizer.EndId),
            new VisionConfig(HiddenSize: 48, IntermediateSize: 96, NumHiddenLayers: 1, NumAttentionHeads: 3, ImageSize: 16, PatchSize: 4));
    }

    private sealed record Job(int Seed, LossKind Loss);

    /// <summary>Losses of every step and every parameter's bits after training.</summary>
    private static (double[] Losses, long[] ParameterBits) Train(IBackend backend, SiglipConfig config, ShapesDataset data, WordTokenizer tokenizer, Job job)
    {
        var settings = BuiltInRecipe.Settings with
        {
            Steps = 3,
            BatchSize = 16,
            WarmupSteps = 1,
            Loss = LossOptions.Default with { Kind = job.Loss },
            Seed = job.Seed,
            CheckpointEvery = 0,
        };
        using var trainer = Trainer.Start(backend, config, data, tokenizer, settings, outputFolder: null);
        var result = trainer.Run();
        var bits = trainer.Model.GetParameters().Values.SelectMany(t => t.Data).Select(BitConverter.DoubleToInt64Bits).ToArray();
        return (result.Losses.ToArray(), bits);
    }

    [Fact]
    public void Concurrent_trainings_on_one_backend_and_dataset_match_serial_ones_bit_for_bit()
    {
        using var backend = new ReferenceBackendProvider().Start(new BackendOptions());
        var config = SmallConfig();
        var tokenizer = WordTokenizer.ForShapes();
        var data = new ShapesDataset(new ShapesDatasetOptions(ImageSize: config.Vision.ImageSize, Split: ShapesSplit.Train));
        var jobs = (from seed in new[] { 0, 1, 2 } from loss in new[] { LossKind.Sigmoid, LossKind.Softmax } select new Job(seed, loss)).ToArray();
        var serial = jobs.Select(j => Train(backend, config, data, tokenizer, j)).ToArray();
        Assert.NotEqual(serial[0].ParameterBits, serial[2].ParameterBits); // seeds really differ

        var concurrent = new (double[] Losses, long[] ParameterBits)[jobs.Length];
        using (new KernelSwitcher())
        {
            // More runs at once than cores, each run's kernels parallel too.
            Parallel.For(0, jobs.Length, new ParallelOptions { MaxDegreeOfParallelism = 3 }, i => concurrent[i] = Train(backend, config, data, tokenizer, jobs[i]));
        }
        for (int i = 0; i < jobs.Length; i++)
        {
            Assert.True(serial[i].Losses.SequenceEqual(concurrent[i].Losses),
                $"{jobs[i]}: losses alone [{string.Join(", ", serial[i].Losses.Select(v => v.ToString("R")))}], concurrent [{string.Join(", ", concurrent[i].Losses.Select(v => v.ToString("R")))}]");
            int first = Enumerable.Range(0, serial[i].ParameterBits.Length).FirstOrDefault(p => serial[i].ParameterBits[p] != concurrent[i].ParameterBits[p], -1);
            Assert.True(first < 0, $"{jobs[i]}: parameter element {first} differs between the run alone and the concurrent run");
        }
    }

    [Fact]
    public void Parallel_products_nested_in_parallel_loops_match_the_one_thread_product_bit_for_bit()
    {
        // Each product is above the parallel threshold, so it packs op(B) into the calling thread's
        // shared buffer and runs its own Parallel.For, nested in this loop's workers.
        var sizes = new[] { (m: 150, n: 130, k: 200), (m: 97, n: 40, k: 600), (m: 64, n: 300, k: 90), (m: 200, n: 33, k: 257) };
        var rng = new DeterministicRandom(31);
        var problems = sizes.Select(s => (s.m, s.n, s.k,
            a: Enumerable.Range(0, s.m * s.k).Select(_ => rng.NextGaussian()).ToArray(),
            b: Enumerable.Range(0, s.n * s.k).Select(_ => rng.NextGaussian()).ToArray())).ToArray();
        var expected = problems.Select(p =>
        {
            var c = new double[p.m * p.n];
            MatMul.General<double>(c, p.n, p.a, p.k, false, p.b, p.k, true, p.m, p.n, p.k, threads: 1);
            return c;
        }).ToArray();

        const int rounds = 6;
        var results = new double[problems.Length * rounds][];
        using (new KernelSwitcher())
        {
            Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
            {
                var p = problems[i % problems.Length];
                var c = new double[p.m * p.n];
                MatMul.General<double>(c, p.n, p.a, p.k, false, p.b, p.k, true, p.m, p.n, p.k);
                results[i] = c;
            });
        }
        for (int i = 0; i < results.Length; i++)
        {
            var p = problems[i % problems.Length];
            var want = expected[i % problems.Length];
            int first = Enumerable.Range(0, want.Length).FirstOrDefault(e => BitConverter.DoubleToInt64Bits(want[e]) != BitConverter.DoubleToInt64Bits(results[i][e]), -1);
            Assert.True(first < 0, $"product {i} ({p.m} x {p.n} x {p.k}): element [{first / p.n}, {first % p.n}] differs from the one-thread product");
        }
    }

    [Fact]
    public void Batch_size_experiment_gives_the_same_runs_in_parallel_while_another_thread_switches_kernels()
    {
        using var backend = new ReferenceBackendProvider().Start(new BackendOptions());
        var tokenizer = WordTokenizer.ForShapes();
        var config = new SiglipConfig(
            new TextConfig(VocabSize: tokenizer.VocabSize, HiddenSize: 8, IntermediateSize: 16, NumHiddenLayers: 1, NumAttentionHeads: 2,
                MaxPositionEmbeddings: ShapesVocabulary.RecommendedTextLength, PadTokenId: WordTokenizer.PadId, BosTokenId: WordTokenizer.EndId, EosTokenId: WordTokenizer.EndId),
            new VisionConfig(HiddenSize: 8, IntermediateSize: 16, NumHiddenLayers: 1, NumAttentionHeads: 2, ImageSize: 8, PatchSize: 4));
        var settings = new BatchSizeExperimentSettings(BatchSizes: [2, 4], Seeds: 2, PairsPerRun: 8, Config: config, EvalImagesPerClass: 1);
        var serial = BatchSizeExperiment.Run(backend, settings);
        BatchSizeExperimentResult parallel;
        using (new KernelSwitcher()) parallel = BatchSizeExperiment.Run(backend, settings with { Parallel = 4 });
        Assert.Equal(
            serial.Runs.Select(r => (r.Loss, r.BatchSize, r.Seed, BitConverter.DoubleToInt64Bits(r.FinalLoss), r.ZeroShotAccuracy, r.ImageToTextRecallAt1, r.TextToImageRecallAt1)),
            parallel.Runs.Select(r => (r.Loss, r.BatchSize, r.Seed, BitConverter.DoubleToInt64Bits(r.FinalLoss), r.ZeroShotAccuracy, r.ImageToTextRecallAt1, r.TextToImageRecallAt1)));
    }
}
