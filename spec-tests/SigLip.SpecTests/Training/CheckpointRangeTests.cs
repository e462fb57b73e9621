using System.Text.Json.Nodes;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Data;
using SigLip.Reference.IO;
using SigLip.Reference.Models;
using SigLip.Reference.Training;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Training;

/// <summary>
/// Issue 15: values read from a checkpoint are range-checked (<see cref="TrainingState.Validate"/>, called by
/// <see cref="TrainingCheckpoint.Load"/>) and a resume never hangs. Each test damages one field of a real
/// checkpoint, resumes under a time limit (a hang fails the test instead of hanging CI) and expects a refusal
/// naming the field, its value and the valid range.
/// </summary>
public sealed class CheckpointRangeTests(ITestOutputHelper output) : IDisposable
{
    private static readonly ReferenceBackend Backend = new();
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    /// <summary>Long enough for a resume of the tiny model many times over; a resume that skips 2^40 examples takes hours.</summary>
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    private static TrainingSettings Settings(int steps = 4) =>
        new(Steps: steps, BatchSize: 6, LearningRate: 1e-2, WarmupSteps: 1, MinLearningRate: 1e-4, Seed: 3, KeepCheckpoints: 10);

    /// <summary>A run of 2 steps (of 4) saved to a run folder; returns its step folder.</summary>
    private string TrainTwoSteps()
    {
        string run = Path.Combine(_temp.Path, "run");
        using var cancel = new CancellationTokenSource();
        using var trainer = Trainer.Start(Backend, TrainingFixtures.TinyConfig(), TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), Settings(), run);
        // Cancelling saves the step reached (the way a stopped run leaves its folder).
        Assert.Throws<OperationCanceledException>(() => trainer.Run(new Progress(p => { if (p.Step == 2) cancel.Cancel(); }), cancel.Token));
        Assert.Equal(2, TrainingCheckpoint.Load(trainer.LastCheckpoint!).State.Step);
        return trainer.LastCheckpoint!;
    }

    private sealed class Progress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    /// <summary>Edits trainer_state.json of <paramref name="folder"/>.</summary>
    private static void EditState(string folder, Action<JsonObject> edit)
    {
        string path = Path.Combine(folder, TrainingCheckpoint.StateFile);
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    /// <summary>Resumes on another thread; fails the test when it has not finished within <see cref="Limit"/>.</summary>
    private static Exception? ResumeWithin(string checkpoint, IImageTextSource? data = null)
    {
        var task = Task.Run(() =>
        {
            using var trainer = Trainer.Resume(Backend, checkpoint, data ?? TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer());
            trainer.Run();
        });
        Assert.True(((IAsyncResult)task).AsyncWaitHandle.WaitOne(Limit), $"the resume did not finish within {Limit.TotalSeconds} s (it hangs)");
        return task.Exception?.InnerException;
    }

    private InputFormatException RefusedWithin(string checkpoint)
    {
        var ex = ResumeWithin(checkpoint);
        Assert.NotNull(ex);
        output.WriteLine(ex.Message);
        var refusal = Assert.IsType<InputFormatException>(ex);
        Assert.Contains(TrainingCheckpoint.StateFile, refusal.File);
        Assert.DoesNotContain('\n', refusal.Message);
        return refusal;
    }

    [Fact]
    public void An_undamaged_checkpoint_resumes_and_finishes()
    {
        var ex = ResumeWithin(TrainTwoSteps());
        Assert.Null(ex);
    }

    [Fact]
    public void A_data_index_of_two_to_the_forty_is_refused_instead_of_skipping_forever()
    {
        // The built-in data is endless: the stream used to skip 2^40 examples one by one (generating each image).
        string step = TrainTwoSteps();
        EditState(step, s => s["data"]!["index"] = 1L << 40);
        var ex = RefusedWithin(step);
        Assert.Contains("data.index 1099511627776", ex.Message);
        Assert.Contains("expected data.index 12", ex.Message); // 2 steps x batch 6
    }

    [Fact]
    public void An_epoch_beyond_the_examples_drawn_is_refused()
    {
        string step = TrainTwoSteps();
        EditState(step, s => { s["data"]!["epoch"] = int.MaxValue; s["data"]!["index"] = 1; });
        var ex = RefusedWithin(step);
        Assert.Contains($"data.epoch {int.MaxValue}", ex.Message);
        Assert.Contains("outside 0 to 12", ex.Message);
    }

    [Fact]
    public void A_later_epoch_with_nothing_read_is_refused()
    {
        string step = TrainTwoSteps();
        EditState(step, s => { s["data"]!["epoch"] = 1; s["data"]!["index"] = 0; });
        var ex = RefusedWithin(step);
        Assert.Contains("data.index 0 in epoch 1", ex.Message);
        Assert.Contains("outside 1 to 11", ex.Message);
    }

    [Fact]
    public void A_step_beyond_the_runs_steps_is_refused_when_loading()
    {
        string step = TrainTwoSteps();
        EditState(step, s =>
        {
            s["step"] = 9;
            s["losses"] = new JsonArray(Enumerable.Range(0, 9).Select(_ => (JsonNode)JsonValue.Create(0.5)).ToArray());
            s["data"]!["index"] = 54;
        });
        var ex = RefusedWithin(step);
        Assert.Contains("step 9", ex.Message);
        Assert.Contains("expected 0 to settings.steps = 4", ex.Message);
    }

    [Fact]
    public void A_negative_step_is_refused_naming_the_range()
    {
        string step = TrainTwoSteps();
        EditState(step, s => s["step"] = -1);
        var ex = RefusedWithin(step);
        Assert.Contains("step -1", ex.Message);
        Assert.Contains("expected 0 to settings.steps = 4", ex.Message);
    }

    [Fact]
    public void A_recorded_loss_that_overflows_is_refused()
    {
        string step = TrainTwoSteps();
        string path = Path.Combine(step, TrainingCheckpoint.StateFile);
        // JSON has no NaN; 1e999 is the way an infinity gets into the file.
        string text = File.ReadAllText(path);
        var json = JsonNode.Parse(text)!.AsObject();
        string first = json["losses"]![0]!.ToJsonString();
        File.WriteAllText(path, text.Replace(first, "1e999", StringComparison.Ordinal));
        var ex = RefusedWithin(step);
        Assert.Contains("losses[0]", ex.Message);
    }

    [Fact]
    public void Settings_that_do_not_validate_are_refused_naming_the_setting()
    {
        string step = TrainTwoSteps();
        EditState(step, s => s["settings"]!["steps"] = int.MaxValue);
        var ex = RefusedWithin(step);
        Assert.Contains("settings:", ex.Message);
        Assert.Contains($"steps {int.MaxValue:N0}", ex.Message);
        Assert.Contains($"{ModelSize.MaxSteps:N0} or less", ex.Message);
    }

    [Fact]
    public void A_locked_value_that_is_no_tower_is_refused()
    {
        string step = TrainTwoSteps();
        EditState(step, s => s["settings"]!["locked"] = 99);
        var ex = RefusedWithin(step);
        Assert.Contains("locked must be None, Image, Text or both (\"Image, Text\"), got 99", ex.Message);
    }

    [Fact]
    public void An_unknown_dtype_is_refused()
    {
        string step = TrainTwoSteps();
        EditState(step, s => s["d_type"] = "float99");
        var ex = RefusedWithin(step);
        Assert.Contains("dtype: Unknown dtype 'float99'", ex.Message);
    }

    [Fact]
    public void A_batch_size_from_the_checkpoint_that_cannot_fit_is_refused_before_a_batch_is_allocated()
    {
        string step = TrainTwoSteps();
        // The data position moved with it (2 steps of the new batch), so only the size is wrong.
        EditState(step, s => { s["settings"]!["batch_size"] = int.MaxValue - 1; s["data"]!["index"] = 2L * (int.MaxValue - 1); });
        var ex = ResumeWithin(step);
        Assert.NotNull(ex);
        output.WriteLine(ex.Message);
        var refusal = Assert.IsType<ModelSizeException>(ex);
        Assert.Contains($"settings.batch_size of checkpoint '{step}' {int.MaxValue - 1}", refusal.Message);
        Assert.Contains("is the most that fits", refusal.Message);
    }

    [Fact]
    public void An_optimizer_step_of_1e300_is_refused_naming_the_file_and_the_states_step()
    {
        string step = TrainTwoSteps();
        string path = Path.Combine(step, TrainingCheckpoint.OptimizerFile);
        var state = SafeTensorsFile.ReadAllFloats(path);
        state.Set(AdamW.StepName, Tensor.Scalar(1e300));
        SafeTensorsWriter.Write(path, state.Select(kv => SafeTensorEntry.Float(kv.Key, kv.Value)));
        var ex = ResumeWithin(step);
        Assert.NotNull(ex);
        output.WriteLine(ex.Message);
        var refusal = Assert.IsType<InputFormatException>(ex);
        Assert.Equal(path, refusal.File);
        Assert.Contains("'step' is 1E+300", refusal.Message);
        Assert.Contains("is at step 2", refusal.Message);
    }

    /// <summary>A source with no examples at all (e.g. a folder emptied since the run started).</summary>
    private sealed class EmptySource(IImageTextSource like) : IImageTextSource
    {
        public string Description => like.Description; // the same description, so only the emptiness differs
        public int ImageSize => like.ImageSize;
        public int Channels => like.Channels;
        public IReadOnlyList<string> ClassNames => like.ClassNames;
        public IEnumerable<ImageTextExample> Examples(int seed) => [];
    }

    [Fact]
    public void Resuming_on_an_empty_source_fails_at_once_naming_the_position()
    {
        string step = TrainTwoSteps();
        var ex = ResumeWithin(step, new EmptySource(TrainingFixtures.TinyData()));
        Assert.NotNull(ex);
        output.WriteLine(ex.Message);
        Assert.IsType<ArgumentException>(ex);
        Assert.Contains("epoch 0, example 12", ex.Message);
        Assert.Contains("has only 0 examples", ex.Message);
    }

    [Fact]
    public void Train_resume_with_a_hostile_data_index_exits_with_one_line_instead_of_hanging()
    {
        // The CLI resumes on the built-in recipe's data: make a real CLI checkpoint first.
        string run = Path.Combine(_temp.Path, "cli-run");
        var (code, text) = SiglipProcess.Run(TimeSpan.FromMinutes(3), "train", "--steps", "2", "--batch-size", "4", "--skip-golden-check", "--out", run);
        output.WriteLine(text);
        Assert.Equal(0, code);
        string saved = TrainingCheckpoint.Resolve(run);
        EditState(saved, s => s["data"]!["index"] = 1L << 40);
        (code, text) = SiglipProcess.Run(Limit, "train", "--resume", run, "--steps", "3", "--skip-golden-check");
        output.WriteLine(text);
        Assert.Equal(1, code);
        string error = text.Split('\n').Single(l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.Contains("data.index 1099511627776", error);
        Assert.Contains("expected data.index 8", error);
        Assert.DoesNotContain("   at ", text);
    }
}
