using SigLip.Reference.Backends;
using SigLip.Reference.Layers;
using SigLip.Reference.Loss;

namespace SigLip.Reference.Models;

// SigLIP: two towers, L2-normalised embeddings and a pairwise loss (HF SiglipModel):
//   image_embeds = vision_pooler / |vision_pooler|                  [B, D]
//   text_embeds  = text_pooler / |text_pooler|                      [B, D]
//   logits_per_text  = text_embeds image_embeds^T exp(t') + b       [B, B]  (row = text)
//   logits_per_image = logits_per_text^T                            [B, B]  (row = image)
//   loss = PairwiseLoss(vision_pooler, text_pooler, t', b)          (sigmoid or softmax)
// Dimensions: B = batch (images = texts), D = embedding width (vision hidden = text projection).

/// <summary>One forward pass of the whole model: the loss, the named outputs and the saved activations.</summary>
public sealed class SiglipForwardPass
{
    internal SiglipForwardPass(double loss, IReadOnlyDictionary<string, Tensor> outputs, VisionForwardPass vision, TextForwardPass text, LossResult lossResult, LockedTowers locked)
    {
        Loss = loss;
        Outputs = outputs;
        Vision = vision;
        Text = text;
        LossResult = lossResult;
        Locked = locked;
    }

    /// <summary>The batch's loss.</summary>
    public double Loss { get; }

    /// <summary>By HF name (<see cref="OutputNames"/>): embeds, both logits, loss [1], both towers' last hidden state and pooler output.</summary>
    public IReadOnlyDictionary<string, Tensor> Outputs { get; }

    /// <summary>The image tower's pass (its saved activations and outputs).</summary>
    public VisionForwardPass Vision { get; }
    /// <summary>The text tower's pass.</summary>
    public TextForwardPass Text { get; }
    /// <summary>The loss with its gradients w.r.t. the unnormalised embeddings (the pooler outputs), t' and b.</summary>
    public LossResult LossResult { get; }
    /// <summary>The towers this pass was run with locked; <see cref="SiglipModel.Backward(SiglipForwardPass)"/> computes no gradients for them.</summary>
    public LockedTowers Locked { get; }
}

/// <summary>
/// The reference SigLIP model in float64: parameters under HF names, forward with named outputs,
/// hand-written backward. Not thread-safe.
/// </summary>
public sealed class SiglipModel
{
    /// <summary>
    /// Copies <paramref name="parameters"/> (HF names) into <see cref="Parameters"/>, in
    /// <see cref="ParameterLayout"/> order. Missing, unexpected or wrongly shaped names throw an
    /// <see cref="ArgumentException"/> naming them.
    /// </summary>
    /// <param name="ops">the primitive operations both towers and the loss run (null: <see cref="ReferenceOps"/>, the specification).</param>
    public SiglipModel(SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, ILayerOps? ops = null)
    {
        Ops = ops ?? ReferenceOps.Instance;
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(parameters);
        config.Validate();
        Config = config;
        Specs = ParameterLayout.For(config);
        CheckNames(Specs, parameters);
        Parameters = new NamedTensors(Specs.Select(s => new KeyValuePair<string, Tensor>(s.Name, parameters[s.Name].Clone())));
        Vision = new VisionTower(config.Vision, Parameters, Ops);
        Text = new TextTower(config.Text, Parameters, Ops);
    }

    /// <summary>The primitive operations its towers and loss run.</summary>
    public ILayerOps Ops { get; }

    /// <summary>The model's sizes.</summary>
    public SiglipConfig Config { get; }

    /// <summary>The model's own parameters (HF names, layout order). Updating their Data in place changes the model.</summary>
    public NamedTensors Parameters { get; }

    /// <summary>Every parameter's name, shape and kind, in <see cref="ParameterLayout"/> order.</summary>
    public IReadOnlyList<ParameterSpec> Specs { get; }
    /// <summary>The image tower, sharing this model's parameter arrays.</summary>
    public VisionTower Vision { get; }
    /// <summary>The text tower, sharing this model's parameter arrays.</summary>
    public TextTower Text { get; }

    /// <summary>t' (HF logit_scale): the logits are scaled by exp(t').</summary>
    public double LogitScale => Parameters[ParameterLayout.LogitScale].Data[0];
    /// <summary>b (HF logit_bias).</summary>
    public double LogitBias => Parameters[ParameterLayout.LogitBias].Data[0];

    private static void CheckNames(IReadOnlyList<ParameterSpec> specs, IReadOnlyDictionary<string, Tensor> parameters)
    {
        var known = specs.ToDictionary(s => s.Name, StringComparer.Ordinal);
        var missing = specs.Where(s => !parameters.ContainsKey(s.Name)).Select(s => s.Name).ToList();
        var unexpected = parameters.Keys.Where(k => !known.ContainsKey(k)).ToList();
        var wrong = specs.Where(s => parameters.TryGetValue(s.Name, out var t) && !t.Shape.SequenceEqual(s.Shape))
            .Select(s => $"{s.Name} is {Tensor.ShapeToString(parameters[s.Name].Shape)} but the config needs {Tensor.ShapeToString(s.Shape)}").ToList();
        if (missing.Count + unexpected.Count + wrong.Count == 0) return;
        static string List(List<string> xs) => string.Join(", ", xs.Take(10)) + (xs.Count > 10 ? $", ... ({xs.Count} in all)" : "");
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add($"missing: {List(missing)}");
        if (unexpected.Count > 0) parts.Add($"unexpected (not in this config's layout): {List(unexpected)}");
        if (wrong.Count > 0) parts.Add($"wrong shape: {string.Join("; ", wrong.Take(10))}");
        throw new ArgumentException($"The parameters do not fit the config: {string.Join("; ", parts)}.");
    }

    /// <summary>
    /// Runs both towers and the loss on a batch of B images [B, C, S, S] and B texts [B, L].
    /// A locked tower still runs forward (its embeddings are needed) but its backward is never run.
    /// </summary>
    public SiglipForwardPass Forward(SiglipBatch batch, LossOptions? loss = null, LockedTowers locked = LockedTowers.None)
    {
        ArgumentNullException.ThrowIfNull(batch);
        loss ??= LossOptions.Default;
        ValidateBatch(batch);
        var vision = Vision.Forward(batch.PixelValues);
        var text = Text.Forward(batch.InputIds);
        var lossResult = Ops.PairwiseLoss(vision.PoolerOutput, text.PoolerOutput, LogitScale, LogitBias, loss);

        int n = batch.Size, d = Config.EmbedDim;
        var imageEmbeds = Normalise(vision.PoolerOutput, loss.NormEpsilon);
        var textEmbeds = Normalise(text.PoolerOutput, loss.NormEpsilon);
        var logitsPerText = Tensor.Zeros(n, n);   // [B texts, B images]
        var logitsPerImage = Tensor.Zeros(n, n);  // [B images, B texts]
        double scale = Math.Exp(LogitScale), bias = LogitBias;
        for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++)
        {
            double dot = 0;
            for (int k = 0; k < d; k++) dot += textEmbeds.Data[j * d + k] * imageEmbeds.Data[i * d + k];
            double logit = dot * scale + bias;
            logitsPerText.Data[j * n + i] = logit;
            logitsPerImage.Data[i * n + j] = logit;
        }
        var outputs = new NamedTensors
        {
            { OutputNames.ImageEmbeds, imageEmbeds },
            { OutputNames.TextEmbeds, textEmbeds },
            { OutputNames.LogitsPerText, logitsPerText },
            { OutputNames.LogitsPerImage, logitsPerImage },
            { OutputNames.Loss, Tensor.Scalar(lossResult.Loss) },
            { OutputNames.VisionLastHiddenState, vision.LastHiddenState },
            { OutputNames.VisionPoolerOutput, vision.PoolerOutput },
            { OutputNames.TextLastHiddenState, text.LastHiddenState },
            { OutputNames.TextPoolerOutput, text.PoolerOutput },
        };
        return new SiglipForwardPass(lossResult.Loss, outputs, vision, text, lossResult, locked);
    }

    /// <summary>
    /// d loss / d parameter under HF names (no "grad." prefix), layout order: every parameter of the
    /// unlocked towers, then logit_scale and logit_bias. A locked tower's backward is not run.
    /// </summary>
    public NamedTensors Backward(SiglipForwardPass pass)
    {
        ArgumentNullException.ThrowIfNull(pass);
        var r = pass.LossResult;
        // The loss's embedding gradients are w.r.t. the unnormalised embeddings, i.e. the pooler outputs.
        return BackwardFromEmbeddings(new SiglipEncoding(pass.Vision, pass.Text, pass.Locked, null),
            r.GradImageEmbeds, r.GradTextEmbeds, r.GradLogitScale, r.GradLogitBias);
    }

    /// <summary>
    /// A training step's first part: both towers' forward on a batch, keeping what backward needs.
    /// The encoding's <see cref="SiglipEncoding.ImageEmbeds"/> and <see cref="SiglipEncoding.TextEmbeds"/>
    /// are the UNnormalised embeddings (the pooler outputs) the loss takes. With a
    /// <paramref name="workspace"/>, into its buffers (valid until it is used again).
    /// </summary>
    public SiglipEncoding Encode(SiglipBatch batch, LockedTowers locked = LockedTowers.None, SiglipWorkspace? workspace = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ValidateBatch(batch);
        if (workspace is null)
            return new SiglipEncoding(Vision.Forward(batch.PixelValues), Text.Forward(batch.InputIds), locked, null);
        if (!ReferenceEquals(workspace.Model, this) || !workspace.Fits(batch))
            throw new ArgumentException($"The workspace belongs to another model or is for {workspace.Batch} pairs of {workspace.TextLength} tokens; this batch has {batch.Size} of {batch.InputIds.Length}.");
        return new SiglipEncoding(Vision.Forward(batch.PixelValues, workspace.VisionPass), Text.Forward(batch.InputIds, workspace.TextPass), locked, workspace);
    }

    /// <summary>
    /// A training step's last part: backward from the gradients of the loss w.r.t. the UNnormalised
    /// embeddings [B, D] (the pooler outputs) and w.r.t. t' and b, which the caller computed (in one
    /// process, or on a ring of ranks). Returns d loss / d parameter as <see cref="Backward(SiglipForwardPass)"/>
    /// does (same names and order); a locked tower's backward is not run. With an encoding made in a
    /// workspace, into that workspace's gradient buffers (overwritten by the next call with it).
    /// </summary>
    public NamedTensors BackwardFromEmbeddings(SiglipEncoding encoding, Tensor gradImageEmbeds, Tensor gradTextEmbeds, double gradLogitScale, double gradLogitBias)
    {
        ArgumentNullException.ThrowIfNull(encoding);
        CheckEmbeddingGradient(gradImageEmbeds, encoding.ImageEmbeds, "image");
        CheckEmbeddingGradient(gradTextEmbeds, encoding.TextEmbeds, "text");
        var locked = encoding.Locked;
        if (encoding.Workspace is { } workspace)
        {
            if (!locked.HasFlag(LockedTowers.Text)) Text.Backward(encoding.Text, gradTextEmbeds, null, workspace.TextGrads);
            if (!locked.HasFlag(LockedTowers.Image)) Vision.Backward(encoding.Vision, gradImageEmbeds, null, workspace.VisionGrads);
            return workspace.Gradients(locked, gradLogitScale, gradLogitBias);
        }
        var grads = new NamedTensors();
        if (!locked.HasFlag(LockedTowers.Text))
            foreach (var (name, g) in Text.Backward(encoding.Text, gradTextEmbeds)) grads.Add(name, g);
        if (!locked.HasFlag(LockedTowers.Image))
            foreach (var (name, g) in Vision.Backward(encoding.Vision, gradImageEmbeds)) grads.Add(name, g);
        grads.Add(ParameterLayout.LogitScale, Tensor.Scalar(gradLogitScale));
        grads.Add(ParameterLayout.LogitBias, Tensor.Scalar(gradLogitBias));
        return grads;
    }

    private static void CheckEmbeddingGradient(Tensor gradient, Tensor embeddings, string tower)
    {
        ArgumentNullException.ThrowIfNull(gradient, $"grad {tower} embeds");
        if (!gradient.Shape.SequenceEqual(embeddings.Shape))
            throw new ArgumentException($"The gradient of the {tower} embeddings is {Tensor.ShapeToString(gradient.Shape)} but the encoded batch's {tower} embeddings are {Tensor.ShapeToString(embeddings.Shape)}.");
        for (int i = 0; i < gradient.Size; i++)
            if (!double.IsFinite(gradient.Data[i]))
                throw new ArgumentException($"The gradient of the {tower} embeddings has {gradient.Data[i]} at [{i / embeddings.Shape[1]}, {i % embeddings.Shape[1]}]; gradients must be finite.");
    }

    /// <summary>
    /// As <see cref="Forward(SiglipBatch, LossOptions?, LockedTowers)"/> but for a training step: into the buffers of <paramref name="workspace"/>
    /// (which the caller owns and passes again every step of this batch shape), and without named
    /// outputs (only the loss). The pass is valid until the workspace is used again.
    /// </summary>
    public SiglipForwardPass Forward(SiglipBatch batch, LossOptions loss, LockedTowers locked, SiglipWorkspace workspace)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(workspace);
        loss ??= LossOptions.Default;
        var encoding = Encode(batch, locked, workspace);
        var lossResult = Ops.PairwiseLoss(encoding.ImageEmbeds, encoding.TextEmbeds, LogitScale, LogitBias, loss);
        return new SiglipForwardPass(lossResult.Loss, NoOutputs, encoding.Vision, encoding.Text, lossResult, locked);
    }

    /// <summary>
    /// As <see cref="Backward(SiglipForwardPass)"/> (same names, order and values) into the gradient buffers
    /// of <paramref name="workspace"/>, zeroed here: the result is overwritten by the next call with it.
    /// </summary>
    public NamedTensors Backward(SiglipForwardPass pass, SiglipWorkspace workspace)
    {
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(workspace);
        var r = pass.LossResult;
        return BackwardFromEmbeddings(new SiglipEncoding(pass.Vision, pass.Text, pass.Locked, workspace),
            r.GradImageEmbeds, r.GradTextEmbeds, r.GradLogitScale, r.GradLogitBias);
    }

    private static readonly IReadOnlyDictionary<string, Tensor> NoOutputs = System.Collections.ObjectModel.ReadOnlyDictionary<string, Tensor>.Empty;

    /// <summary>L2-normalised image embeddings [B, D] of pixel values [B, C, S, S] (forward only).</summary>
    public Tensor EmbedImages(Tensor pixelValues, double normEpsilon = 0.0) =>
        Normalise(Vision.Forward(pixelValues).PoolerOutput, normEpsilon);

    /// <summary>L2-normalised text embeddings [B, D] of token ids [B, L] (forward only).</summary>
    public Tensor EmbedTexts(TokenIds inputIds, double normEpsilon = 0.0) =>
        Normalise(Text.Forward(inputIds).PoolerOutput, normEpsilon);

    /// <summary>Checks a batch before any work: shapes against the config, equal image and text counts, finite pixels, ids in range.</summary>
    public void ValidateBatch(SiglipBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(batch.PixelValues, "batch.PixelValues");
        ArgumentNullException.ThrowIfNull(batch.InputIds, "batch.InputIds");
        Vision.ValidatePixels(batch.PixelValues);
        Text.ValidateIds(batch.InputIds);
        int images = batch.PixelValues.Shape[0], texts = batch.InputIds.Batch;
        if (images != texts)
            throw new ArgumentException($"The batch has {images} images (pixel_values {Tensor.ShapeToString(batch.PixelValues.Shape)}) but {texts} texts (input_ids [{texts}, {batch.InputIds.Length}]): SigLIP pairs image i with text i, so the counts must be equal.");
    }

    private static Tensor Normalise(Tensor embeddings, double epsilon)
    {
        int rows = embeddings.Shape[0], width = embeddings.Shape[1];
        var output = new double[rows * width]; // [B, D]
        L2Normalize.Forward(output, new double[rows], embeddings.Data, rows, width, epsilon);
        return new Tensor([rows, width], output);
    }
}

/// <summary>
/// Both towers' forward passes of one batch (<see cref="SiglipModel.Encode"/>): the UNnormalised
/// embeddings the loss takes, and what <see cref="SiglipModel.BackwardFromEmbeddings"/> needs.
/// </summary>
public sealed class SiglipEncoding
{
    internal SiglipEncoding(VisionForwardPass vision, TextForwardPass text, LockedTowers locked, SiglipWorkspace? workspace)
    {
        Vision = vision;
        Text = text;
        Locked = locked;
        Workspace = workspace;
    }

    /// <summary>The image tower's pass.</summary>
    public VisionForwardPass Vision { get; }
    /// <summary>The text tower's pass.</summary>
    public TextForwardPass Text { get; }
    /// <summary>The towers whose backward is not run.</summary>
    public LockedTowers Locked { get; }
    /// <summary>The workspace whose buffers hold the passes (and will hold the gradients), or null.</summary>
    public SiglipWorkspace? Workspace { get; }
    /// <summary>[B, D] the image pooler output (unnormalised image embeddings).</summary>
    public Tensor ImageEmbeds => Vision.PoolerOutput;
    /// <summary>[B, D] the text pooler output (unnormalised text embeddings).</summary>
    public Tensor TextEmbeds => Text.PoolerOutput;
}

/// <summary>
/// Buffers for training steps of one batch shape (B pairs, L tokens per text): both towers' saved
/// activations and gradients, owned by the caller and passed to
/// <see cref="SiglipModel.Forward(SiglipBatch, LossOptions, LockedTowers, SiglipWorkspace)"/> and
/// <see cref="SiglipModel.Backward(SiglipForwardPass, SiglipWorkspace)"/> every step, so that a step allocates
/// (almost) nothing. Make a new one when the batch shape changes.
/// </summary>
public sealed class SiglipWorkspace
{
    private readonly Tensor _gradLogitScale = Tensor.Scalar(0), _gradLogitBias = Tensor.Scalar(0);
    private readonly Dictionary<LockedTowers, NamedTensors> _gradients = [];

    /// <summary>Buffers for <paramref name="batch"/> pairs whose texts have <paramref name="textLength"/> tokens.</summary>
    public SiglipWorkspace(SiglipModel model, int batch, int textLength)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        Batch = batch;
        TextLength = textLength;
        VisionPass = new VisionForwardPass(batch, model.Config.Vision);
        TextPass = new TextForwardPass(batch, textLength, model.Config.Text);
        VisionGrads = new VisionBackwardWorkspace(model.Vision, batch);
        TextGrads = new TextBackwardWorkspace(model.Text, batch, textLength);
    }

    /// <summary>The model it belongs to.</summary>
    public SiglipModel Model { get; }
    /// <summary>B, the pairs per batch it was sized for.</summary>
    public int Batch { get; }
    /// <summary>L, the tokens per text it was sized for.</summary>
    public int TextLength { get; }
    internal VisionForwardPass VisionPass { get; }
    internal TextForwardPass TextPass { get; }
    internal VisionBackwardWorkspace VisionGrads { get; }
    internal TextBackwardWorkspace TextGrads { get; }

    /// <summary>Whether a batch has the shape these buffers were made for.</summary>
    public bool Fits(SiglipBatch batch) => batch.Size == Batch && batch.InputIds.Length == TextLength;

    // The combined set (text tower, image tower, t', b) for each locking seen, built once.
    internal NamedTensors Gradients(LockedTowers locked, double gradLogitScale, double gradLogitBias)
    {
        if (!_gradients.TryGetValue(locked, out var grads))
        {
            grads = new NamedTensors();
            if (!locked.HasFlag(LockedTowers.Text)) foreach (var (name, g) in TextGrads.Grads) grads.Add(name, g);
            if (!locked.HasFlag(LockedTowers.Image)) foreach (var (name, g) in VisionGrads.Grads) grads.Add(name, g);
            grads.Add(ParameterLayout.LogitScale, _gradLogitScale);
            grads.Add(ParameterLayout.LogitBias, _gradLogitBias);
            _gradients[locked] = grads;
        }
        _gradLogitScale.Data[0] = gradLogitScale;
        _gradLogitBias.Data[0] = gradLogitBias;
        return grads;
    }
}
