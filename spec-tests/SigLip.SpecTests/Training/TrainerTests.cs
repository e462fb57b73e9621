using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.IO;
using SigLip.Reference.Models;
using SigLip.Reference.Training;
using Xunit.Abstractions;

using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Training;

public sealed class TrainerTests(ITestOutputHelper output)
{
    private static readonly ReferenceBackend Backend = new();

    private static TrainingSettings TinySettings(int steps = 6, int checkpointEvery = 0, LockedTowers locked = LockedTowers.None) =>
        new(Steps: steps, BatchSize: 6, LearningRate: 1e-2, WarmupSteps: 2, MinLearningRate: 1e-4, Seed: 3,
            CheckpointEvery: checkpointEvery, Locked: locked, KeepCheckpoints: 10);

    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    [Fact]
    public void ResumingGivesTheSameLossesAsNotStopping()
    {
        using var folder = new TempFolder();
        var settings = TinySettings(steps: 7);
        // 6 pairs a step over 12 classes: batch boundaries fall inside the dataset's class blocks,
        // so a wrong data position would show in the losses.
        string straightRun = Path.Combine(folder.Path, "straight");
        TrainingResult straight;
        NamedTensors straightParameters;
        using (var trainer = Trainer.Start(Backend, TrainingFixtures.TinyConfig(), TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), settings, straightRun))
        {
            straight = trainer.Run();
            straightParameters = trainer.Model.GetParameters();
        }

        // The same run, stopped (cancelled, which saves) after step 3, then resumed in a fresh trainer.
        string stoppedRun = Path.Combine(folder.Path, "stopped");
        using var cancel = new CancellationTokenSource();
        using (var trainer = Trainer.Start(Backend, TrainingFixtures.TinyConfig(), TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), settings, stoppedRun))
        {
            Assert.Throws<OperationCanceledException>(() => trainer.Run(new SyncProgress(p => { if (p.Step == 3) cancel.Cancel(); }), cancel.Token));
            Assert.Equal(3, trainer.Step);
        }
        using (var resumed = Trainer.Resume(Backend, stoppedRun, TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer()))
        {
            Assert.Equal(3, resumed.Step);
            var result = resumed.Run();
            output.WriteLine($"straight: {string.Join(", ", straight.Losses.Select(l => l.ToString("R")))}");
            output.WriteLine($"resumed:  {string.Join(", ", result.Losses.Select(l => l.ToString("R")))}");
            Assert.Equal(7, result.Losses.Count);
            for (int i = 0; i < 7; i++)
                Assert.True(BitConverter.DoubleToInt64Bits(straight.Losses[i]) == BitConverter.DoubleToInt64Bits(result.Losses[i]),
                    $"step {i + 1}: straight {straight.Losses[i]:R}, resumed {result.Losses[i]:R}");
            var resumedParameters = resumed.Model.GetParameters();
            foreach (var (name, tensor) in straightParameters)
                Assert.True(tensor.Data.SequenceEqual(resumedParameters[name].Data), $"parameter {name} differs after resume");
        }
        // The losses really change from step to step, so equality above is not trivial.
        Assert.True(straight.Losses.Distinct().Count() == 7);
    }

    [Fact]
    public void ResumingFromAMidRunCheckpointFolderMatchesToo()
    {
        using var folder = new TempFolder();
        var settings = TinySettings(steps: 5, checkpointEvery: 2);
        string run = Path.Combine(folder.Path, "run");
        TrainingResult straight;
        using (var trainer = Trainer.Start(Backend, TrainingFixtures.TinyConfig(), TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), settings, run))
            straight = trainer.Run();
        Assert.True(Directory.Exists(Path.Combine(run, "step-000002")));
        Assert.True(Directory.Exists(Path.Combine(run, "step-000004")));
        Assert.True(Directory.Exists(Path.Combine(run, "step-000005")));

        using var resumed = Trainer.Resume(Backend, Path.Combine(run, "step-000002"), TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), Path.Combine(folder.Path, "again"));
        var result = resumed.Run();
        Assert.Equal(straight.Losses, result.Losses);
    }

    [Fact]
    public void AnInterruptedSaveLeavesThePreviousCheckpointLoadable()
    {
        using var folder = new TempFolder();
        string run = Path.Combine(folder.Path, "run");
        using var trainer = Trainer.Start(Backend, TrainingFixtures.TinyConfig(), TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), TinySettings(steps: 4, checkpointEvery: 2), run);
        // Interrupt the second save right after its model file is written.
        trainer.AfterCheckpointFileWritten = path =>
        {
            if (path.Contains("step-000004") && path.EndsWith(TrainingCheckpoint.ModelFile, StringComparison.Ordinal))
                throw new IOException("simulated crash in the middle of a checkpoint save");
        };
        var ex = Assert.Throws<IOException>(() => trainer.Run());
        Assert.Contains("simulated crash", ex.Message);

        var loaded = TrainingCheckpoint.Load(run);
        Assert.Equal("step-000002", Path.GetFileName(loaded.Folder));
        Assert.Equal(2, loaded.State.Step);
        Assert.Equal(trainer.Losses.Take(2), loaded.State.Losses);
        Assert.False(Directory.Exists(Path.Combine(run, "step-000004")));
        // And it can be resumed.
        using var resumed = Trainer.Resume(Backend, run, TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer());
        Assert.Equal(4, resumed.Run().Steps);
    }

    [Fact]
    public void AProcessKilledBeforeTheRenameLeavesThePreviousCheckpointLoadable()
    {
        using var folder = new TempFolder();
        string run = Path.Combine(folder.Path, "run");
        using (var trainer = Trainer.Start(Backend, TrainingFixtures.TinyConfig(), TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), TinySettings(steps: 2), run))
            trainer.Run();
        // What a kill leaves: a half-written temporary folder with a truncated model file.
        string partial = Path.Combine(run, ".step-000004.tmp-deadbeef");
        Directory.CreateDirectory(partial);
        var good = File.ReadAllBytes(Path.Combine(run, "step-000002", TrainingCheckpoint.ModelFile));
        File.WriteAllBytes(Path.Combine(partial, TrainingCheckpoint.ModelFile), good.AsSpan(0, good.Length / 2).ToArray());

        var loaded = TrainingCheckpoint.Load(run);
        Assert.Equal(2, loaded.State.Step);
        Assert.Equal(ParameterLayout.For(TrainingFixtures.TinyConfig()).Count, loaded.Parameters.Count);
        // The next save clears the leftovers.
        using var resumed = Trainer.Resume(Backend, run, TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), steps: 3);
        resumed.Run();
        Assert.False(Directory.Exists(partial));
        Assert.Equal(3, TrainingCheckpoint.Load(run).State.Step);
    }

    [Fact]
    public void ANaNLossStopsTrainingNamingTheStepAndKeepsTheLastGoodCheckpoint()
    {
        using var folder = new TempFolder();
        string run = Path.Combine(folder.Path, "run");
        // Batch 6: example 20 is in step 4 (examples 18..23).
        var data = new PoisonedSource(TrainingFixtures.TinyData(), poisonIndex: 20);
        using var trainer = Trainer.Start(Backend, TrainingFixtures.TinyConfig(), data, TrainingFixtures.Tokenizer(), TinySettings(steps: 6, checkpointEvery: 2), run);
        var ex = Assert.Throws<TrainingDivergedException>(() => trainer.Run());
        output.WriteLine(ex.Message);
        Assert.Equal(4, ex.Step);
        Assert.Contains("step 4", ex.Message);
        Assert.Contains("NaN", ex.Message);
        Assert.Contains("step-000002", ex.Message);
        Assert.Equal(3, trainer.Step);

        var loaded = TrainingCheckpoint.Load(run);
        Assert.Equal(2, loaded.State.Step);
        Assert.Equal(ex.LastGoodCheckpoint, loaded.Folder);
        Assert.All(loaded.Parameters.Values, t => Assert.All(t.Data, x => Assert.True(double.IsFinite(x))));
        Assert.False(Directory.Exists(Path.Combine(run, "step-000004")));
    }

    [Fact]
    public void AHugeLearningRateThatDivergesIsCaughtToo()
    {
        var settings = TinySettings(steps: 40) with { LearningRate = 1e12, WarmupSteps = 0, MinLearningRate = 1e12, Optimizer = new AdamWSettings(MaxGradNorm: 0, WeightDecay: 0) };
        using var trainer = Trainer.Start(Backend, TrainingFixtures.TinyConfig(), TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), settings);
        var ex = Assert.Throws<TrainingDivergedException>(() => trainer.Run());
        output.WriteLine(ex.Message);
        Assert.Contains($"step {ex.Step}", ex.Message);
        Assert.Contains("No checkpoint", ex.Message);
    }

    [Fact]
    public void AForwardPassThatOverflowsWithFiniteParametersNamesTheStepToo()
    {
        // `siglip train --lr 1e12` on the built-in recipe (managed, float32): after step 1 the parameters are
        // huge but finite, and step 2's embeddings overflow to NaN inside the towers. That used to surface as
        // "image_embeds[0, 0] is NaN" with no step.
        using var backend = new SigLip.Backends.Managed.ManagedBackendProvider().Start(new BackendOptions(DType: DType.Float32, Threads: 1));
        var settings = BuiltInRecipe.Settings with { Steps = 20, LearningRate = 1e12, WarmupSteps = BuiltInRecipe.WarmupSteps(20) };
        using var trainer = Trainer.Start(backend, BuiltInRecipe.Config(), BuiltInRecipe.TrainData(), BuiltInRecipe.Tokenizer(), settings);
        var ex = Assert.Throws<TrainingDivergedException>(() => trainer.Run());
        output.WriteLine(ex.Message);
        Assert.Equal(2, ex.Step);
        Assert.Contains("step 2 of 20", ex.Message);
        Assert.Contains("image_embeds[0, 0] is NaN", ex.Message);
        Assert.Contains("No checkpoint", ex.Message);
    }

    [Theory]
    [InlineData(LockedTowers.Image)]
    [InlineData(LockedTowers.Text)]
    public void ALockedTowerGetsNoGradientAndNeverChanges(LockedTowers locked)
    {
        var config = TrainingFixtures.TinyConfig();
        var lockedTower = locked == LockedTowers.Image ? Tower.Image : Tower.Text;
        var specs = ParameterLayout.For(config);

        // The model itself: backward with the tower locked returns no gradient for it at all.
        var parameters = ModelInit.Random(config, seed: 5);
        var model = new SiglipModel(config, parameters);
        using var stream = new BatchStream(TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), 1, 4, config.Text.MaxPositionEmbeddings, 3, 8);
        var batch = stream.Next();
        var gradients = model.Backward(model.Forward(batch, LossOptions.Default, locked));
        foreach (var spec in specs)
            Assert.True(gradients.ContainsKey(spec.Name) == (spec.Tower != lockedTower), $"{spec.Name}: gradient present = {gradients.ContainsKey(spec.Name)}");

        // Training through the backend: the locked tower's parameters stay bit-for-bit, the rest move.
        using var trainer = Trainer.Start(Backend, config, TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), TinySettings(steps: 3, locked: locked));
        var before = trainer.Model.GetParameters();
        trainer.Run();
        var after = trainer.Model.GetParameters();
        Assert.DoesNotContain(trainer.Model.Gradients().Keys, name => specs.Single(s => s.Name == name).Tower == lockedTower);
        Assert.DoesNotContain(trainer.Model.GetOptimizerState().Keys, name => specs.Any(s => s.Tower == lockedTower && name.EndsWith("." + s.Name, StringComparison.Ordinal)));
        foreach (var spec in specs)
        {
            bool unchanged = before[spec.Name].Data.SequenceEqual(after[spec.Name].Data);
            if (spec.Tower == lockedTower) Assert.True(unchanged, $"locked {spec.Name} changed");
        }
        Assert.Contains(specs, s => s.Tower != lockedTower && s.Tower != Tower.Head && !before[s.Name].Data.SequenceEqual(after[s.Name].Data));
        Assert.NotEqual(before[ParameterLayout.LogitBias].Data[0], after[ParameterLayout.LogitBias].Data[0]);
    }

    [Fact]
    public void SigLiTTakesTheImageTowerFromACheckpoint()
    {
        using var folder = new TempFolder();
        var config = TrainingFixtures.TinyConfig();
        var pretrained = ModelInit.Random(config, seed: 77);
        HfCheckpoint.Save(folder.Path, config, pretrained, SafeTensorDType.F64);
        var (merged, towerParameters) = Trainer.TakeTower(config, HfCheckpoint.Load(folder.Path), Tower.Image);
        Assert.Equal(config.Vision, merged.Vision);
        Assert.All(towerParameters.Keys, k => Assert.StartsWith("vision_model.", k));

        using var trainer = Trainer.Start(Backend, merged, TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(),
            TinySettings(steps: 2, locked: LockedTowers.Image), initialParameters: towerParameters);
        trainer.Run();
        var after = trainer.Model.GetParameters();
        foreach (var (name, tensor) in towerParameters)
            Assert.True(tensor.Data.SequenceEqual(after[name].Data), $"{name} should be the checkpoint's, unchanged");
    }

    [Fact]
    public void TheSameSeedGivesTheSameRunAndAnotherSeedDoesNot()
    {
        double[] Losses(int seed)
        {
            using var trainer = Trainer.Start(Backend, TrainingFixtures.TinyConfig(), TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), TinySettings(steps: 3) with { Seed = seed });
            return [.. trainer.Run().Losses];
        }
        Assert.Equal(Losses(1), Losses(1));
        Assert.NotEqual(Losses(1), Losses(2));
    }

    [Fact]
    public void TrainingStartsFromThePapersTemperatureAndBias()
    {
        using var trainer = Trainer.Start(Backend, TrainingFixtures.TinyConfig(), TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), TinySettings());
        var p = trainer.Model.GetParameters();
        Assert.Equal(Math.Log(10), p[ParameterLayout.LogitScale].Data[0]);
        Assert.Equal(-10.0, p[ParameterLayout.LogitBias].Data[0]);
    }
}
