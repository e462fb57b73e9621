using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Distributed;
using SigLip.Reference.Training;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Training;

/// <summary>
/// Data-parallel training on the in-process group (W threads, the same code as across MPI ranks):
/// W ranks, each with its n/W rows of every global batch, give the losses and parameters of one
/// process training on the whole batch (reference backend, float64).
/// </summary>
public sealed class DataParallelTrainerTests
{
    private const int Steps = 20;

    // Global batch 12: divisible by 1, 2, 3, 4, 6 ranks. Checkpoints every 10 steps.
    private static TrainingSettings Settings(int steps = Steps, int checkpointEvery = 0) =>
        new(Steps: steps, BatchSize: 12, LearningRate: 1e-2, WarmupSteps: 2, MinLearningRate: 1e-4, Seed: 5,
            CheckpointEvery: checkpointEvery, KeepCheckpoints: 10);

    private sealed record Run(IReadOnlyList<double> Losses, NamedTensors Parameters, int WorldSize, (int Start, int Count) Rows, double CommunicationSeconds);

    private static Run OneProcess(TrainingSettings settings, string? folder = null)
    {
        using var trainer = Trainer.Start(new ReferenceBackend(), TrainingFixtures.TinyConfig(), TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), settings, folder);
        var result = trainer.Run();
        return new Run(result.Losses, trainer.Model.GetParameters(), result.WorldSize, trainer.Rows, result.CommunicationSeconds);
    }

    private static Run[] Ranks(int w, TrainingSettings settings, string? folder = null, string? resumeFrom = null) =>
        InProcessGroup.Run(w, communicator =>
        {
            // Each rank has its own backend, data stream and tokenizer, as separate processes would.
            using var trainer = resumeFrom is null
                ? Trainer.Start(new ReferenceBackend(), TrainingFixtures.TinyConfig(), TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), settings, folder, communicator: communicator)
                : Trainer.Resume(new ReferenceBackend(), resumeFrom, TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), folder, settings.Steps, communicator);
            var result = trainer.Run();
            return new Run(result.Losses, trainer.Model.GetParameters(), result.WorldSize, trainer.Rows, result.CommunicationSeconds);
        });

    // The tolerances of issue 14: losses within 1e-12 relative per step, parameters within 1e-10.
    private static void AssertSameRun(Run expected, Run actual, string where)
    {
        Assert.Equal(expected.Losses.Count, actual.Losses.Count);
        for (int i = 0; i < expected.Losses.Count; i++)
        {
            double e = expected.Losses[i], a = actual.Losses[i];
            Assert.True(Math.Abs(a - e) <= 1e-12 * Math.Abs(e), $"{where}: step {i + 1} loss {a:R} vs one process {e:R} (relative {Math.Abs(a - e) / Math.Abs(e):E2} > 1e-12)");
        }
        Assert.Equal(expected.Parameters.Keys, actual.Parameters.Keys);
        foreach (var (name, e) in expected.Parameters)
            AssertClose.Tensor(actual.Parameters[name], e, new Tolerance(1e-10, 0), $"{name} ({where})");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void W_ranks_give_the_losses_and_parameters_of_one_process(int w)
    {
        var one = OneProcess(Settings());
        Assert.Equal(Steps, one.Losses.Count);
        // The run must actually learn, or equal losses would prove little.
        Assert.True(one.Losses[^1] < one.Losses[0], $"loss {one.Losses[0]} -> {one.Losses[^1]} did not fall");

        var ranks = Ranks(w, Settings());
        for (int r = 0; r < w; r++)
        {
            Assert.Equal(w, ranks[r].WorldSize);
            Assert.Equal((r * 12 / w, 12 / w), ranks[r].Rows);
            Assert.True(ranks[r].CommunicationSeconds > 0, $"rank {r} measured no communication time");
            AssertSameRun(one, ranks[r], $"rank {r} of {w}");
        }
    }

    [Fact]
    public void A_checkpoint_of_two_ranks_resumes_under_three_and_under_one_process()
    {
        using var folder = new TempFolder();
        var straight = OneProcess(Settings());

        // The same 20-step run (the cosine schedule depends on the total) under 2 ranks, checkpoints every 5 steps.
        string run2 = Path.Combine(folder.Path, "w2");
        var first = Ranks(2, Settings(checkpointEvery: 5), run2);
        AssertSameRun(straight, first[0], "W=2 with checkpoints");
        // Rank 0 alone wrote: one folder per checkpoint, no temporaries left.
        Assert.Equal(["step-000005", "step-000010", "step-000015", "step-000020"], Directory.GetDirectories(run2).Select(Path.GetFileName).Order());

        var resumedUnder3 = Ranks(3, Settings(), Path.Combine(folder.Path, "w3"), resumeFrom: Path.Combine(run2, "step-000010"));
        foreach (var rank in resumedUnder3) AssertSameRun(straight, rank, "W=2 for 10 steps, then W=3");

        var resumedAlone = Trainer.Resume(new ReferenceBackend(), Path.Combine(run2, "step-000005"), TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(),
            Path.Combine(folder.Path, "w1"), Steps);
        using (resumedAlone)
        {
            var result = resumedAlone.Run();
            AssertSameRun(straight, new Run(result.Losses, resumedAlone.Model.GetParameters(), 1, resumedAlone.Rows, 0), "W=2 for 5 steps, then one process");
        }
    }

    [Fact]
    public void The_bytes_a_rank_hands_to_the_communicator_per_step_are_those_computed_from_the_shapes()
    {
        const int w = 3, steps = 2;
        var config = TrainingFixtures.TinyConfig();
        var bytes = InProcessGroup.Run(w, communicator =>
        {
            using var trainer = Trainer.Start(new ReferenceBackend(), config, TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), Settings(steps), communicator: communicator);
            trainer.Run();
            return trainer.CommunicationBytes;
        });
        var traffic = SigLip.Reference.Distributed.DataParallelTraffic.For(config, 12, w, sizeof(double));
        Assert.Equal(w * (2L * 4 * 10 + 1) * 8, traffic.RingBytes); // c = 4, d = 10: W hops of (2 c d + 1) elements
        // Per step: the ring, the tower gradients handed over once, the W flags and the 3 totals (+ rank 0's 5-element header broadcast).
        long perStep = traffic.RingBytes + traffic.TowerParameters * 8 + (w + 3) * 8;
        Assert.Equal(steps * (perStep + 5 * 8), bytes[0]);
        Assert.Equal(steps * perStep, bytes[1]);
        Assert.Equal(steps * perStep, bytes[2]);
    }

    [Fact]
    public void A_rank_count_that_does_not_divide_the_global_batch_is_refused_saying_which_do()
    {
        var failure = Assert.Throws<RankFailedException>(() => Ranks(5, Settings()));
        var message = failure.InnerException!.Message;
        Assert.Contains("global batch size 12 (--batch-size) is not divisible by the 5 ranks", message);
        Assert.Contains("Rank counts that divide 12: 1, 2, 3, 4, 6, 12", message);
        Assert.Contains("batch sizes near 12 that 5 ranks divide: 10, 15", message);
    }

    [Fact]
    public void The_softmax_loss_is_refused_across_ranks_because_it_has_no_ring_form()
    {
        var settings = Settings() with { Loss = new LossOptions(LossKind.Softmax) };
        var failure = Assert.Throws<RankFailedException>(() => Ranks(2, settings));
        Assert.Contains("needs the sigmoid loss", failure.InnerException!.Message);
    }
}
