using SigLip.Cli;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.IO.Golden;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Golden;

/// <summary>
/// The reference backend with one result element replaced after it ran: a NaN or an infinity that
/// a broken backend might return must fail that tensor, not slip through a comparison.
/// </summary>
internal sealed class TamperingBackend(IBackend inner, string target, int element, double value) : IBackend
{
    public string Name => inner.Name + "+tampered";
    public string Device => inner.Device;
    public DType DType => inner.DType;

    private Tensor Tamper(string name, Tensor t)
    {
        if (name != target) return t;
        var copy = new Tensor(t.Shape.ToArray(), (double[])t.Data.Clone());
        copy.Data[element] = value;
        return copy;
    }

    public LossResult Loss(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions options)
    {
        var r = inner.Loss(imageEmbeds, textEmbeds, logitScale, logitBias, options);
        return r with
        {
            Loss = target == OutputNames.Loss ? value : r.Loss,
            GradImageEmbeds = Tamper("grad.image_embeds", r.GradImageEmbeds),
            GradTextEmbeds = Tamper("grad.text_embeds", r.GradTextEmbeds),
        };
    }

    public ISiglipModel CreateModel(SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, LockedTowers locked = LockedTowers.None) =>
        new Model(this, inner.CreateModel(config, parameters, locked));

    public void Dispose() => inner.Dispose();

    private sealed class Model(TamperingBackend owner, ISiglipModel inner) : ISiglipModel
    {
        public SiglipConfig Config => inner.Config;
        public LockedTowers Locked => inner.Locked;
        public StepResult Forward(SiglipBatch batch, LossOptions loss, bool collectOutputs) => Tampered(inner.Forward(batch, loss, collectOutputs));
        public StepResult ForwardBackward(SiglipBatch batch, LossOptions loss, bool collectOutputs) => Tampered(inner.ForwardBackward(batch, loss, collectOutputs));

        private StepResult Tampered(StepResult r) =>
            new(r.Loss, r.Outputs.ToDictionary(kv => kv.Key, kv => owner.Tamper(kv.Key, kv.Value)));

        public EncodedBatch EncodeForTraining(SiglipBatch batch) => inner.EncodeForTraining(batch);
        public void BackwardFromEmbeddings(Tensor gradImageEmbeds, Tensor gradTextEmbeds, double gradLogitScale, double gradLogitBias) =>
            inner.BackwardFromEmbeddings(gradImageEmbeds, gradTextEmbeds, gradLogitScale, gradLogitBias);

        public NamedTensors Gradients()
        {
            var grads = new NamedTensors();
            foreach (var (name, g) in inner.Gradients()) grads.Add(name, owner.Tamper(OutputNames.GradPrefix + name, g));
            return grads;
        }

        public void AllReduceGradients(SigLip.Reference.Distributed.ICommunicator communicator) => inner.AllReduceGradients(communicator);
        public double OptimizerStep(AdamWSettings settings, double learningRate) => inner.OptimizerStep(settings, learningRate);
        public NamedTensors GetParameters() => inner.GetParameters();
        public void SetParameters(IReadOnlyDictionary<string, Tensor> parameters) => inner.SetParameters(parameters);
        public NamedTensors GetOptimizerState() => inner.GetOptimizerState();
        public void SetOptimizerState(IReadOnlyDictionary<string, Tensor> state) => inner.SetOptimizerState(state);
        public Tensor EmbedImages(Tensor pixelValues) => inner.EmbedImages(pixelValues);
        public Tensor EmbedTexts(TokenIds inputIds) => inner.EmbedTexts(inputIds);
        public void Dispose() => inner.Dispose();
    }
}

[Collection("Golden generation")]
public sealed class NonFiniteVerdictTests(ITestOutputHelper output)
{
    public static TheoryData<string, string, int, double> Tampered => new()
    {
        { "model-tiny", OutputNames.ImageEmbeds, 3, double.NaN },
        { "model-tiny", OutputNames.ImageEmbeds, 3, double.PositiveInfinity },
        { "model-tiny", "grad.text_model.encoder.layers.0.mlp.fc1.weight", 5, double.NaN },
        { "model-tiny", "grad.text_model.encoder.layers.0.mlp.fc1.weight", 5, double.PositiveInfinity },
        { "loss-n7-d16", "grad.text_embeds", 2, double.NaN },
        { "loss-n7-d16", "grad.text_embeds", 2, double.NegativeInfinity },
    };

    [Theory]
    [MemberData(nameof(Tampered))]
    public void A_non_finite_element_from_the_backend_fails_that_tensor(string caseName, string target, int element, double value)
    {
        using var backend = new TamperingBackend(CliBackends.Registry().Start("reference"), target, element, value);
        var report = GoldenVerifier.Verify(backend, RepoPaths.Golden, n => n == caseName);
        foreach (var f in report.Failures) output.WriteLine(f);
        var c = Assert.Single(report.Cases);
        Assert.Equal(GoldenCaseStatus.Failed, c.Status);
        var bad = Assert.Single(c.Tensors, t => !t.Passed);
        Assert.Equal(target, bad.Name);
        Assert.False(report.Passed);
    }

    private static readonly Tolerance Loose = new(1e-3, 1e-3);

    [Theory]
    [InlineData(double.NaN, 1.0)]
    [InlineData(double.PositiveInfinity, 1.0)]
    [InlineData(double.NegativeInfinity, 1.0)]
    [InlineData(1.0, double.NaN)]
    [InlineData(1.0, double.PositiveInfinity)]   // atol + rtol * inf is inf: must not accept everything
    [InlineData(1.0, double.NegativeInfinity)]
    [InlineData(double.NaN, double.NaN)]
    [InlineData(double.PositiveInfinity, double.PositiveInfinity)]
    public void Comparison_fails_on_a_non_finite_actual_or_expected_and_points_at_it(double actual, double expected)
    {
        var a = new Tensor([3], [0.5, actual, -2]);
        var e = new Tensor([3], [0.5, expected, -2]);
        var c = Comparison.Of("t", a, e, Loose);
        output.WriteLine(c.ToString());
        Assert.False(c.Passed, c.ToString());
        Assert.Equal([1], c.WorstIndex);
        Assert.Contains("FAIL", c.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Comparison_still_passes_finite_values_within_tolerance()
    {
        var c = Comparison.Of("t", new Tensor([2], [1.0005, -2]), new Tensor([2], [1.0, -2]), Loose);
        Assert.True(c.Passed, c.ToString());
    }
}
