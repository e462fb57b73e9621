using FsCheck;
using FsCheck.Fluent;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Layers;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Models;

/// <summary>
/// The whole model's hand-written backward against central finite differences of its loss, on tiny
/// random configurations (text width != vision width, 1..3 heads, batch 1..4), spot-checking a few
/// random elements of every parameter tensor. Run on the reference model and on the same model on the
/// managed kernels (float64); the fixed odd-head cases also on the torch backend's own model (autograd),
/// whose other sizes are compared with the reference model in TorchSharp/TorchVersusReferenceTests.
/// </summary>
public sealed class SiglipModelGradientTests(ITestOutputHelper output)
{
    private const int ElementsPerTensor = 3;

    /// <summary>Checks every gradient tensor of <paramref name="grads"/> against finite differences of the model's loss.</summary>
    private static void CheckAgainstFiniteDifferences(SiglipModel model, SiglipBatch batch, LossOptions options, LockedTowers locked, NamedTensors grads, int seed)
    {
        var rng = new DeterministicRandom(seed + 3);
        double Loss() => model.Forward(batch, options, locked).Loss;
        foreach (var (name, grad) in grads)
        {
            var parameter = model.Parameters[name];
            Assert.Equal(parameter.Shape, grad.Shape);
            GradCheck.Check(name, parameter.Data, grad.Data, Loss, TinyModels.SomeIndices(rng, parameter.Size, ElementsPerTensor));
        }
    }

    /// <summary>Checks every gradient tensor of <paramref name="grads"/> against finite differences of the model's loss.</summary>
    private static void CheckAgainstFiniteDifferences(ModelUnderTest model, SiglipBatch batch, LossOptions options, NamedTensors grads, int seed)
    {
        var rng = new DeterministicRandom(seed + 3);
        foreach (var (name, grad) in grads)
        {
            var parameter = model.Parameters[name];
            Assert.Equal(parameter.Shape, grad.Shape);
            GradCheck.Check(name, parameter.Data, grad.Data, () => model.Loss(batch, options, name), TinyModels.SomeIndices(rng, parameter.Size, ElementsPerTensor));
            model.Sync(name); // the values are restored; the torch model must see them before the next tensor is perturbed
        }
    }

    /// <summary>The reference model and the managed kernels in float64 (the torch model's FD checks are the fixed cases below).</summary>
    public static TheoryData<string> ReferenceAndManaged => [OpsUnderTest.Reference, OpsUnderTest.ManagedFloat64];

    [Theory]
    [MemberData(nameof(ReferenceAndManaged))]
    public void AllParameterGradientsMatchFiniteDifferencesOnRandomTinyModels(string backend)
    {
        var gen = from config in TinyModels.Configs from batch in Gen.Choose(1, 4) from seed in Gen.Choose(0, 1_000_000)
                  from kind in Gen.Elements(LossKind.Sigmoid, LossKind.Softmax) from eps in Gen.Elements(0.0, 1e-8)
                  select (config, batch, seed, kind, eps);
        Props.Check(gen, c =>
        {
            var model = new SiglipModel(c.config, TinyModels.Parameters(c.config, c.seed), OpsUnderTest.Get(backend));
            var batch = TinyModels.Batch(c.config, c.batch, c.seed);
            var options = new LossOptions(c.kind, Chunks: c.kind == LossKind.Sigmoid && c.batch % 2 == 0 ? 2 : 1, NormEpsilon: c.eps);
            var grads = model.Backward(model.Forward(batch, options));
            Assert.Equal(model.Specs.Select(s => s.Name), grads.Keys); // every parameter, in layout order
            CheckAgainstFiniteDifferences(model, batch, options, LockedTowers.None, grads, c.seed);
            return true;
        }, seed: 201, output, maxTest: 12);
    }

    /// <summary>Odd head counts and widths, on every backend whose model is checked.</summary>
    public static TheoryData<int, int, int, int, int, string> OddHeadCases()
    {
        var data = new TheoryData<int, int, int, int, int, string>();
        foreach (var backend in ModelUnderTest.Float64)
        {
            // The torch model pays a libtorch round trip per finite-difference evaluation (~8 s for the
            // smallest case, 25-40 s for the others): it runs the smallest, the others run on the CPU kernels.
            if (backend != OpsUnderTest.TorchFloat64)
            {
                data.Add(9, 3, 27, 3, 3, backend);   // 3 heads of width 3 (vision), 3 heads of width 9 (text), batch 3
                data.Add(10, 5, 6, 3, 4, backend);   // 5 heads of width 2, 3 heads of width 2, batch 4
            }
            data.Add(6, 1, 15, 5, 1, backend);   // one head; 5 text heads of width 3; a batch of one
        }
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(OddHeadCases))]
    public void OddHeadCountsAndWidthsMatchFiniteDifferences(int vWidth, int vHeads, int tWidth, int tHeads, int batchSize, string backend)
    {
        var config = TinyModels.Config(vWidth, vHeads, 7, 2, 3, 2, 2, tWidth, tHeads, 5, 2, 11, 4);
        using var model = ModelUnderTest.Create(backend, config, TinyModels.Parameters(config, 5), output);
        var batch = TinyModels.Batch(config, batchSize, 5);
        var (_, grads) = model.ForwardBackward(batch, LossOptions.Default);
        Assert.Equal(ParameterLayout.For(config).Select(s => s.Name), grads.Keys);
        CheckAgainstFiniteDifferences(model, batch, LossOptions.Default, grads, 5);
    }

    public static TheoryData<LockedTowers, string> LockedCases()
    {
        var data = new TheoryData<LockedTowers, string>();
        foreach (var backend in ReferenceAndManaged)
            foreach (var locked in new[] { LockedTowers.Image, LockedTowers.Text, LockedTowers.Image | LockedTowers.Text })
                data.Add(locked, backend);
        return data;
    }

    [Theory]
    [MemberData(nameof(LockedCases))]
    public void LockedTowersGetNoGradientsAndTheOthersAreUnchanged(LockedTowers locked, string backend)
    {
        var config = TinyModels.Config(6, 2, 5, 2, 2, 2, 2, 9, 3, 4, 1, 13, 5);
        var model = new SiglipModel(config, TinyModels.Parameters(config, 9), OpsUnderTest.Get(backend, output));
        var batch = TinyModels.Batch(config, 3, 9);
        var full = model.Backward(model.Forward(batch, LossOptions.Default));
        var pass = model.Forward(batch, LossOptions.Default, locked);
        var partial = model.Backward(pass);

        var expectedNames = model.Specs
            .Where(s => !(s.Tower == Tower.Image && locked.HasFlag(LockedTowers.Image)) && !(s.Tower == Tower.Text && locked.HasFlag(LockedTowers.Text)))
            .Select(s => s.Name);
        Assert.Equal(expectedNames, partial.Keys);
        foreach (var (name, g) in partial) AssertClose.Tensor(g, full[name], new Tolerance(0, 0), name); // same computation, bit for bit
        CheckAgainstFiniteDifferences(model, batch, LossOptions.Default, locked, partial, 9);
    }

    [Theory]
    [MemberData(nameof(ReferenceAndManaged))]
    public void TowersAloneBackpropagateBothOutputs(string backend)
    {
        var ops = OpsUnderTest.Get(backend, output);
        // L = <pooler_output, u> + <last_hidden_state, w>: the optional d last_hidden_state path.
        var config = TinyModels.Config(6, 3, 5, 2, 2, 2, 2, 4, 2, 3, 2, 9, 4);
        var parameters = TinyModels.Parameters(config, 21);
        var batch = TinyModels.Batch(config, 2, 21);
        var rng = new DeterministicRandom(22);

        var vision = new VisionTower(config.Vision, parameters, ops);
        var vPass = vision.Forward(batch.PixelValues);
        var uV = GradCheck.Random(rng, vPass.PoolerOutput.Size);
        var wV = GradCheck.Random(rng, vPass.LastHiddenState.Size);
        var vGrads = vision.Backward(vPass, new Tensor(vPass.PoolerOutput.Shape, uV), new Tensor(vPass.LastHiddenState.Shape, wV));
        double VisionLoss() { var p = vision.Forward(batch.PixelValues); return GradCheck.Dot(p.PoolerOutput.Data, uV) + GradCheck.Dot(p.LastHiddenState.Data, wV); }
        Assert.Equal(VisionTower.Layout(config.Vision).Select(s => s.Name), vGrads.Keys);
        foreach (var (name, g) in vGrads) GradCheck.Check(name, parameters[name].Data, g.Data, VisionLoss, TinyModels.SomeIndices(rng, g.Size, 4));

        var text = new TextTower(config.Text, parameters, ops);
        var tPass = text.Forward(batch.InputIds);
        var uT = GradCheck.Random(rng, tPass.PoolerOutput.Size);
        var wT = GradCheck.Random(rng, tPass.LastHiddenState.Size);
        var tGrads = text.Backward(tPass, new Tensor(tPass.PoolerOutput.Shape, uT), new Tensor(tPass.LastHiddenState.Shape, wT));
        double TextLoss() { var p = text.Forward(batch.InputIds); return GradCheck.Dot(p.PoolerOutput.Data, uT) + GradCheck.Dot(p.LastHiddenState.Data, wT); }
        Assert.Equal(TextTower.Layout(config.Text).Select(s => s.Name), tGrads.Keys);
        foreach (var (name, g) in tGrads) GradCheck.Check(name, parameters[name].Data, g.Data, TextLoss, TinyModels.SomeIndices(rng, g.Size, 4));
    }
}
