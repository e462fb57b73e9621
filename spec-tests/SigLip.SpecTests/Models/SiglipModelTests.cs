using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Layers;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Models;

/// <summary>Outputs, embedding helpers, construction and input validation of <see cref="SiglipModel"/>.</summary>
public sealed class SiglipModelTests
{
    private static readonly SiglipConfig Config = TinyModels.Config(6, 2, 5, 1, 3, 2, 2, 8, 2, 4, 1, 10, 5);

    private static SiglipModel NewModel(ILayerOps? ops = null) => new(Config, TinyModels.Parameters(Config, 3), ops);

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.Float64), MemberType = typeof(OpsUnderTest))]
    public void OutputsHaveHfNamesShapesAndRelations(string backend)
    {
        // The model's own code on each implementation of the primitive operations (libtorch's included).
        var model = NewModel(OpsUnderTest.Get(backend));
        var batch = TinyModels.Batch(Config, 3, 3);
        var pass = model.Forward(batch, LossOptions.Default);
        int n = 3, d = Config.EmbedDim, len = batch.InputIds.Length;
        Assert.Equal([OutputNames.ImageEmbeds, OutputNames.TextEmbeds, OutputNames.LogitsPerText, OutputNames.LogitsPerImage, OutputNames.Loss,
                      OutputNames.VisionLastHiddenState, OutputNames.VisionPoolerOutput, OutputNames.TextLastHiddenState, OutputNames.TextPoolerOutput],
                     pass.Outputs.Keys);
        Assert.Equal([n, d], pass.Outputs[OutputNames.ImageEmbeds].Shape);
        Assert.Equal([n, len, Config.Text.HiddenSize], pass.Outputs[OutputNames.TextLastHiddenState].Shape);
        Assert.Equal([n, Config.Vision.NumPatches, d], pass.Outputs[OutputNames.VisionLastHiddenState].Shape);
        Assert.Equal(pass.Loss, pass.Outputs[OutputNames.Loss].Data[0]);

        var img = pass.Outputs[OutputNames.ImageEmbeds].Data;
        var txt = pass.Outputs[OutputNames.TextEmbeds].Data;
        var tight = new Tolerance(1e-14, 1e-13);
        for (int i = 0; i < n; i++)
        {
            AssertClose.Scalar(Enumerable.Range(0, d).Sum(k => img[i * d + k] * img[i * d + k]), 1.0, tight, $"|image_embeds[{i}]|^2");
            AssertClose.Scalar(Enumerable.Range(0, d).Sum(k => txt[i * d + k] * txt[i * d + k]), 1.0, tight, $"|text_embeds[{i}]|^2");
        }
        var lpt = pass.Outputs[OutputNames.LogitsPerText].Data;
        var lpi = pass.Outputs[OutputNames.LogitsPerImage].Data;
        for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++)
        {
            double expected = Math.Exp(model.LogitScale) * Enumerable.Range(0, d).Sum(k => txt[j * d + k] * img[i * d + k]) + model.LogitBias;
            AssertClose.Scalar(lpt[j * n + i], expected, tight, $"logits_per_text[{j},{i}]");
            Assert.Equal(lpt[j * n + i], lpi[i * n + j]);
        }
        // The sigmoid loss from the logits, written independently: -(1/n) sum log sigmoid(z * logit).
        double loss = 0;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++)
            {
                double u = (i == j ? 1 : -1) * lpt[j * n + i];
                loss -= Math.Min(u, 0) - Math.Log(1 + Math.Exp(-Math.Abs(u)));
            }
        AssertClose.Scalar(pass.Loss, loss / n, tight, "loss");
    }

    [SkippableTheory]
    [MemberData(nameof(OpsUnderTest.Float64), MemberType = typeof(OpsUnderTest))]
    public void EmbedImagesAndTextsEqualTheForwardPassEmbeddings(string backend)
    {
        var model = NewModel(OpsUnderTest.Get(backend));
        var batch = TinyModels.Batch(Config, 2, 4);
        var pass = model.Forward(batch, LossOptions.Default);
        AssertClose.Tensor(model.EmbedImages(batch.PixelValues), pass.Outputs[OutputNames.ImageEmbeds], new Tolerance(0, 0), "image embeds");
        AssertClose.Tensor(model.EmbedTexts(batch.InputIds), pass.Outputs[OutputNames.TextEmbeds], new Tolerance(0, 0), "text embeds");
    }

    [Fact]
    public void ParametersAreCopiedAndUpdatesInPlaceAreSeen()
    {
        var given = TinyModels.Parameters(Config, 3);
        var model = new SiglipModel(Config, given);
        var batch = TinyModels.Batch(Config, 2, 5);
        double before = model.Forward(batch, LossOptions.Default).Loss;
        given[ParameterLayout.LogitBias].Data[0] += 1.0; // the caller's tensors are not the model's
        Assert.Equal(before, model.Forward(batch, LossOptions.Default).Loss);
        model.Parameters["vision_model.head.probe"].Data[0] += 0.5; // as an optimizer updates in place
        Assert.NotEqual(before, model.Forward(batch, LossOptions.Default).Loss);
        Assert.Equal(ParameterLayout.For(Config).Select(s => s.Name), model.Parameters.Keys);
    }

    [Fact]
    public void ConstructorNamesMissingUnexpectedAndMisshapedParameters()
    {
        var p = TinyModels.Parameters(Config, 3);
        var missing = new NamedTensors(p.Where(kv => kv.Key != "text_model.head.bias"));
        Assert.Contains("missing: text_model.head.bias", Assert.Throws<ArgumentException>(() => new SiglipModel(Config, missing)).Message);

        var extra = p.DeepClone();
        extra.Add("vision_model.encoder.layers.7.mlp.fc1.weight", Tensor.Zeros(2, 2));
        Assert.Contains("unexpected (not in this config's layout): vision_model.encoder.layers.7.mlp.fc1.weight", Assert.Throws<ArgumentException>(() => new SiglipModel(Config, extra)).Message);

        var misshaped = p.DeepClone();
        misshaped.Set("vision_model.head.probe", Tensor.Zeros(1, Config.EmbedDim));
        var message = Assert.Throws<ArgumentException>(() => new SiglipModel(Config, misshaped)).Message;
        Assert.Contains($"vision_model.head.probe is [1, {Config.EmbedDim}] but the config needs [1, 1, {Config.EmbedDim}]", message);
    }

    [Fact]
    public void AnActivationOtherThanTanhGeluIsRefusedNotSilentlyReplaced()
    {
        var erfGelu = Config with { Vision = Config.Vision with { HiddenAct = "gelu" } };
        var message = Assert.Throws<ArgumentException>(() => new SiglipModel(erfGelu, TinyModels.Parameters(Config, 3))).Message;
        Assert.Contains("vision_config.hidden_act is 'gelu'", message);
    }

    [Fact]
    public void BadInputsAreRejectedWithWhatWhereAndWhatWouldBeRight()
    {
        var model = NewModel();
        var good = TinyModels.Batch(Config, 2, 6);
        var v = Config.Vision;
        string Fail(SiglipBatch b) => Assert.Throws<ArgumentException>(() => model.Forward(b, LossOptions.Default)).Message;

        var wrongSize = Tensor.Zeros(2, v.NumChannels, v.ImageSize + 1, v.ImageSize + 1);
        Assert.Contains($"needs [batch >= 1, {v.NumChannels}, {v.ImageSize}, {v.ImageSize}]", Fail(good with { PixelValues = wrongSize }));
        var wrongChannels = Tensor.Zeros(2, v.NumChannels + 1, v.ImageSize, v.ImageSize);
        Assert.Contains("num_channels", Fail(good with { PixelValues = wrongChannels }));

        var nan = good.PixelValues.Clone();
        nan.Data[^1] = double.NaN;
        Assert.Contains($"pixel_values[1, {v.NumChannels - 1}, {v.ImageSize - 1}, {v.ImageSize - 1}] is NaN", Fail(good with { PixelValues = nan }));
        var inf = good.PixelValues.Clone();
        inf.Data[0] = double.PositiveInfinity;
        Assert.Contains("must be finite", Fail(good with { PixelValues = inf }));

        var ids = (int[])good.InputIds.Ids.Clone();
        ids[good.InputIds.Length + good.InputIds.Length - 1] = Config.Text.VocabSize; // row 1, last position
        var message = Fail(good with { InputIds = good.InputIds with { Ids = ids } });
        Assert.Contains($"input_ids[row 1, position {good.InputIds.Length - 1}] = {Config.Text.VocabSize}", message);
        Assert.Contains($"[0, {Config.Text.VocabSize})", message);
        ids[0] = -1;
        Assert.Contains("input_ids[row 0, position 0] = -1", Fail(good with { InputIds = good.InputIds with { Ids = ids } }));

        int tooLong = Config.Text.MaxPositionEmbeddings + 1;
        Assert.Contains($"max_position_embeddings = {Config.Text.MaxPositionEmbeddings}", Fail(good with { InputIds = new TokenIds(2, tooLong, new int[2 * tooLong]) }));

        var threeTexts = TinyModels.Batch(Config, 3, 6).InputIds;
        Assert.Contains("2 images", Fail(good with { InputIds = threeTexts }));
        Assert.Contains("3 texts", Fail(good with { InputIds = threeTexts }));
    }

    [Fact]
    public void ModelInitIsDeterministicAndFollowsTheLayout()
    {
        var a = ModelInit.Random(Config, 42);
        var b = ModelInit.Random(Config, 42);
        var c = ModelInit.Random(Config, 43);
        Assert.Equal(ParameterLayout.For(Config).Select(s => (s.Name, string.Join(",", s.Shape))), a.Select(kv => (kv.Key, string.Join(",", kv.Value.Shape))));
        foreach (var (name, t) in a)
        {
            Assert.Equal(t.Data, b[name].Data);
            Assert.All(t.Data, x => Assert.True(double.IsFinite(x)));
        }
        Assert.NotEqual(a["text_model.head.weight"].Data, c["text_model.head.weight"].Data);
        Assert.Equal(Math.Log(10), a[ParameterLayout.LogitScale].Data[0]);
        Assert.Equal(-10.0, a[ParameterLayout.LogitBias].Data[0]);
        Assert.All(a["vision_model.post_layernorm.weight"].Data, x => Assert.Equal(1.0, x));
        Assert.All(a["vision_model.post_layernorm.bias"].Data, x => Assert.Equal(0.0, x));
        Assert.All(a["text_model.encoder.layers.0.self_attn.q_proj.bias"].Data, x => Assert.Equal(0.0, x));
        var custom = ModelInit.Random(Config, 42, logitScale: 0.0, logitBias: 0.0);
        Assert.Equal(0.0, custom[ParameterLayout.LogitScale].Data[0]);
    }

    [Fact]
    public void ModelInitDistributionsHaveTheIntendedSpread()
    {
        // Wide enough for stable statistics: fc1 [I, H] Xavier uniform, bound sqrt(6 / (H + I)), variance bound^2 / 3;
        // token embedding N(0, 1/H); text head LeCun normal truncated at 2 std, std sqrt(1/H).
        var config = TinyModels.Config(64, 4, 256, 1, 3, 4, 2, 64, 4, 256, 1, 300, 8);
        var p = ModelInit.Random(config, 1);
        static double Var(double[] x) { double m = x.Average(); return x.Select(t => (t - m) * (t - m)).Average(); }
        var fc1 = p["vision_model.encoder.layers.0.mlp.fc1.weight"].Data;
        double bound = Math.Sqrt(6.0 / (64 + 256));
        Assert.All(fc1, x => Assert.True(Math.Abs(x) <= bound));
        AssertClose.Scalar(Var(fc1), bound * bound / 3, new Tolerance(0, 0.05), "fc1 variance");
        AssertClose.Scalar(Var(p["text_model.embeddings.token_embedding.weight"].Data), 1.0 / 64, new Tolerance(0, 0.05), "token embedding variance");
        var head = p["text_model.head.weight"].Data;
        Assert.All(head, x => Assert.True(Math.Abs(x) <= 2 * Math.Sqrt(1.0 / 64) / 0.87962566103423978 + 1e-15));
        AssertClose.Scalar(Var(head), 1.0 / 64, new Tolerance(0, 0.08), "text head variance");
    }
}
