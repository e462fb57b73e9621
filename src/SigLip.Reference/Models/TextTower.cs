using SigLip.Reference.Layers;

namespace SigLip.Reference.Models;

// The text tower, HF SiglipTextTransformer (no attention mask):
//   x0 = token_embedding[ids] + position_embedding[0..L-1]            [B, L, H]
//   x_{l+1} = EncoderLayer_l(x_l)                                     [B, L, H]
//   last_hidden_state = final_layer_norm(x_Lyr)                       [B, L, H]
//   pooler_output = head(last_hidden_state[:, L-1, :])                [B, P]
// Dimensions: B = batch, L = sequence length (<= max_position_embeddings), V = vocabulary,
// H = width, NH = heads, I = MLP width, P = projection width (= the image tower's width).

/// <summary>The saved activations of one text-tower forward pass, with its two outputs.</summary>
public sealed class TextForwardPass
{
    internal TextForwardPass(TokenIds ids, TextConfig c) : this(ids.Batch, ids.Length, c) => Ids = ids;

    /// <summary>Buffers for one forward pass of <paramref name="batch"/> texts of <paramref name="length"/> tokens through a tower of config <paramref name="c"/>.</summary>
    public TextForwardPass(int batch, int length, TextConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        if (batch < 1 || length < 1) throw new ArgumentOutOfRangeException(nameof(batch), $"A forward pass needs at least one text of at least one token, not [{batch}, {length}].");
        Ids = new TokenIds(batch, length, new int[batch * length]);
        int rows = batch * length, h = c.HiddenSize;
        Embeddings = new double[rows * h];
        Layers = Enumerable.Range(0, c.NumHiddenLayers)
            .Select(_ => new EncoderLayerSaved(batch, length, h, c.NumAttentionHeads, c.IntermediateSize)).ToArray();
        FinalNormMean = new double[rows];
        FinalNormRstd = new double[rows];
        LastHiddenState = Tensor.Zeros(batch, length, h);
        Pooled = new double[batch * h];
        PoolerOutput = Tensor.Zeros(batch, c.ProjectionDim);
    }

    /// <summary>The token ids [B, L] this pass ran on.</summary>
    public TokenIds Ids { get; internal set; }
    /// <summary>B, the batch size.</summary>
    public int Batch => Ids.Batch;
    /// <summary>L, the text length.</summary>
    public int Length => Ids.Length;
    internal double[] Embeddings { get; }            // [B, L, H] tokens + positions: layer 0's input
    internal EncoderLayerSaved[] Layers { get; }     // Layers[l].Output = x_{l+1}
    internal double[] FinalNormMean { get; }         // [B*L]
    internal double[] FinalNormRstd { get; }         // [B*L]
    internal double[] Pooled { get; }                // [B, H] last token of last_hidden_state

    /// <summary>final_layer_norm output [B, L, H] (HF text last_hidden_state).</summary>
    public Tensor LastHiddenState { get; }
    /// <summary>head(last token) [B, P] (HF text pooler_output; the text embedding before L2 normalisation).</summary>
    public Tensor PoolerOutput { get; }

    internal double[] LayerInput(int layer) => layer == 0 ? Embeddings : Layers[layer - 1].Output;
}

/// <summary>
/// The text tower (HF <c>text_model.*</c>). It reads the parameter arrays it is given in place
/// (no copy), so updates to them are seen by the next forward pass.
/// </summary>
public sealed class TextTower
{
    private readonly double[] _tokens, _positions, _finalNormWeight, _finalNormBias, _headWeight, _headBias;
    private readonly EncoderLayerWeights[] _layers;

    /// <param name="parameters">at least every <c>text_model.*</c> parameter of the layout, under HF names.</param>
    /// <param name="ops">the primitive operations its layers run (null: <see cref="ReferenceOps"/>, the specification).</param>
    public TextTower(TextConfig config, IReadOnlyDictionary<string, Tensor> parameters, ILayerOps? ops = null)
    {
        Ops = ops ?? ReferenceOps.Instance;
        ArgumentNullException.ThrowIfNull(config);
        TowerParameters.CheckConfig("text_config", config.HiddenSize, config.NumAttentionHeads, config.HiddenAct, config.LayerNormEps);
        Config = config;
        Specs = Layout(config);
        Parameters = TowerParameters.Select(Specs, parameters, "text tower");
        (_tokens, _positions, _finalNormWeight, _finalNormBias, _headWeight, _headBias, _layers) = Bind(Parameters);
    }

    /// <summary>The tower's sizes.</summary>
    public TextConfig Config { get; }
    /// <summary>The primitive operations its layers run.</summary>
    public ILayerOps Ops { get; }
    /// <summary>The tower's parameters (the arrays given to the constructor, not copies), in layout order.</summary>
    public NamedTensors Parameters { get; }
    /// <summary>The tower's parameter specs, in layout order.</summary>
    public IReadOnlyList<ParameterSpec> Specs { get; }

    /// <summary>The <c>text_model.*</c> entries of <see cref="ParameterLayout"/> for this config.</summary>
    public static IReadOnlyList<ParameterSpec> Layout(TextConfig config) =>
        ParameterLayout.For(new SiglipConfig(config, new VisionConfig())).Where(p => p.Tower == Tower.Text).ToArray();

    internal (double[], double[], double[], double[], double[], double[], EncoderLayerWeights[]) Bind(IReadOnlyDictionary<string, Tensor> p) => (
        p["text_model.embeddings.token_embedding.weight"].Data,
        p["text_model.embeddings.position_embedding.weight"].Data,
        p["text_model.final_layer_norm.weight"].Data,
        p["text_model.final_layer_norm.bias"].Data,
        p["text_model.head.weight"].Data,
        p["text_model.head.bias"].Data,
        Enumerable.Range(0, Config.NumHiddenLayers).Select(l => EncoderLayerWeights.From(p, $"text_model.encoder.layers.{l}")).ToArray());

    /// <summary>Checks token ids against the config (vocabulary range, length); throws saying which row and position is wrong.</summary>
    public void ValidateIds(TokenIds ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var c = Config;
        if (ids.Batch < 1 || ids.Length < 1)
            throw new ArgumentException($"input_ids is [{ids.Batch}, {ids.Length}]: at least one text of at least one token is needed.");
        if (ids.Ids is null || ids.Ids.Length != ids.Batch * ids.Length)
            throw new ArgumentException($"input_ids holds {ids.Ids?.Length ?? 0} ids but its shape [{ids.Batch}, {ids.Length}] needs {ids.Batch * ids.Length}.");
        if (ids.Length > c.MaxPositionEmbeddings)
            throw new ArgumentException($"input_ids has sequence length {ids.Length} but the text config allows at most max_position_embeddings = {c.MaxPositionEmbeddings}.");
        for (int b = 0; b < ids.Batch; b++)
        for (int t = 0; t < ids.Length; t++)
        {
            int id = ids[b, t];
            if (id < 0 || id >= c.VocabSize)
                throw new ArgumentException($"input_ids[row {b}, position {t}] = {id} is outside the vocabulary: ids must lie in [0, {c.VocabSize}) (vocab_size {c.VocabSize}).");
        }
    }

    /// <summary>Runs the tower on token ids [B, L].</summary>
    public TextForwardPass Forward(TokenIds inputIds)
    {
        ValidateIds(inputIds);
        return Run(inputIds, new TextForwardPass(inputIds, Config));
    }

    /// <summary>
    /// As <see cref="Forward(TokenIds)"/>, into buffers the caller owns and may pass again (sized for
    /// this batch size and length): what a training loop does so that a step allocates nothing.
    /// </summary>
    public TextForwardPass Forward(TokenIds inputIds, TextForwardPass into)
    {
        ArgumentNullException.ThrowIfNull(into);
        ValidateIds(inputIds);
        if (into.Batch != inputIds.Batch || into.Length != inputIds.Length)
            throw new ArgumentException($"The pass buffers are for [{into.Batch}, {into.Length}] token ids but input_ids is [{inputIds.Batch}, {inputIds.Length}].");
        into.Ids = inputIds;
        return Run(inputIds, into);
    }

    private TextForwardPass Run(TokenIds inputIds, TextForwardPass pass)
    {
        var c = Config;
        int batch = inputIds.Batch, len = inputIds.Length, h = c.HiddenSize;
        TokenEmbedding.Forward(pass.Embeddings, inputIds.Ids, _tokens, batch, len, h);
        PositionEmbedding.Forward(pass.Embeddings, pass.Embeddings, _positions, batch, len, h);
        for (int l = 0; l < c.NumHiddenLayers; l++)
            EncoderLayer.Forward(pass.Layers[l], pass.LayerInput(l), _layers[l], batch, len, h, c.NumAttentionHeads, c.IntermediateSize, c.LayerNormEps, Ops);
        Ops.LayerNormForward(pass.LastHiddenState.Data, pass.FinalNormMean, pass.FinalNormRstd, pass.LayerInput(c.NumHiddenLayers), _finalNormWeight, _finalNormBias, batch * len, h, c.LayerNormEps);
        LastTokenPooling.Forward(pass.Pooled, pass.LastHiddenState.Data, batch, len, h);
        Ops.LinearForward(pass.PoolerOutput.Data, pass.Pooled, _headWeight, _headBias, batch, h, c.ProjectionDim);
        return pass;
    }

    // forward: x0 = tok[ids] + pos;  x_{l+1} = layer_l(x_l);  last = LN(x_L);  out = head(last[:, L-1])
    // backward: dpooled from the head; dlast = dLastHiddenState + (dpooled at position L-1);
    //   dx_L = LN'(dlast); down the layers; dpos[t] = sum_b dx0[b, t]; dtok[ids[b, t]] += dx0[b, t].
    /// <summary>
    /// Gradients of the tower's parameters (HF names, layout order) given d pooler_output [B, P] and,
    /// optionally, d last_hidden_state [B, L, H].
    /// </summary>
    public NamedTensors Backward(TextForwardPass pass, Tensor dPoolerOutput, Tensor? dLastHiddenState = null)
    {
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(dPoolerOutput);
        var c = Config;
        int batch = pass.Batch, len = pass.Length, h = c.HiddenSize;
        VisionTower.CheckShape("d pooler_output", dPoolerOutput, [batch, c.ProjectionDim]);
        if (dLastHiddenState is not null) VisionTower.CheckShape("d last_hidden_state", dLastHiddenState, [batch, len, h]);

        var buffers = new TextBackwardWorkspace(this, batch, len);
        Backward(buffers, pass, dPoolerOutput, dLastHiddenState);
        return buffers.Grads;
    }

    /// <summary>
    /// As <see cref="Backward(TextForwardPass, Tensor, Tensor?)"/>, into the gradients and scratch of
    /// <paramref name="workspace"/> (zeroed here), which the caller owns: the result is
    /// <c>workspace.Grads</c>, overwritten by the next call with that workspace.
    /// </summary>
    public NamedTensors Backward(TextForwardPass pass, Tensor dPoolerOutput, Tensor? dLastHiddenState, TextBackwardWorkspace workspace)
    {
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(dPoolerOutput);
        ArgumentNullException.ThrowIfNull(workspace);
        var c = Config;
        int batch = pass.Batch, len = pass.Length, h = c.HiddenSize;
        VisionTower.CheckShape("d pooler_output", dPoolerOutput, [batch, c.ProjectionDim]);
        if (dLastHiddenState is not null) VisionTower.CheckShape("d last_hidden_state", dLastHiddenState, [batch, len, h]);
        if (!ReferenceEquals(workspace.Tower, this) || workspace.Batch != batch || workspace.Length != len)
            throw new ArgumentException($"The workspace belongs to another tower or is for [{workspace.Batch}, {workspace.Length}] tokens; this pass has [{batch}, {len}].");
        workspace.Clear();
        Backward(workspace, pass, dPoolerOutput, dLastHiddenState);
        return workspace.Grads;
    }

    private void Backward(TextBackwardWorkspace b, TextForwardPass pass, Tensor dPoolerOutput, Tensor? dLastHiddenState)
    {
        var c = Config;
        int batch = pass.Batch, len = pass.Length, h = c.HiddenSize;
        var dpooled = b.DPooled; // [B, H]
        Array.Clear(dpooled);
        Ops.LinearBackward(dpooled, b.DHeadWeight, b.DHeadBias, dPoolerOutput.Data, pass.Pooled, _headWeight, batch, h, c.ProjectionDim);
        var dlast = b.DLast; // [B, L, H]
        if (dLastHiddenState is null) Array.Clear(dlast); else Array.Copy(dLastHiddenState.Data, dlast, dlast.Length);
        LastTokenPooling.Backward(dlast, dpooled, batch, len, h);
        var dx = b.DX; // [B, L, H]
        Array.Clear(dx);
        Ops.LayerNormBackward(dx, b.DFinalNormWeight, b.DFinalNormBias, dlast, pass.LayerInput(c.NumHiddenLayers), _finalNormWeight, pass.FinalNormMean, pass.FinalNormRstd, batch * len, h);
        var dprev = b.DPrev;
        for (int l = c.NumHiddenLayers - 1; l >= 0; l--)
        {
            Array.Clear(dprev); // [B, L, H] d x_l (accumulated by the layer)
            EncoderLayer.Backward(dprev, b.DLayers[l], dx, pass.Layers[l], pass.LayerInput(l), _layers[l], batch, len, h, c.NumAttentionHeads, c.IntermediateSize, b.Layer, Ops);
            (dx, dprev) = (dprev, dx);
        }
        PositionEmbedding.Backward(null, b.DPositions, dx, batch, len, h);
        TokenEmbedding.Backward(b.DTokens, dx, pass.Ids.Ids, batch, len, h);
    }
}

/// <summary>The text tower's parameter gradients (zero until a backward adds to them) and its backward's scratch, for B texts of L tokens. A caller that runs many backwards of one shape (a training loop) allocates one and passes it each time.</summary>
public sealed class TextBackwardWorkspace
{
/// <summary>Gradients and scratch for a backward of <paramref name="batch"/> texts of <paramref name="length"/> tokens through <paramref name="tower"/>.</summary>
    public TextBackwardWorkspace(TextTower tower, int batch, int length)
    {
        ArgumentNullException.ThrowIfNull(tower);
        if (batch < 1 || length < 1) throw new ArgumentOutOfRangeException(nameof(batch), $"A backward needs at least one text of at least one token, not [{batch}, {length}].");
        var c = tower.Config;
        Tower = tower;
        Batch = batch;
        Length = length;
        int rows = batch * length;
        Grads = TowerParameters.Zeros(tower.Specs);
        (DTokens, DPositions, DFinalNormWeight, DFinalNormBias, DHeadWeight, DHeadBias, DLayers) = tower.Bind(Grads);
        DPooled = new double[batch * c.HiddenSize];
        DLast = new double[rows * c.HiddenSize];
        DX = new double[rows * c.HiddenSize];
        DPrev = new double[rows * c.HiddenSize];
        Layer = new EncoderLayerScratch(rows, c.HiddenSize, c.IntermediateSize);
    }

    internal TextTower Tower { get; }
    /// <summary>B, the texts it was sized for.</summary>
    public int Batch { get; }
    /// <summary>L, the tokens per text it was sized for.</summary>
    public int Length { get; }
    /// <summary>The gradients, by HF name, in layout order.</summary>
    public NamedTensors Grads { get; }
    internal double[] DTokens { get; }
    internal double[] DPositions { get; }
    internal double[] DFinalNormWeight { get; }
    internal double[] DFinalNormBias { get; }
    internal double[] DHeadWeight { get; }
    internal double[] DHeadBias { get; }
    internal EncoderLayerWeights[] DLayers { get; }
    internal double[] DPooled { get; }               // [B, H] d last token
    internal double[] DLast { get; }                 // [B, L, H] d last_hidden_state
    internal double[] DX { get; }                    // [B, L, H] d x_l; DX and DPrev swap roles going down the layers
    internal double[] DPrev { get; }                 // [B, L, H] d x_{l-1}
    internal EncoderLayerScratch Layer { get; }      // shared by the layers (their backwards run one at a time)

    internal void Clear()
    {
        foreach (var (_, g) in Grads) Array.Clear(g.Data);
    }
}
