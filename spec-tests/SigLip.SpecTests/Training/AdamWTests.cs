using FsCheck;
using FsCheck.Fluent;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;
using SigLip.Reference.Training;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Training;

public sealed class AdamWTests(ITestOutputHelper output)
{
    private static readonly Tolerance Tight = new(1e-15, 1e-13);

    private static ParameterSpec Weight(string name, params int[] shape) => new(name, shape, ParameterKind.Weight, Tower.Image);
    private static ParameterSpec Bias(string name, params int[] shape) => new(name, shape, ParameterKind.Bias, Tower.Image);

    [Fact]
    public void FirstStepMatchesAHandComputation()
    {
        // One step from zero moments: m = (1-b1) g, v = (1-b2) g^2, so after bias correction
        // m^ = g, sqrt(v^) = |g| and the update is lr * g / (|g| + eps). Decay multiplies by 1 - lr*wd.
        // lr 0.1, wd 0.01, g 0.5, p 1:  weight 0.999 - 0.05/0.50000001,  bias 1 - 0.05/0.50000001.
        var specs = new[] { Weight("w", 1), Bias("b", 1) };
        var parameters = new NamedTensors { { "w", Tensor.Scalar(1.0) }, { "b", Tensor.Scalar(1.0) } };
        var grads = new NamedTensors { { "w", Tensor.Scalar(0.5) }, { "b", Tensor.Scalar(0.5) } };
        var adam = new AdamW(specs);
        double norm = adam.Step(parameters, grads, new AdamWSettings(0.9, 0.999, 1e-8, 0.01, MaxGradNorm: 0), 0.1);

        AssertClose.Scalar(norm, Math.Sqrt(0.5), Tight, "norm");
        AssertClose.Scalar(parameters["w"].Data[0], 0.89900000199999996, Tight, "decayed weight");
        AssertClose.Scalar(parameters["b"].Data[0], 0.90000000199999996, Tight, "undecayed bias");
        Assert.Equal(1, adam.StepCount);
    }

    [Fact]
    public void GradientNormIsTheGlobalL2Norm()
    {
        var adam = new AdamW([Weight("a", 2), Bias("c", 1)]);
        var grads = new NamedTensors { { "a", new Tensor([2], [3.0, 0.0]) }, { "c", Tensor.Scalar(4.0) } };
        AssertClose.Scalar(adam.GradientNorm(grads), 5.0, Tight, "norm");
    }

    /// <summary>The textbook algorithm (Loshchilov and Hutter, Algorithm 2), written independently of AdamW.cs.</summary>
    private static void TextbookStep(double[] p, double[] g, double[] m, double[] v, int t, double lr, double b1, double b2, double eps, double wd, double clipScale)
    {
        for (int i = 0; i < p.Length; i++)
        {
            double gi = g[i] * clipScale;
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            double mHat = m[i] / (1 - Math.Pow(b1, t));
            double vHat = v[i] / (1 - Math.Pow(b2, t));
            p[i] = p[i] - lr * (mHat / (Math.Sqrt(vHat) + eps) + wd * p[i]);
        }
    }

    [Fact]
    public void SeveralStepsWithClippingMatchTheTextbookAlgorithm()
    {
        // Random shapes, gradients, rates; decayed and undecayed parameters; clipping sometimes active.
        var gen =
            from n in Gen.Choose(1, 6)
            from k in Gen.Choose(1, 4)
            from seed in Gen.Choose(0, 100000)
            from maxNorm in Gen.Elements(0.0, 0.1, 1.0, 100.0)
            from lr in Gen.Elements(1e-3, 3e-2, 0.5)
            from wd in Gen.Elements(0.0, 1e-4, 0.1)
            select (n, k, seed, maxNorm, lr, wd);
        Props.Check(gen, c =>
        {
            var rng = new Random(c.seed);
            var specs = new[] { Weight("w", c.n, c.k), Bias("b", c.k) };
            var parameters = new NamedTensors();
            foreach (var s in specs) parameters.Add(s.Name, new Tensor(s.Shape, Enumerable.Range(0, (int)s.Size).Select(_ => rng.NextDouble() * 2 - 1).ToArray()));
            var expected = parameters.DeepClone();
            var mW = new double[c.n * c.k]; var vW = new double[c.n * c.k];
            var mB = new double[c.k]; var vB = new double[c.k];
            var settings = new AdamWSettings(0.9, 0.98, 1e-6, c.wd, c.maxNorm);
            var adam = new AdamW(specs);
            for (int t = 1; t <= 4; t++)
            {
                var grads = new NamedTensors();
                foreach (var s in specs) grads.Add(s.Name, new Tensor(s.Shape, Enumerable.Range(0, (int)s.Size).Select(_ => (rng.NextDouble() * 2 - 1) * 3).ToArray()));
                double norm = Math.Sqrt(grads.Values.SelectMany(g => g.Data).Sum(x => x * x));
                double clip = c.maxNorm > 0 && norm > c.maxNorm ? c.maxNorm / (norm + 1e-6) : 1.0;
                AssertClose.Scalar(adam.Step(parameters, grads, settings, c.lr), norm, Tight, "returned norm");
                TextbookStep(expected["w"].Data, grads["w"].Data, mW, vW, t, c.lr, 0.9, 0.98, 1e-6, c.wd, clip);
                TextbookStep(expected["b"].Data, grads["b"].Data, mB, vB, t, c.lr, 0.9, 0.98, 1e-6, 0.0, clip);
            }
            var loose = new Tolerance(1e-13, 1e-12); // the two forms differ in rounding only
            AssertClose.Tensor(parameters["w"], expected["w"], loose, "w");
            AssertClose.Tensor(parameters["b"], expected["b"], loose, "b");
            AssertClose.Tensor(adam.GetState()["exp_avg.w"], new Tensor([c.n, c.k], mW), loose, "exp_avg.w");
            AssertClose.Tensor(adam.GetState()["exp_avg_sq.b"], new Tensor([c.k], vB), loose, "exp_avg_sq.b");
            return true;
        }, seed: 61, output, maxTest: 40);
    }

    [Fact]
    public void StateRoundTripsAndContinuesBitForBit()
    {
        var specs = new[] { Weight("w", 3), Bias("b", 2) };
        NamedTensors Grads(int t) => new() { { "w", new Tensor([3], [t, -2.0 * t, 0.5]) }, { "b", new Tensor([2], [1.0 / t, -t]) } };
        var settings = new AdamWSettings(WeightDecay: 0.1);
        var start = new NamedTensors { { "w", new Tensor([3], [0.1, 0.2, 0.3]) }, { "b", new Tensor([2], [0.0, 1.0]) } };

        var straight = start.DeepClone();
        var a = new AdamW(specs);
        for (int t = 1; t <= 4; t++) a.Step(straight, Grads(t), settings, 0.01);

        var resumed = start.DeepClone();
        var b = new AdamW(specs);
        for (int t = 1; t <= 2; t++) b.Step(resumed, Grads(t), settings, 0.01);
        var c = new AdamW(specs);
        c.SetState(b.GetState());
        Assert.Equal(2, c.StepCount);
        for (int t = 3; t <= 4; t++) c.Step(resumed, Grads(t), settings, 0.01);

        Assert.Equal(straight["w"].Data, resumed["w"].Data);
        Assert.Equal(straight["b"].Data, resumed["b"].Data);
        Assert.Equal(["exp_avg.w", "exp_avg_sq.w", "exp_avg.b", "exp_avg_sq.b", "step"], c.GetState().Keys);
    }

    [Fact]
    public void LockedTowerParametersAreNeitherTrainedNorDecayed()
    {
        var config = new SiglipConfig(
            new TextConfig(VocabSize: 11, HiddenSize: 4, IntermediateSize: 8, NumHiddenLayers: 1, NumAttentionHeads: 2, MaxPositionEmbeddings: 3, ProjectionSize: 6),
            new VisionConfig(HiddenSize: 6, IntermediateSize: 8, NumHiddenLayers: 1, NumAttentionHeads: 3, ImageSize: 4, PatchSize: 2));
        var trainable = AdamW.TrainableParameters(config, LockedTowers.Image);
        Assert.DoesNotContain(trainable, p => p.Tower == Tower.Image);
        Assert.Contains(trainable, p => p.Name == ParameterLayout.LogitScale);
        Assert.Contains(trainable, p => p.Name == ParameterLayout.LogitBias);

        var all = ParameterLayout.For(config);
        var parameters = new NamedTensors(all.Select(s => new KeyValuePair<string, Tensor>(s.Name, new Tensor(s.Shape, Enumerable.Repeat(0.5, (int)s.Size).ToArray()))));
        var before = parameters.DeepClone();
        // Gradients only for the trainable parameters, as a model with a locked image tower gives them.
        var grads = new NamedTensors(trainable.Select(s => new KeyValuePair<string, Tensor>(s.Name, new Tensor(s.Shape, Enumerable.Repeat(1.0, (int)s.Size).ToArray()))));
        new AdamW(trainable).Step(parameters, grads, new AdamWSettings(WeightDecay: 0.5), 0.1);
        foreach (var s in all)
        {
            bool changed = !parameters[s.Name].Data.SequenceEqual(before[s.Name].Data);
            Assert.True(changed == (s.Tower != Tower.Image), $"{s.Name}: changed = {changed}");
        }
    }

    [Fact]
    public void OnlyWeightsEmbeddingsAndTheProbeAreDecayed()
    {
        // Zero gradient: Adam's update is 0/(0+eps) = 0, so only the decay can move a parameter.
        var config = new SiglipConfig(
            new TextConfig(VocabSize: 5, HiddenSize: 4, IntermediateSize: 4, NumHiddenLayers: 1, NumAttentionHeads: 1, MaxPositionEmbeddings: 2),
            new VisionConfig(HiddenSize: 4, IntermediateSize: 4, NumHiddenLayers: 1, NumAttentionHeads: 1, ImageSize: 2, PatchSize: 1));
        var all = ParameterLayout.For(config);
        var parameters = new NamedTensors(all.Select(s => new KeyValuePair<string, Tensor>(s.Name, new Tensor(s.Shape, Enumerable.Repeat(2.0, (int)s.Size).ToArray()))));
        var grads = new NamedTensors(all.Select(s => new KeyValuePair<string, Tensor>(s.Name, Tensor.Zeros(s.Shape.ToArray()))));
        new AdamW(all).Step(parameters, grads, new AdamWSettings(WeightDecay: 0.1), 0.5);
        foreach (var s in all)
        {
            bool decayed = s.Name.EndsWith("probe") || s.Name.Contains("embedding.weight") || s.Name.Contains("in_proj_weight")
                || (s.Name.EndsWith(".weight") && !s.Name.Contains("norm"));
            double expected = decayed ? 2.0 * (1 - 0.5 * 0.1) : 2.0;
            Assert.True(parameters[s.Name].Data.All(x => x == expected), $"{s.Name}: {parameters[s.Name].Data[0]} expected {expected}");
        }
        Assert.Equal(2.0, parameters[ParameterLayout.LogitScale].Data[0]);
        Assert.Equal(2.0, parameters[ParameterLayout.LogitBias].Data[0]);
    }

    [Fact]
    public void NonFiniteGradientThrowsAndChangesNothing()
    {
        var specs = new[] { Weight("w", 2) };
        var parameters = new NamedTensors { { "w", new Tensor([2], [1.0, 2.0]) } };
        var adam = new AdamW(specs);
        // An ArithmeticException that names the tensor (NonFiniteTensorException), so the trainer can say where.
        var ex = Assert.Throws<NonFiniteTensorException>(() => adam.Step(parameters, new NamedTensors { { "w", new Tensor([2], [double.NaN, 0]) } }, new AdamWSettings(), 0.1));
        Assert.IsAssignableFrom<ArithmeticException>(ex);
        Assert.Contains("NaN", ex.Message);
        Assert.Equal("w", ex.TensorName);
        Assert.Equal([1.0, 2.0], parameters["w"].Data);
        Assert.Equal(0, adam.StepCount);
    }

    [Fact]
    public void BadStateIsRejectedWithTheName()
    {
        var adam = new AdamW([Weight("w", 2)]);
        var state = adam.GetState();
        state.Set("exp_avg.w", Tensor.Zeros(3));
        var ex = Assert.Throws<ArgumentException>(() => adam.SetState(state));
        Assert.Contains("exp_avg.w", ex.Message);
        var extra = adam.GetState();
        extra.Add("exp_avg.v", Tensor.Zeros(2));
        Assert.Contains("exp_avg.v", Assert.Throws<ArgumentException>(() => adam.SetState(extra)).Message);
    }
}
