using SigLip.Reference.Loss;
using SigLip.Reference.Models;
using SigLip.Reference.Training;

namespace SigLip.Reference.Backends;

/// <summary>
/// The started reference backend: the managed float64 implementation (<see cref="SiglipModel"/>,
/// <see cref="PairwiseLoss"/>, <see cref="AdamW"/>) behind the backend contract. It IS the
/// specification the other backends are measured against. Stateless: every model it creates is independent.
/// </summary>
/// <remarks>Started by <see cref="ReferenceBackendProvider"/>.</remarks>
public sealed class ReferenceBackend : IBackend
{
    public string Name => ReferenceBackendProvider.BackendName;
    public string Device => $"cpu (managed, {Environment.ProcessorCount} cores)";
    public string DType => "float64";

    public LossResult Loss(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions options) =>
        PairwiseLoss.Compute(imageEmbeds, textEmbeds, logitScale, logitBias, options);

    public ISiglipModel CreateModel(SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, LockedTowers locked = LockedTowers.None) =>
        new ReferenceSiglipModel(config, parameters, locked);

    public void Dispose() { }
}

/// <summary>
/// A <see cref="SiglipModel"/> with its AdamW state. A locked tower is passed to the model's forward
/// pass, so its backward stops at that tower's output and never computes its gradients; AdamW is
/// built without the locked tower's parameters, so they are never touched.
/// </summary>
public sealed class ReferenceSiglipModel : ISiglipModel
{
    private readonly SiglipModel _model;
    private readonly AdamW _optimizer;
    private NamedTensors? _gradients;
    private static readonly IReadOnlyDictionary<string, Tensor> NoOutputs = System.Collections.ObjectModel.ReadOnlyDictionary<string, Tensor>.Empty;

    public ReferenceSiglipModel(SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, LockedTowers locked = LockedTowers.None)
    {
        config.Validate();
        Config = config;
        Locked = locked;
        _model = new SiglipModel(config, parameters);
        _optimizer = new AdamW(AdamW.TrainableParameters(config, locked));
    }

    public SiglipConfig Config { get; }
    public LockedTowers Locked { get; }

    /// <summary>The live parameters (the optimizer updates their data in place); not a copy.</summary>
    public NamedTensors Parameters => _model.Parameters;

    /// <summary>The underlying model (for tests and tools that need its forward pass).</summary>
    public SiglipModel Inner => _model;

    public StepResult Forward(SiglipBatch batch, LossOptions loss, bool collectOutputs)
    {
        var pass = _model.Forward(batch, loss, Locked);
        return new StepResult(pass.Loss, collectOutputs ? pass.Outputs : new Dictionary<string, Tensor>());
    }

    public StepResult ForwardBackward(SiglipBatch batch, LossOptions loss, bool collectOutputs)
    {
        _gradients = null;
        if (collectOutputs)
        {
            var pass = _model.Forward(batch, loss, Locked);
            _gradients = _model.Backward(pass);
            return new StepResult(pass.Loss, pass.Outputs);
        }
        // Training: the model reuses its activation and gradient buffers (Gradients() hands out copies).
        var step = _model.ForwardReusing(batch, loss, Locked);
        _gradients = _model.BackwardReusing(step);
        return new StepResult(step.Loss, NoOutputs);
    }

    public NamedTensors Gradients() =>
        (_gradients ?? throw new InvalidOperationException("No gradients yet: call ForwardBackward first.")).DeepClone();

    public double OptimizerStep(AdamWSettings settings, double learningRate)
    {
        var gradients = _gradients ?? throw new InvalidOperationException("No gradients to step with: call ForwardBackward first.");
        return _optimizer.Step(_model.Parameters, gradients, settings, learningRate);
    }

    public NamedTensors GetParameters() => _model.Parameters.DeepClone();

    public void SetParameters(IReadOnlyDictionary<string, Tensor> parameters)
    {
        // Check all before changing any.
        foreach (var (name, tensor) in parameters)
        {
            if (!_model.Parameters.TryGetValue(name, out var target))
                throw new ArgumentException($"SetParameters: '{name}' is not a parameter of this model.");
            if (!target.Shape.SequenceEqual(tensor.Shape))
                throw new ArgumentException($"SetParameters: '{name}' has shape {Tensor.ShapeToString(tensor.Shape)}, the model's is {Tensor.ShapeToString(target.Shape)}.");
        }
        foreach (var (name, tensor) in parameters)
            Array.Copy(tensor.Data, _model.Parameters[name].Data, tensor.Size);
    }

    public NamedTensors GetOptimizerState() => _optimizer.GetState();

    public void SetOptimizerState(IReadOnlyDictionary<string, Tensor> state) => _optimizer.SetState(state);

    public Tensor EmbedImages(Tensor pixelValues) => _model.EmbedImages(pixelValues);

    public Tensor EmbedTexts(TokenIds inputIds) => _model.EmbedTexts(inputIds);

    public void Dispose() { }
}
