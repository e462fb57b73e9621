using SigLip.Reference.Layers;

namespace SigLip.Reference.Models;

// The image tower, HF SiglipVisionTransformer:
//   x0 = PatchEmbedding(pixels) + position_embedding                  [B, N, H]
//   x_{l+1} = EncoderLayer_l(x_l)                                     [B, N, H]
//   last_hidden_state = post_layernorm(x_L)                           [B, N, H]
//   pooler_output = MapHead(last_hidden_state)                        [B, H]
// Dimensions: B = batch, C = channels, S = image side, P = patch side, N = (S/P)^2 tokens,
// K = C*P*P, H = width, NH = heads, I = MLP width, L = layers. No class token, no projection.

/// <summary>The saved activations of one image-tower forward pass, with its two outputs.</summary>
public sealed class VisionForwardPass
{
    /// <summary>Buffers for one forward pass of <paramref name="batch"/> images through a tower of config <paramref name="c"/>.</summary>
    public VisionForwardPass(int batch, VisionConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "A forward pass needs at least one image.");
        Batch = batch;
        int n = c.NumPatches, h = c.HiddenSize;
        Patches = new double[batch * n * c.NumChannels * c.PatchSize * c.PatchSize];
        Embeddings = new double[batch * n * h];
        Layers = Enumerable.Range(0, c.NumHiddenLayers)
            .Select(_ => new EncoderLayerSaved(batch, n, h, c.NumAttentionHeads, c.IntermediateSize)).ToArray();
        PostNormMean = new double[batch * n];
        PostNormRstd = new double[batch * n];
        LastHiddenState = Tensor.Zeros(batch, n, h);
        Head = new MapHeadSaved(batch, n, h, c.NumAttentionHeads, c.IntermediateSize);
        PoolerOutput = Tensor.Zeros(batch, h);
    }

    /// <summary>B, the batch size.</summary>
    public int Batch { get; }
    internal double[] Patches { get; }               // [B, N, K]
    internal double[] Embeddings { get; }            // [B, N, H] patches + positions: layer 0's input
    internal EncoderLayerSaved[] Layers { get; }     // one per layer; Layers[l].Output = x_{l+1}
    internal double[] PostNormMean { get; }          // [B*N]
    internal double[] PostNormRstd { get; }          // [B*N]
    internal MapHeadSaved Head { get; }

    /// <summary>post_layernorm output [B, N, H] (HF vision last_hidden_state).</summary>
    public Tensor LastHiddenState { get; }
    /// <summary>MAP head output [B, H] (HF vision pooler_output; the image embedding before L2 normalisation).</summary>
    public Tensor PoolerOutput { get; }

    internal double[] LayerInput(int layer) => layer == 0 ? Embeddings : Layers[layer - 1].Output;
}

/// <summary>
/// The image tower (HF <c>vision_model.*</c>). It reads the parameter arrays it is given in place
/// (no copy), so updates to them are seen by the next forward pass.
/// </summary>
public sealed class VisionTower
{
    private readonly double[] _patchWeight, _patchBias, _positions, _postNormWeight, _postNormBias;
    private readonly EncoderLayerWeights[] _layers;
    private readonly MapHeadWeights _head;

    /// <param name="parameters">at least every <c>vision_model.*</c> parameter of the layout, under HF names.</param>
    /// <param name="ops">the primitive operations its layers run (null: <see cref="ReferenceOps"/>, the specification).</param>
    public VisionTower(VisionConfig config, IReadOnlyDictionary<string, Tensor> parameters, ILayerOps? ops = null)
    {
        Ops = ops ?? ReferenceOps.Instance;
        ArgumentNullException.ThrowIfNull(config);
        TowerParameters.CheckConfig("vision_config", config.HiddenSize, config.NumAttentionHeads, config.HiddenAct, config.LayerNormEps);
        Config = config;
        Specs = Layout(config);
        Parameters = TowerParameters.Select(Specs, parameters, "vision tower");
        (_patchWeight, _patchBias, _positions, _postNormWeight, _postNormBias, _layers, _head) = Bind(Parameters);
    }

    /// <summary>The tower's sizes.</summary>
    public VisionConfig Config { get; }

    /// <summary>The primitive operations its layers run.</summary>
    public ILayerOps Ops { get; }

    /// <summary>The tower's parameters (the arrays given to the constructor), in layout order.</summary>
    public NamedTensors Parameters { get; }

    /// <summary>The tower's parameter specs, in layout order.</summary>
    public IReadOnlyList<ParameterSpec> Specs { get; }

    /// <summary>The <c>vision_model.*</c> entries of <see cref="ParameterLayout"/> for this config.</summary>
    public static IReadOnlyList<ParameterSpec> Layout(VisionConfig config) =>
        ParameterLayout.For(new SiglipConfig(new TextConfig(), config)).Where(p => p.Tower == Tower.Image).ToArray();

    internal (double[], double[], double[], double[], double[], EncoderLayerWeights[], MapHeadWeights) Bind(IReadOnlyDictionary<string, Tensor> p) => (
        p["vision_model.embeddings.patch_embedding.weight"].Data,
        p["vision_model.embeddings.patch_embedding.bias"].Data,
        p["vision_model.embeddings.position_embedding.weight"].Data,
        p["vision_model.post_layernorm.weight"].Data,
        p["vision_model.post_layernorm.bias"].Data,
        Enumerable.Range(0, Config.NumHiddenLayers).Select(l => EncoderLayerWeights.From(p, $"vision_model.encoder.layers.{l}")).ToArray(),
        MapHeadWeights.From(p, "vision_model.head"));

    /// <summary>Checks pixel values [B, C, S, S] against the config and for NaN/Inf; throws saying what is wrong.</summary>
    public void ValidatePixels(Tensor pixelValues)
    {
        ArgumentNullException.ThrowIfNull(pixelValues);
        var c = Config;
        var s = pixelValues.Shape;
        if (s.Count != 4 || s[0] < 1 || s[1] != c.NumChannels || s[2] != c.ImageSize || s[3] != c.ImageSize)
            throw new ArgumentException(
                $"pixel_values has shape {Tensor.ShapeToString(s)} but the vision config needs [batch >= 1, {c.NumChannels}, {c.ImageSize}, {c.ImageSize}] " +
                $"(num_channels {c.NumChannels}, image_size {c.ImageSize}).");
        var data = pixelValues.Data;
        for (int i = 0; i < data.Length; i++)
            if (!double.IsFinite(data[i]))
                throw new ArgumentException($"pixel_values{Tensor.ShapeToString(Tensor.Unravel(s, i))} is {data[i]}: pixel values must be finite.");
    }

    /// <summary>Runs the tower on pixel values [B, C, S, S].</summary>
    public VisionForwardPass Forward(Tensor pixelValues)
    {
        ValidatePixels(pixelValues);
        return Run(pixelValues, new VisionForwardPass(pixelValues.Shape[0], Config));
    }

    /// <summary>
    /// As <see cref="Forward(Tensor)"/>, into buffers the caller owns and may pass again (sized for this
    /// batch size): what a training loop does so that a step allocates nothing.
    /// </summary>
    public VisionForwardPass Forward(Tensor pixelValues, VisionForwardPass into)
    {
        ArgumentNullException.ThrowIfNull(into);
        ValidatePixels(pixelValues);
        if (into.Batch != pixelValues.Shape[0])
            throw new ArgumentException($"The pass buffers are for {into.Batch} images but pixel_values holds {pixelValues.Shape[0]}.");
        return Run(pixelValues, into);
    }

    private VisionForwardPass Run(Tensor pixelValues, VisionForwardPass pass)
    {
        var c = Config;
        int batch = pass.Batch, n = c.NumPatches, h = c.HiddenSize;
        PatchEmbedding.Forward(pass.Embeddings, pass.Patches, pixelValues.Data, _patchWeight, _patchBias, batch, c.NumChannels, c.ImageSize, c.PatchSize, h, Ops);
        PositionEmbedding.Forward(pass.Embeddings, pass.Embeddings, _positions, batch, n, h);
        for (int l = 0; l < c.NumHiddenLayers; l++)
            EncoderLayer.Forward(pass.Layers[l], pass.LayerInput(l), _layers[l], batch, n, h, c.NumAttentionHeads, c.IntermediateSize, c.LayerNormEps, Ops);
        Ops.LayerNormForward(pass.LastHiddenState.Data, pass.PostNormMean, pass.PostNormRstd, pass.LayerInput(c.NumHiddenLayers), _postNormWeight, _postNormBias, batch * n, h, c.LayerNormEps);
        MapHead.Forward(pass.PoolerOutput.Data, pass.Head, pass.LastHiddenState.Data, _head, batch, n, h, c.NumAttentionHeads, c.IntermediateSize, c.LayerNormEps, Ops);
        return pass;
    }

    // forward: x0 = patch(pixels) + pos;  x_{l+1} = layer_l(x_l);  last = LN(x_L);  pooled = map(last)
    // backward: dlast = dLastHiddenState + map'(dpooled); dx_L = LN'(dlast); down the layers;
    //   dpos = sum_b dx0; dpatch weights from the patch Linear (pixels get no gradient).
    /// <summary>
    /// Gradients of the tower's parameters (HF names, layout order) given d pooler_output [B, H] and,
    /// optionally, d last_hidden_state [B, N, H].
    /// </summary>
    public NamedTensors Backward(VisionForwardPass pass, Tensor dPoolerOutput, Tensor? dLastHiddenState = null)
    {
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(dPoolerOutput);
        var c = Config;
        int batch = pass.Batch, n = c.NumPatches, h = c.HiddenSize;
        CheckShape("d pooler_output", dPoolerOutput, [batch, h]);
        if (dLastHiddenState is not null) CheckShape("d last_hidden_state", dLastHiddenState, [batch, n, h]);

        var buffers = new VisionBackwardWorkspace(this, batch);
        Backward(buffers, pass, dPoolerOutput, dLastHiddenState);
        return buffers.Grads;
    }

    /// <summary>
    /// As <see cref="Backward(VisionForwardPass, Tensor, Tensor?)"/>, into the gradients and scratch of
    /// <paramref name="workspace"/> (zeroed here), which the caller owns: the result is
    /// <c>workspace.Grads</c>, overwritten by the next call with that workspace.
    /// </summary>
    public NamedTensors Backward(VisionForwardPass pass, Tensor dPoolerOutput, Tensor? dLastHiddenState, VisionBackwardWorkspace workspace)
    {
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(dPoolerOutput);
        ArgumentNullException.ThrowIfNull(workspace);
        var c = Config;
        int batch = pass.Batch, n = c.NumPatches, h = c.HiddenSize;
        CheckShape("d pooler_output", dPoolerOutput, [batch, h]);
        if (dLastHiddenState is not null) CheckShape("d last_hidden_state", dLastHiddenState, [batch, n, h]);
        if (!ReferenceEquals(workspace.Tower, this) || workspace.Rows != batch * n)
            throw new ArgumentException($"The workspace belongs to another tower or another batch size ({workspace.Rows} rows; this pass has {batch * n}).");
        workspace.Clear();
        Backward(workspace, pass, dPoolerOutput, dLastHiddenState);
        return workspace.Grads;
    }

    private void Backward(VisionBackwardWorkspace b, VisionForwardPass pass, Tensor dPoolerOutput, Tensor? dLastHiddenState)
    {
        var c = Config;
        int batch = pass.Batch, n = c.NumPatches, h = c.HiddenSize;
        var dlast = b.DLast; // [B, N, H]
        if (dLastHiddenState is null) Array.Clear(dlast); else Array.Copy(dLastHiddenState.Data, dlast, dlast.Length);
        MapHead.Backward(dlast, b.DHead, dPoolerOutput.Data, pass.Head, pass.LastHiddenState.Data, _head, batch, n, h, c.NumAttentionHeads, c.IntermediateSize, b.HeadDKey, b.HeadDValue, Ops);
        var dx = b.DX; // [B, N, H] d x_L
        Array.Clear(dx);
        Ops.LayerNormBackward(dx, b.DPostNormWeight, b.DPostNormBias, dlast, pass.LayerInput(c.NumHiddenLayers), _postNormWeight, pass.PostNormMean, pass.PostNormRstd, batch * n, h);
        var dprev = b.DPrev;
        for (int l = c.NumHiddenLayers - 1; l >= 0; l--)
        {
            Array.Clear(dprev); // [B, N, H] d x_l (accumulated by the layer)
            EncoderLayer.Backward(dprev, b.DLayers[l], dx, pass.Layers[l], pass.LayerInput(l), _layers[l], batch, n, h, c.NumAttentionHeads, c.IntermediateSize, b.Layer, Ops);
            (dx, dprev) = (dprev, dx);
        }
        PositionEmbedding.Backward(null, b.DPositions, dx, batch, n, h);
        PatchEmbedding.Backward(null, b.DPatchWeight, b.DPatchBias, dx, pass.Patches, _patchWeight, batch, c.NumChannels, c.ImageSize, c.PatchSize, h, Ops);
    }

    internal static void CheckShape(string what, Tensor t, int[] expected)
    {
        if (!t.Shape.SequenceEqual(expected))
            throw new ArgumentException($"{what} has shape {Tensor.ShapeToString(t.Shape)} but the forward pass needs {Tensor.ShapeToString(expected)}.");
    }
}

/// <summary>The tower's parameter gradients (zero until a backward adds to them) and its backward's scratch, for R = B*N rows. A caller that runs many backwards of one batch size (a training loop) allocates one and passes it each time.</summary>
public sealed class VisionBackwardWorkspace
{
/// <summary>Gradients and scratch for a backward of <paramref name="batch"/> rows of input through <paramref name="tower"/>.</summary>
    public VisionBackwardWorkspace(VisionTower tower, int batch)
    {
        ArgumentNullException.ThrowIfNull(tower);
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "A backward needs at least one example.");
        var c = tower.Config;
        int rows = batch * c.NumPatches;
        Tower = tower;
        Rows = rows;
        Grads = TowerParameters.Zeros(tower.Specs);
        (DPatchWeight, DPatchBias, DPositions, DPostNormWeight, DPostNormBias, DLayers, DHead) = tower.Bind(Grads);
        DLast = new double[rows * c.HiddenSize];
        DX = new double[rows * c.HiddenSize];
        DPrev = new double[rows * c.HiddenSize];
        Layer = new EncoderLayerScratch(rows, c.HiddenSize, c.IntermediateSize);
        HeadDKey = new double[rows * c.HiddenSize];
        HeadDValue = new double[rows * c.HiddenSize];
    }

    internal VisionTower Tower { get; }
    /// <summary>The rows (batch x tokens) it was sized for.</summary>
    public int Rows { get; }
    /// <summary>The gradients, by HF name, in layout order.</summary>
    public NamedTensors Grads { get; }
    internal double[] DPatchWeight { get; }
    internal double[] DPatchBias { get; }
    internal double[] DPositions { get; }
    internal double[] DPostNormWeight { get; }
    internal double[] DPostNormBias { get; }
    internal EncoderLayerWeights[] DLayers { get; }
    internal MapHeadWeights DHead { get; }
    internal double[] DLast { get; }                 // [B, N, H] d last_hidden_state
    internal double[] DX { get; }                    // [B, N, H] d x_l; DX and DPrev swap roles going down the layers
    internal double[] DPrev { get; }                 // [B, N, H] d x_{l-1}
    internal EncoderLayerScratch Layer { get; }      // shared by the layers (their backwards run one at a time)
    internal double[] HeadDKey { get; }              // [B, N, H] the MAP head's d key
    internal double[] HeadDValue { get; }            // [B, N, H] the MAP head's d value

    internal void Clear()
    {
        foreach (var (_, g) in Grads) Array.Clear(g.Data);
    }
}
