using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.IO;
using SigLip.Reference.IO.Golden;
using SigLip.Reference.Layers;
using SigLip.Reference.Loss;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Golden;

/// <summary>
/// The porter's referee (issue 16): a case generated from an HF checkpoint with every intermediate,
/// compared with HF's own outputs; planted faults located by <c>golden compare</c>'s first divergence.
/// The faulty outputs come from actually running the faulty computation (a reference model with one
/// layer's LayerNorm epsilon changed, the exact GELU in one layer, a transposed projection).
/// </summary>
public sealed class CheckpointCaseTests(ITestOutputHelper output)
{
    private static string Fixture => RepoPaths.Fixture("hf-siglip-tiny");

    private static SiglipBatch FixtureBatch()
    {
        using var f = SafeTensorsFile.Open(Path.Combine(Fixture, "expected.safetensors"));
        return new SiglipBatch(f.ReadTensor("pixel_values"), f.ReadTokenIds("input_ids"));
    }

    /// <summary>The fixture's pixel_values and input_ids, as a porter would give them: a safetensors file of their own.</summary>
    private static string WriteInputs(TempFolder tmp)
    {
        var batch = FixtureBatch();
        var path = tmp.File("inputs.safetensors");
        SafeTensorsWriter.Write(path, [SafeTensorEntry.Float("pixel_values", batch.PixelValues), SafeTensorEntry.TokenIds("input_ids", batch.InputIds)]);
        return path;
    }

    private static SiglipBatch ReadInputs(string path)
    {
        using var f = SafeTensorsFile.Open(path);
        return new SiglipBatch(f.ReadTensor("pixel_values"), f.ReadTokenIds("input_ids"));
    }

    private void Print(CompareReport r)
    {
        foreach (var t in r.Tensors) output.WriteLine($"{t.Comparison}");
        output.WriteLine(r.Summary());
    }

    [SkippableFact]
    public void A_case_from_the_HF_fixture_matches_HF_transformers_own_outputs_in_float64()
    {
        Skip.IfNot(Directory.Exists(Fixture), $"{Fixture} is not here");
        using var tmp = new TempFolder();
        var caseDir = tmp.File("case");
        CheckpointCase.Write(Fixture, ReadInputs(WriteInputs(tmp)), caseDir, gradients: true, covers: "test");

        // HF's expected.safetensors plays the port's dump: its tensors under the case's names.
        var report = GoldenComparer.Compare(caseDir, Path.Combine(Fixture, "expected.safetensors"), "float64");
        Print(report);
        Assert.Equal(9 + 88, report.Tensors.Count); // every output and every gradient HF wrote
        Assert.True(report.Passed, report.Summary());
        Assert.Equal(new Tolerance(1e-11, 1e-9), report.Tensors[0].Comparison.Tolerance);
        // The intermediates HF's file does not hold are listed, not failed.
        Assert.Equal(["vision_hidden_states.0", "vision_hidden_states.1", "vision_hidden_states.2", "vision_head_attention_output",
                      "text_hidden_states.0", "text_hidden_states.1", "text_hidden_states.2"], report.Missing);

        // Checked again by a loop of the test's own (not Comparison.Of): |a - e| <= 1e-11 + 1e-9 |e|.
        using var hf = SafeTensorsFile.Open(Path.Combine(Fixture, "expected.safetensors"));
        using var ours = SafeTensorsFile.Open(Path.Combine(caseDir, GoldenFormat.ExpectedFile));
        int checkedTensors = 0;
        foreach (var e in hf.Entries.Where(e => e.Name is not ("pixel_values" or "input_ids")))
        {
            var want = hf.ReadTensor(e.Name).Data;
            var got = ours.ReadTensor(e.Name).Data;
            Assert.Equal(want.Length, got.Length);
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(got[i] - want[i]) <= 1e-11 + 1e-9 * Math.Abs(want[i]), $"{e.Name}[{i}]: ours {got[i]:R}, HF {want[i]:R}");
            checkedTensors++;
        }
        Assert.Equal(97, checkedTensors);
    }

    [SkippableFact]
    public void The_case_holds_every_intermediate_in_forward_order_and_hidden_states_follow_HF()
    {
        Skip.IfNot(Directory.Exists(Fixture), $"{Fixture} is not here");
        using var tmp = new TempFolder();
        var caseDir = tmp.File("case");
        var tensors = CheckpointCase.Write(Fixture, FixtureBatch(), caseDir, gradients: false, covers: "test");
        Assert.Equal(
            ["vision_hidden_states.0", "vision_hidden_states.1", "vision_hidden_states.2", "vision_last_hidden_state", "vision_head_attention_output", "vision_pooler_output",
             "text_hidden_states.0", "text_hidden_states.1", "text_hidden_states.2", "text_last_hidden_state", "text_pooler_output",
             "image_embeds", "text_embeds", "logits_per_image", "logits_per_text", "loss"],
            tensors.Keys.ToArray());
        Assert.True(File.Exists(Path.Combine(caseDir, Intermediates.ListFile)));
        Assert.True(GoldenCase.IsCase(caseDir));

        // hidden_states[0] is the embeddings output: token embedding row + position row, by hand.
        var checkpoint = HfCheckpoint.Load(Fixture);
        var batch = FixtureBatch();
        var tok = checkpoint.Parameters["text_model.embeddings.token_embedding.weight"].Data;
        var pos = checkpoint.Parameters["text_model.embeddings.position_embedding.weight"].Data;
        var h0 = tensors["text_hidden_states.0"].Data;
        int len = batch.InputIds.Length, h = checkpoint.Config.Text.HiddenSize;
        for (int b = 0; b < batch.Size; b++)
        for (int t = 0; t < len; t++)
        for (int k = 0; k < h; k++)
            Assert.Equal(tok[batch.InputIds[b, t] * h + k] + pos[t * h + k], h0[(b * len + t) * h + k], 15);
        // the last hidden state is final_layer_norm of the last layer's output: LayerNorm by hand on one row.
        var x = tensors["text_hidden_states.2"].Data;
        var last = tensors["text_last_hidden_state"].Data;
        var w = checkpoint.Parameters["text_model.final_layer_norm.weight"].Data;
        var bias = checkpoint.Parameters["text_model.final_layer_norm.bias"].Data;
        double mean = 0, var2 = 0;
        for (int k = 0; k < h; k++) mean += x[k];
        mean /= h;
        for (int k = 0; k < h; k++) var2 += (x[k] - mean) * (x[k] - mean);
        var2 /= h;
        for (int k = 0; k < h; k++)
            Assert.True(Math.Abs((x[k] - mean) / Math.Sqrt(var2 + 1e-6) * w[k] + bias[k] - last[k]) < 1e-12);
    }

    // ---- planted faults ----

    /// <summary>The reference's operations with one fault: the LayerNorm epsilon of the n-th LayerNorm call, or the exact GELU at the n-th GELU call (calls counted from 0 over one model forward: vision first).</summary>
    private sealed class FaultyOps(int? layerNormCall = null, double epsilon = 0, int? geluCall = null) : ILayerOps
    {
        private readonly ILayerOps _inner = ReferenceOps.Instance;
        private int _layerNorms, _gelus;
        public string Name => "reference loops with a planted fault";
        public void LinearForward(double[] output, double[] input, double[] weight, double[]? bias, int rows, int inFeatures, int outFeatures) => _inner.LinearForward(output, input, weight, bias, rows, inFeatures, outFeatures);
        public void LinearBackward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, int rows, int inFeatures, int outFeatures) => _inner.LinearBackward(dinput, dweight, dbias, doutput, input, weight, rows, inFeatures, outFeatures);
        public void LayerNormForward(double[] output, double[] mean, double[] rstd, double[] input, double[] weight, double[] bias, int rows, int width, double eps) =>
            _inner.LayerNormForward(output, mean, rstd, input, weight, bias, rows, width, _layerNorms++ == layerNormCall ? epsilon : eps);
        public void LayerNormBackward(double[]? dinput, double[]? dweight, double[]? dbias, double[] doutput, double[] input, double[] weight, double[] mean, double[] rstd, int rows, int width) => _inner.LayerNormBackward(dinput, dweight, dbias, doutput, input, weight, mean, rstd, rows, width);
        public void GeluForward(double[] output, double[] input, int count)
        {
            if (_gelus++ != geluCall) { _inner.GeluForward(output, input, count); return; }
            for (int i = 0; i < count; i++) output[i] = 0.5 * input[i] * (1 + Erf(input[i] / Math.Sqrt(2))); // HF "gelu": exact, erf
        }
        public void GeluBackward(double[] dinput, double[] doutput, double[] input, int count) => _inner.GeluBackward(dinput, doutput, input, count);
        public void AttentionForward(double[] output, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim) => _inner.AttentionForward(output, probs, query, key, value, batch, queryTokens, keyTokens, heads, headDim);
        public void AttentionBackward(double[]? dquery, double[]? dkey, double[]? dvalue, double[] doutput, double[] probs, double[] query, double[] key, double[] value, int batch, int queryTokens, int keyTokens, int heads, int headDim) => _inner.AttentionBackward(dquery, dkey, dvalue, doutput, probs, query, key, value, batch, queryTokens, keyTokens, heads, headDim);
        public LossResult PairwiseLoss(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions options) => _inner.PairwiseLoss(imageEmbeds, textEmbeds, logitScale, logitBias, options);
    }

    /// <summary>erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)): every term positive, so no cancellation; |x| >= 6 gives +-1 (erfc(6) ~ 2e-17).</summary>
    internal static double Erf(double x)
    {
        if (Math.Abs(x) >= 6) return Math.Sign(x);
        double term = x, sum = x;
        for (int n = 1; n < 200 && Math.Abs(term) > 1e-17 * Math.Abs(sum); n++)
        {
            term *= 2 * x * x / (2 * n + 1);
            sum += term;
        }
        return 2 / Math.Sqrt(Math.PI) * Math.Exp(-x * x) * sum;
    }

    [Fact]
    public void Erf_of_the_test_matches_known_values()
    {
        Assert.Equal(0.0, Erf(0));
        Assert.True(Math.Abs(Erf(1) - 0.8427007929497149) < 1e-14);
        Assert.True(Math.Abs(Erf(-2) - -0.9953222650189527) < 1e-14);
        Assert.True(Math.Abs(Erf(0.5) - 0.5204998778130465) < 1e-14);
    }

    /// <summary>Generates the reference case, runs the faulty model on the same inputs, dumps its tensors, compares.</summary>
    private CompareReport CompareFaulty(TempFolder tmp, Func<SiglipConfig, NamedTensors, SiglipModel> faulty, string dtype = "float64")
    {
        var caseDir = tmp.File("case");
        var batch = FixtureBatch();
        CheckpointCase.Write(Fixture, batch, caseDir, gradients: false, covers: "test");
        var checkpoint = HfCheckpoint.Load(Fixture);
        var dump = Intermediates.Collect(faulty(checkpoint.Config, checkpoint.Parameters), batch, gradients: false);
        var dumpPath = tmp.File("port-dump.safetensors");
        SafeTensorsWriter.Write(dumpPath, dump.Select(kv => SafeTensorEntry.Float(kv.Key, kv.Value, SafeTensorDType.F64)));
        var report = GoldenComparer.Compare(caseDir, dumpPath, dtype);
        Print(report);
        Assert.Empty(report.Missing);
        return report;
    }

    [SkippableFact]
    public void A_LayerNorm_epsilon_changed_in_vision_layer_1_is_named_as_the_first_divergence()
    {
        Skip.IfNot(Directory.Exists(Fixture), $"{Fixture} is not here");
        using var tmp = new TempFolder();
        // Vision layer l runs LayerNorm calls 2l (layer_norm1) and 2l + 1 (layer_norm2); 1e-6 becomes 1e-5 in layer 1's layer_norm1.
        var report = CompareFaulty(tmp, (c, p) => new SiglipModel(c, p, new FaultyOps(layerNormCall: 2, epsilon: 1e-5)));
        Assert.False(report.Passed);
        Assert.Equal("vision_hidden_states.2", report.FirstDivergence!.Name);
        Assert.Contains("vision layer 1", report.FirstDivergence.Description, StringComparison.Ordinal);
        Assert.True(report.Tensors.Single(t => t.Name == "vision_hidden_states.1").Passed);
        Assert.True(report.Tensors.Single(t => t.Name == "text_hidden_states.2").Passed);
        Assert.Contains("vision_hidden_states.2", report.Summary(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public void The_exact_GELU_in_text_layer_1_is_named_as_the_first_divergence()
    {
        Skip.IfNot(Directory.Exists(Fixture), $"{Fixture} is not here");
        using var tmp = new TempFolder();
        var config = HfConfig.Read(Path.Combine(Fixture, "config.json"));
        // GELU calls: one per vision layer, one in the MAP head's MLP, then one per text layer.
        int call = config.Vision.NumHiddenLayers + 1 + 1;
        var report = CompareFaulty(tmp, (c, p) => new SiglipModel(c, p, new FaultyOps(geluCall: call)));
        Assert.Equal("text_hidden_states.2", report.FirstDivergence!.Name);
        Assert.Contains("text layer 1", report.FirstDivergence.Description, StringComparison.Ordinal);
        Assert.All(report.Tensors.TakeWhile(t => t.Name != "text_hidden_states.2"), t => Assert.True(t.Passed, t.Name));
        // tanh against erf GELU differs by at most ~2e-4 per element: small, yet far outside float64's 1e-11 + 1e-9|e|.
        Assert.True(report.FirstDivergence.Comparison.MaxAbsError < 1e-2);
    }

    [SkippableFact]
    public void A_transposed_query_projection_in_text_layer_0_is_named_as_the_first_divergence()
    {
        Skip.IfNot(Directory.Exists(Fixture), $"{Fixture} is not here");
        using var tmp = new TempFolder();
        const string name = "text_model.encoder.layers.0.self_attn.q_proj.weight";
        var report = CompareFaulty(tmp, (c, p) =>
        {
            var faulty = new NamedTensors();
            foreach (var (n, t) in p) faulty.Add(n, n == name ? ShapeExplainer.Transpose(t, [1, 0]) : t);
            return new SiglipModel(c, faulty);
        }, dtype: "float32");
        Assert.Equal("text_hidden_states.1", report.FirstDivergence!.Name);
        Assert.True(report.Tensors.Single(t => t.Name == "vision_pooler_output").Passed);
    }

    [SkippableFact]
    public void Missing_tensors_are_listed_and_a_channels_last_dump_is_explained()
    {
        Skip.IfNot(Directory.Exists(Fixture), $"{Fixture} is not here");
        using var tmp = new TempFolder();
        var caseDir = tmp.File("case");
        var tensors = CheckpointCase.Write(Fixture, FixtureBatch(), caseDir, gradients: false, covers: "test");
        var dump = tmp.File("dump.safetensors");
        var h1 = tensors["vision_hidden_states.1"];
        SafeTensorsWriter.Write(dump,
        [
            SafeTensorEntry.Float("vision_hidden_states.0", tensors["vision_hidden_states.0"]),
            // [B, N, H] dumped as [B, heads, N, head_dim]
            SafeTensorEntry.Float("vision_hidden_states.1", ShapeExplainer.Transpose(h1.Reshape(h1.Shape[0], h1.Shape[1], 4, h1.Shape[2] / 4), [0, 2, 1, 3])),
            SafeTensorEntry.Float("vision_pooler_output", tensors["vision_pooler_output"].Reshape(6, 1, 32)),
        ]);
        var report = GoldenComparer.Compare(caseDir, dump, "float32");
        Print(report);
        Assert.Equal(3, report.Tensors.Count);
        Assert.Equal(13, report.Missing.Count);
        var split = report.FirstDivergence!;
        Assert.Equal("vision_hidden_states.1", split.Name);
        Assert.Contains("heads split out", split.Comparison.Problem, StringComparison.Ordinal);
        Assert.Contains("the values pass", split.Comparison.Problem, StringComparison.Ordinal);
        Assert.True(report.Tensors.Single(t => t.Name == "vision_pooler_output").Passed); // only a size-1 dimension differs

        var nhwc = ShapeExplainer.Explain(ShapeExplainer.Transpose(FixtureBatch().PixelValues, [0, 2, 3, 1]), FixtureBatch().PixelValues, new Tolerance(0, 0));
        Assert.Contains("channels last", nhwc, StringComparison.Ordinal);
        var weight = new Tensor([2, 3], [1, 2, 3, 4, 5, 6]);
        Assert.Contains("transposed", ShapeExplainer.Explain(ShapeExplainer.Transpose(weight, [1, 0]), weight, new Tolerance(0, 0)), StringComparison.Ordinal);
    }

    [Fact]
    public void Estimate_refuses_with_numbers_when_over_the_limit()
    {
        var estimate = CheckpointCase.Estimate(SiglipVariants.Base16_224.Config, 2, 64, gradients: false);
        output.WriteLine(estimate.ToString());
        var ex = Assert.Throws<InvalidOperationException>(() => CheckpointCase.CheckFits(estimate, 1L << 30, long.MaxValue));
        Assert.Contains("--max-memory 1.0 GiB", ex.Message, StringComparison.Ordinal);
        Assert.Contains("GFLOP", ex.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => CheckpointCase.CheckFits(estimate, null, 1L << 30));
        CheckpointCase.CheckFits(estimate, null, long.MaxValue);
        Assert.Equal(8L << 30, CheckpointCase.ParseBytes("8G", "--max-memory"));
        Assert.Throws<ArgumentException>(() => CheckpointCase.ParseBytes("lots", "--max-memory"));
    }
}
