using SigLip.Backends.Managed;
using SigLip.Backends.TorchSharp;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Distributed;
using SigLip.Reference.Models;
using SigLip.Reference.Training;
using SigLip.SpecTests.Support;
using SigLip.SpecTests.TorchSharp;
using Xunit.Abstractions;
using Tensor = SigLip.Reference.Tensor;

namespace SigLip.SpecTests.Training;

/// <summary>
/// Issue 15: a non-finite gradient or parameter stops training, naming the step and the first tensor it was found in
/// (layout order), and the last good checkpoint is kept exactly as it was. On the reference and managed backends
/// (which share the core AdamW) and on torch (its own AdamW on libtorch tensors).
/// </summary>
public sealed class NonFiniteStepTests(ITestOutputHelper output)
{
    public static TheoryData<string> HostBackends => ["reference", "managed"];

    private static IBackend Start(string name) => name switch
    {
        "reference" => new ReferenceBackend(),
        "managed" => new ManagedBackendProvider().Start(new BackendOptions(DType: DType.Float64, Threads: 1)),
        _ => throw new ArgumentException(name),
    };

    private static TrainingSettings Settings(int steps) =>
        new(Steps: steps, BatchSize: 6, LearningRate: 1e-2, WarmupSteps: 1, MinLearningRate: 1e-4, Seed: 3, CheckpointEvery: 2, KeepCheckpoints: 10);

    private sealed class Progress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    // ----- the core AdamW itself -----

    [Fact]
    public void AdamW_names_the_first_non_finite_gradient_in_layout_order_and_changes_nothing()
    {
        var config = TrainingFixtures.TinyConfig();
        var layout = ParameterLayout.For(config);
        var parameters = ModelInit.Random(config, seed: 1);
        var before = parameters.DeepClone();
        var gradients = new NamedTensors();
        foreach (var spec in layout) gradients.Add(spec.Name, new Tensor([.. spec.Shape], new double[spec.Size]));
        // Two poisoned gradients: a late one with NaN, an earlier one with +Inf at its third element.
        string late = layout[^3].Name, early = layout[layout.Count / 3].Name;
        gradients[late].Data[0] = double.NaN;
        gradients[early].Data[2] = double.PositiveInfinity;
        var adamW = new AdamW(layout);

        var ex = Assert.Throws<NonFiniteTensorException>(() => adamW.Step(parameters, gradients, new AdamWSettings(), 1e-3));
        output.WriteLine(ex.Message);
        Assert.True(ex.IsGradient);
        Assert.Equal(early, ex.TensorName);
        Assert.Contains($"the gradient of '{early}' is ∞ (flat index 2) at optimizer step 1", ex.Message.Replace("Infinity", "∞"));
        Assert.Equal(0, adamW.StepCount);
        foreach (var (name, tensor) in before) Assert.Equal(tensor.Data, parameters[name].Data);
    }

    [Fact]
    public void AdamW_says_when_the_norm_overflows_although_every_gradient_is_finite()
    {
        var config = TrainingFixtures.TinyConfig();
        var layout = ParameterLayout.For(config);
        var gradients = new NamedTensors();
        foreach (var spec in layout) gradients.Add(spec.Name, new Tensor([.. spec.Shape], new double[spec.Size]));
        string big = layout[5].Name;
        gradients[big].Data[0] = 1e200; // its square overflows
        var ex = Assert.Throws<NonFiniteTensorException>(() => new AdamW(layout).Step(ModelInit.Random(config, seed: 1), gradients, new AdamWSettings(), 1e-3));
        output.WriteLine(ex.Message);
        Assert.Contains("norm overflows", ex.Message);
        Assert.Contains($"1E+200 in '{big}'", ex.Message);
    }

    // ----- through the trainer -----

    /// <summary>
    /// Wraps a host backend (reference or managed): its models step with the core AdamW, as the backend's own do, but at
    /// optimizer step <paramref name="poisonStep"/> the gradients of <paramref name="poisoned"/> get a NaN first.
    /// </summary>
    private sealed class PoisonedGradientBackend(IBackend inner, int poisonStep, IReadOnlyList<string> poisoned) : IBackend
    {
        public string Name => inner.Name;
        public string Device => inner.Device;
        public DType DType => inner.DType;
        public LossResult Loss(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions options) =>
            inner.Loss(imageEmbeds, textEmbeds, logitScale, logitBias, options);
        public ISiglipModel CreateModel(SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, LockedTowers locked = LockedTowers.None) =>
            new Model((HostSiglipModel)inner.CreateModel(config, parameters, locked), poisonStep, poisoned);
        public void Dispose() { }

        private sealed class Model(HostSiglipModel inner, int poisonStep, IReadOnlyList<string> poisoned) : ISiglipModel
        {
            private readonly AdamW _optimizer = new(AdamW.TrainableParameters(inner.Config, inner.Locked));
            public SiglipConfig Config => inner.Config;
            public LockedTowers Locked => inner.Locked;
            public StepResult Forward(SiglipBatch batch, LossOptions loss, bool collectOutputs) => inner.Forward(batch, loss, collectOutputs);
            public StepResult ForwardBackward(SiglipBatch batch, LossOptions loss, bool collectOutputs) => inner.ForwardBackward(batch, loss, collectOutputs);
            public EncodedBatch EncodeForTraining(SiglipBatch batch) => inner.EncodeForTraining(batch);
            public void BackwardFromEmbeddings(Tensor gi, Tensor gt, double gs, double gb) => inner.BackwardFromEmbeddings(gi, gt, gs, gb);
            public NamedTensors Gradients() => inner.Gradients();
            public void AllReduceGradients(ICommunicator communicator) => inner.AllReduceGradients(communicator);
            public double OptimizerStep(AdamWSettings settings, double learningRate)
            {
                var gradients = inner.Gradients();
                if (_optimizer.StepCount + 1 == poisonStep)
                    foreach (var name in poisoned) gradients[name].Data[^1] = double.NaN;
                return _optimizer.Step(inner.Parameters, gradients, settings, learningRate);
            }
            public NamedTensors GetParameters() => inner.GetParameters();
            public void SetParameters(IReadOnlyDictionary<string, Tensor> parameters) => inner.SetParameters(parameters);
            public NamedTensors GetOptimizerState() => _optimizer.GetState();
            public void SetOptimizerState(IReadOnlyDictionary<string, Tensor> state) => _optimizer.SetState(state);
            public Tensor EmbedImages(Tensor pixelValues) => inner.EmbedImages(pixelValues);
            public Tensor EmbedTexts(TokenIds inputIds) => inner.EmbedTexts(inputIds);
            public void Dispose() => inner.Dispose();
        }
    }

    private static Dictionary<string, byte[]> Snapshot(string run) =>
        Directory.EnumerateFiles(run, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(run, f), File.ReadAllBytes);

    [Theory]
    [MemberData(nameof(HostBackends))]
    public void A_NaN_gradient_at_step_3_names_the_step_and_the_first_tensor_and_keeps_step_2s_checkpoint_byte_for_byte(string backendName)
    {
        using var folder = new TempFolder();
        string run = Path.Combine(folder.Path, "run");
        var config = TrainingFixtures.TinyConfig();
        var layout = ParameterLayout.For(config);
        // Poisoned: one late and one earlier tensor; the earlier (layout order) must be named.
        string[] poisoned = [layout[^4].Name, layout[layout.Count / 2].Name];
        using var real = Start(backendName);
        using var backend = new PoisonedGradientBackend(real, poisonStep: 3, poisoned);
        using var trainer = Trainer.Start(backend, config, TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), Settings(steps: 6), run);
        Dictionary<string, byte[]>? atStep2 = null;
        var ex = Assert.Throws<TrainingDivergedException>(() => trainer.Run(new Progress(p => { if (p.Step == 2) atStep2 = Snapshot(run); })));
        output.WriteLine(ex.Message);

        Assert.Equal(3, ex.Step);
        Assert.Contains("The gradient is not finite at step 3 of 6", ex.Message);
        Assert.Contains($"the gradient of '{layout[layout.Count / 2].Name}' is NaN", ex.Message);
        Assert.DoesNotContain(layout[^4].Name, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.Equal(2, trainer.Step);

        // The last good checkpoint: `latest` still names step 2, every file byte for byte as saved, nothing of step 3.
        string step2 = TrainingCheckpoint.StepFolder(run, 2);
        Assert.Equal(step2, ex.LastGoodCheckpoint);
        Assert.Equal("step-000002", File.ReadAllText(Path.Combine(run, TrainingCheckpoint.LatestFile)).Trim());
        Assert.NotNull(atStep2);
        var now = Snapshot(run);
        Assert.Equal(atStep2!.Keys.Order(), now.Keys.Order());
        foreach (var (file, bytes) in atStep2) Assert.True(bytes.AsSpan().SequenceEqual(now[file]), $"{file} changed after the divergence");
        Assert.Empty(Directory.EnumerateFileSystemEntries(run, "*000003*", SearchOption.AllDirectories));
        Assert.Equal(2, TrainingCheckpoint.Load(run).State.Step);
    }

    [Theory]
    [MemberData(nameof(HostBackends))]
    public void A_parameter_that_a_step_makes_infinite_stops_training_naming_it_and_the_step(string backendName)
    {
        // lr x weight decay = 1e310 overflows: the decayed parameters are multiplied by 1 - inf. Step 1's forward is
        // finite (the initial parameters); only the update makes the parameters non-finite.
        var settings = Settings(steps: 4) with
        {
            LearningRate = 1e300, MinLearningRate = 1e300, WarmupSteps = 0, CheckpointEvery = 0,
            Optimizer = new AdamWSettings(WeightDecay: 1e10),
        };
        var config = TrainingFixtures.TinyConfig();
        string firstDecayed = ParameterLayout.For(config).First(p => p.Decayed).Name;
        using var backend = Start(backendName);
        using var trainer = Trainer.Start(backend, config, TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), settings);
        var ex = Assert.Throws<TrainingDivergedException>(() => trainer.Run());
        output.WriteLine(ex.Message);
        Assert.Equal(1, ex.Step);
        Assert.Contains("A parameter is not finite after step 1 of 4", ex.Message);
        Assert.Contains($"parameter '{firstDecayed}' became", ex.Message);
        Assert.Contains("lower the learning rate or the weight decay", ex.Message);
        var inner = Assert.IsType<NonFiniteTensorException>(ex.InnerException);
        Assert.False(inner.IsGradient);
        Assert.Equal(firstDecayed, inner.TensorName);
    }

    // ----- torch (its own AdamW) -----

    private static SiglipBatch TinyBatch(SiglipConfig config)
    {
        using var stream = new BatchStream(TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), 1, 6, config.Text.MaxPositionEmbeddings, 3, 8);
        return stream.Next();
    }

    [SkippableFact]
    public void Torch_AdamW_names_the_first_non_finite_gradient_and_changes_nothing()
    {
        using var backend = TorchCpu.Start(output, "float32");
        var config = TrainingFixtures.TinyConfig();
        var layout = ParameterLayout.For(config);
        using var model = (TorchSiglipModel)backend.CreateModel(config, ModelInit.Random(config, seed: 2));
        model.ForwardBackward(TinyBatch(config), LossOptions.Default, collectOutputs: false);
        string late = layout[^4].Name, early = layout[layout.Count / 2].Name;
        var named = model.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (global::TorchSharp.torch.no_grad())
        {
            named[late].grad!.view(-1)[0].fill_(double.NaN);
            named[early].grad!.view(-1)[1].fill_(double.NegativeInfinity);
        }
        var before = model.GetParameters();
        var ex = Assert.Throws<NonFiniteTensorException>(() => model.OptimizerStep(new AdamWSettings(), 1e-3));
        output.WriteLine(ex.Message);
        Assert.Equal(early, ex.TensorName);
        Assert.Contains($"the gradient of '{early}' is -", ex.Message);
        Assert.Contains("(flat index 1) at optimizer step 1", ex.Message);
        var after = model.GetParameters();
        foreach (var (name, tensor) in before) Assert.Equal(tensor.Data, after[name].Data);
    }

    [SkippableFact]
    public void Torch_training_stops_naming_a_parameter_that_a_step_makes_infinite()
    {
        using var backend = TorchCpu.Start(output, "float32");
        var settings = Settings(steps: 4) with
        {
            LearningRate = 1e300, MinLearningRate = 1e300, WarmupSteps = 0, CheckpointEvery = 0,
            Optimizer = new AdamWSettings(WeightDecay: 1e10),
        };
        var config = TrainingFixtures.TinyConfig();
        string firstDecayed = ParameterLayout.For(config).First(p => p.Decayed).Name;
        using var trainer = Trainer.Start(backend, config, TrainingFixtures.TinyData(), TrainingFixtures.Tokenizer(), settings);
        var ex = Assert.Throws<TrainingDivergedException>(() => trainer.Run());
        output.WriteLine(ex.Message);
        Assert.Equal(1, ex.Step);
        Assert.Contains("A parameter is not finite after step 1 of 4", ex.Message);
        Assert.Contains($"parameter '{firstDecayed}' became", ex.Message);
    }
}
