using SigLip.Reference.Layers;
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
    /// <inheritdoc/>
    public string Name => ReferenceBackendProvider.BackendName;
    /// <inheritdoc/>
    public string Device => $"cpu (managed, {Environment.ProcessorCount} cores)";
    /// <inheritdoc/>
    public DType DType => DType.Float64;

    /// <inheritdoc/>
    public LossResult Loss(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions options) =>
        PairwiseLoss.Compute(imageEmbeds, textEmbeds, logitScale, logitBias, options);

    /// <inheritdoc/>
    public ISiglipModel CreateModel(SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, LockedTowers locked = LockedTowers.None) =>
        new ReferenceSiglipModel(config, parameters, locked);

    /// <summary>Nothing to release: everything is managed memory.</summary>
    public void Dispose() { }
}

/// <summary>
/// A <see cref="SiglipModel"/> with its AdamW state, behind the backend contract, computing with the
/// operations it was given (<see cref="ILayerOps"/>). A locked tower is passed to the model's forward
/// pass, so its backward stops at that tower's output and never computes its gradients; AdamW is
/// built without the locked tower's parameters, so they are never touched. The reference backend uses
/// it as it is (fresh buffers every step); a backend with other operations may override
/// <see cref="WorkspaceFor"/> to reuse its buffers.
/// </summary>
public class HostSiglipModel : ISiglipModel
{
    private readonly SiglipModel _model;
    private readonly AdamW _optimizer;
    private NamedTensors? _gradients;
    private SiglipEncoding? _encoding;   // between EncodeForTraining and BackwardFromEmbeddings

    /// <summary>A model holding copies of <paramref name="parameters"/> (HF names; every one of the config's, no others).</summary>
    /// <param name="ops">the primitive operations (null: <see cref="ReferenceOps"/>).</param>
    public HostSiglipModel(SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, LockedTowers locked = LockedTowers.None, ILayerOps? ops = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        Locked = locked;
        _model = new SiglipModel(config, parameters, ops);
        _optimizer = new AdamW(AdamW.TrainableParameters(config, locked));
    }

    /// <inheritdoc/>
    public SiglipConfig Config { get; }
    /// <inheritdoc/>
    public LockedTowers Locked { get; }

    /// <summary>The live parameters (the optimizer updates their data in place); not a copy.</summary>
    public NamedTensors Parameters => _model.Parameters;

    /// <summary>The underlying model (for tests and tools that need its forward pass).</summary>
    public SiglipModel Inner => _model;

    /// <inheritdoc/>
    public StepResult Forward(SiglipBatch batch, LossOptions loss, bool collectOutputs)
    {
        var pass = _model.Forward(batch, loss, Locked);
        return new StepResult(pass.Loss, collectOutputs ? pass.Outputs : new Dictionary<string, Tensor>());
    }

    /// <inheritdoc/>
    public StepResult ForwardBackward(SiglipBatch batch, LossOptions loss, bool collectOutputs)
    {
        _gradients = null;
        _encoding = null;
        if (collectOutputs)
        {
            var pass = _model.Forward(batch, loss, Locked);
            _gradients = _model.Backward(pass);
            return new StepResult(pass.Loss, pass.Outputs);
        }
        // The one-process case of the split step: encode, the loss here, backward from its gradients.
        var encoding = Encode(batch);
        var r = _model.Ops.PairwiseLoss(encoding.ImageEmbeds, encoding.TextEmbeds, _model.LogitScale, _model.LogitBias, loss);
        _gradients = _model.BackwardFromEmbeddings(encoding, r.GradImageEmbeds, r.GradTextEmbeds, r.GradLogitScale, r.GradLogitBias);
        return new StepResult(r.Loss, NoOutputs);
    }

    /// <inheritdoc/>
    public EncodedBatch EncodeForTraining(SiglipBatch batch)
    {
        _gradients = null;
        _encoding = Encode(batch);
        // Copies: a workspace's buffers are overwritten by the next step.
        return new EncodedBatch(_encoding.ImageEmbeds.Clone(), _encoding.TextEmbeds.Clone(), _model.LogitScale, _model.LogitBias);
    }

    /// <inheritdoc/>
    public void BackwardFromEmbeddings(Tensor gradImageEmbeds, Tensor gradTextEmbeds, double gradLogitScale, double gradLogitBias)
    {
        var encoding = _encoding ?? throw new InvalidOperationException("No encoded batch to run backward from: call EncodeForTraining first (once per BackwardFromEmbeddings).");
        _gradients = _model.BackwardFromEmbeddings(encoding, gradImageEmbeds, gradTextEmbeds, gradLogitScale, gradLogitBias);
        _encoding = null;
    }

    private SiglipEncoding Encode(SiglipBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return _model.Encode(batch, Locked, WorkspaceFor(batch));
    }

    /// <summary>
    /// Buffers for a training step of this batch's shape, reused from step to step; null (this one):
    /// fresh buffers every step, as the specification does. A backend may override it to reuse its buffers.
    /// </summary>
    protected virtual SiglipWorkspace? WorkspaceFor(SiglipBatch batch) => null;

    private static readonly IReadOnlyDictionary<string, Tensor> NoOutputs = System.Collections.ObjectModel.ReadOnlyDictionary<string, Tensor>.Empty;

    /// <inheritdoc/>
    public NamedTensors Gradients() =>
        (_gradients ?? throw new InvalidOperationException("No gradients yet: call ForwardBackward first.")).DeepClone();

    /// <inheritdoc/>
    public void AllReduceGradients(Distributed.ICommunicator communicator)
    {
        ArgumentNullException.ThrowIfNull(communicator);
        var gradients = _gradients ?? throw new InvalidOperationException("No gradients to all-reduce: call BackwardFromEmbeddings first.");
        // One message: every tower gradient, flat, in layout order (the same order on every rank).
        var towers = gradients.Where(g => g.Key is not ParameterLayout.LogitScale and not ParameterLayout.LogitBias).Select(g => g.Value).ToList();
        long total = towers.Sum(t => (long)t.Size);
        if (total > Array.MaxLength) throw new InvalidOperationException($"The tower gradients hold {total} values, more than one array can.");
        var flat = new double[total];
        long offset = 0;
        foreach (var t in towers) { Array.Copy(t.Data, 0, flat, offset, t.Size); offset += t.Size; }
        communicator.AllReduceSum(flat, flat.Length);
        offset = 0;
        foreach (var t in towers) { Array.Copy(flat, offset, t.Data, 0, t.Size); offset += t.Size; }
    }

    /// <inheritdoc/>
    public double OptimizerStep(AdamWSettings settings, double learningRate)
    {
        var gradients = _gradients ?? throw new InvalidOperationException("No gradients to step with: call ForwardBackward first.");
        return _optimizer.Step(_model.Parameters, gradients, settings, learningRate);
    }

    /// <inheritdoc/>
    public NamedTensors GetParameters() => _model.Parameters.DeepClone();

    /// <inheritdoc/>
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

    /// <inheritdoc/>
    public NamedTensors GetOptimizerState() => _optimizer.GetState();

    /// <inheritdoc/>
    public void SetOptimizerState(IReadOnlyDictionary<string, Tensor> state) => _optimizer.SetState(state);

    /// <inheritdoc/>
    public Tensor EmbedImages(Tensor pixelValues) => _model.EmbedImages(pixelValues);

    /// <inheritdoc/>
    public Tensor EmbedTexts(TokenIds inputIds) => _model.EmbedTexts(inputIds);

    /// <summary>Nothing to release here: everything is managed memory.</summary>
    public virtual void Dispose() { }
}

/// <summary>The reference backend's model: a <see cref="HostSiglipModel"/> on the specification's loops (<see cref="ReferenceOps"/>), fresh buffers every step.</summary>
public sealed class ReferenceSiglipModel : HostSiglipModel
{
    /// <summary>A model holding copies of <paramref name="parameters"/> (HF names; every one of the config's, no others).</summary>
    public ReferenceSiglipModel(SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, LockedTowers locked = LockedTowers.None)
        : base(config, parameters, locked, ReferenceOps.Instance) { }
}
