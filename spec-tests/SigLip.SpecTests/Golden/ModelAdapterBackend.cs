using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Loss;
using SigLip.Reference.Models;

namespace SigLip.SpecTests.Golden;

/// <summary>
/// A minimal IBackend over SiglipModel and PairwiseLoss, so the verifier's own behaviour (corruption,
/// failures, locked towers) is tested without depending on any registered backend. The optional
/// <see cref="Tamper"/> changes results to prove that the verifier notices.
/// </summary>
internal sealed class ModelAdapterBackend : IBackend
{
    public string Name => "adapter";
    public string Device => "cpu";
    public DType DType { get; init; } = DType.Float64;

    /// <summary>Called on every result map (outputs and "grad.*"), to simulate a broken backend.</summary>
    public Action<string, Tensor>? Tamper { get; init; }
    /// <summary>Gradients for locked towers too (breaking the contract).</summary>
    public bool IgnoreLocks { get; init; }

    public LossResult Loss(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions options)
    {
        var r = PairwiseLoss.Compute(imageEmbeds, textEmbeds, logitScale, logitBias, options);
        Tamper?.Invoke("grad.image_embeds", r.GradImageEmbeds);
        return r;
    }

    public ISiglipModel CreateModel(SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, LockedTowers locked = LockedTowers.None) =>
        new Model(this, new SiglipModel(config, parameters), locked);

    public void Dispose() { }

    private sealed class Model(ModelAdapterBackend owner, SiglipModel model, LockedTowers locked) : ISiglipModel
    {
        private NamedTensors _grads = new();
        public SiglipConfig Config => model.Config;
        public LockedTowers Locked => locked;

        public StepResult Forward(SiglipBatch batch, LossOptions loss, bool collectOutputs)
        {
            var pass = model.Forward(batch, loss, locked);
            return new StepResult(pass.Loss, collectOutputs ? pass.Outputs : new Dictionary<string, Tensor>());
        }

        public StepResult ForwardBackward(SiglipBatch batch, LossOptions loss, bool collectOutputs)
        {
            var pass = model.Forward(batch, loss, owner.IgnoreLocks ? LockedTowers.None : locked);
            _grads = model.Backward(pass);
            foreach (var (name, t) in pass.Outputs) owner.Tamper?.Invoke(name, t);
            foreach (var (name, g) in _grads) owner.Tamper?.Invoke("grad." + name, g);
            return new StepResult(pass.Loss, collectOutputs ? pass.Outputs : new Dictionary<string, Tensor>());
        }

        public EncodedBatch EncodeForTraining(SiglipBatch batch) => throw new NotSupportedException("test adapter");
        public void BackwardFromEmbeddings(Tensor gradImageEmbeds, Tensor gradTextEmbeds, double gradLogitScale, double gradLogitBias) => throw new NotSupportedException("test adapter");
        public NamedTensors Gradients() => _grads;
        public void AllReduceGradients(SigLip.Reference.Distributed.ICommunicator communicator) => throw new NotSupportedException("test adapter");
        public double OptimizerStep(AdamWSettings settings, double learningRate) => throw new NotSupportedException("test adapter");
        public NamedTensors GetParameters() => model.Parameters.DeepClone();
        public void SetParameters(IReadOnlyDictionary<string, Tensor> parameters) => throw new NotSupportedException("test adapter");
        public NamedTensors GetOptimizerState() => new();
        public void SetOptimizerState(IReadOnlyDictionary<string, Tensor> state) => throw new NotSupportedException("test adapter");
        public Tensor EmbedImages(Tensor pixelValues) => model.EmbedImages(pixelValues);
        public Tensor EmbedTexts(TokenIds inputIds) => model.EmbedTexts(inputIds);
        public void Dispose() { }
    }
}
