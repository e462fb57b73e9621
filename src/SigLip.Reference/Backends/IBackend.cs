using SigLip.Reference.Models;

namespace SigLip.Reference.Backends;

// The backend contract (after DiffSharp's Reference/Torch split): what a backend provides so that
// golden verification and training can run on it. The reference backend implements it in managed
// code and IS the specification; every other backend is measured against it through golden cases.
// Tensors cross the contract as host float64 Tensors; a backend computes in its own working dtype.

/// <summary>Which pairwise loss a step uses.</summary>
public enum LossKind
{
    /// <summary>SigLIP's pairwise sigmoid loss.</summary>
    Sigmoid,
    /// <summary>CLIP's softmax (InfoNCE) loss, the paper's baseline.</summary>
    Softmax,
}

/// <summary>The names of <see cref="LossKind"/> as options, reports and golden cases write them.</summary>
public static class LossKinds
{
    /// <summary>"sigmoid" or "softmax".</summary>
    public static string Name(this LossKind kind) => kind switch
    {
        LossKind.Sigmoid => "sigmoid",
        LossKind.Softmax => "softmax",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown loss kind."),
    };

    /// <summary>The loss a name means ("sigmoid" or "softmax", any case); anything else throws an <see cref="ArgumentException"/> listing both.</summary>
    public static LossKind Parse(string name) => name?.Trim().ToLowerInvariant() switch
    {
        "sigmoid" => LossKind.Sigmoid,
        "softmax" => LossKind.Softmax,
        _ => throw new ArgumentException($"Unknown loss '{name}'; expected sigmoid (SigLIP) or softmax (CLIP)."),
    };
}

/// <summary>Towers whose parameters are locked: no gradient is computed for them and they never change.</summary>
[Flags]
public enum LockedTowers
{
    /// <summary>Both towers train.</summary>
    None = 0,
    /// <summary>SigLiT: the image tower is frozen.</summary>
    Image = 1,
    /// <summary>The text tower is frozen.</summary>
    Text = 2,
}

/// <summary>Whether a backend can start on this machine, and if not, why (and what to do about it).</summary>
/// <param name="CanStart">Whether the backend can start on this machine.</param>
/// <param name="Reason">Why (not): what was found or tried, and what to set when it cannot start.</param>
public sealed record BackendAvailability(bool CanStart, string Reason);

/// <summary>A backend's working dtype: what its golden tolerances are chosen by.</summary>
public enum DType
{
    /// <summary>IEEE double precision ("float64"): the reference's dtype and the golden cases'.</summary>
    Float64,
    /// <summary>IEEE single precision ("float32").</summary>
    Float32,
    /// <summary>Mixed precision ("bfloat16"): bfloat16 matmuls, float32 master weights and loss.</summary>
    BFloat16,
}

/// <summary>The names of <see cref="DType"/> as the CLI, reports and the golden manifest write them.</summary>
public static class DTypes
{
    /// <summary>Every dtype, in the order of <see cref="DType"/>.</summary>
    public static IReadOnlyList<DType> All { get; } = [DType.Float64, DType.Float32, DType.BFloat16];

    /// <summary>"float64", "float32" or "bfloat16".</summary>
    public static string Name(this DType dtype) => dtype switch
    {
        DType.Float64 => "float64",
        DType.Float32 => "float32",
        DType.BFloat16 => "bfloat16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    /// <summary>
    /// The dtype a name means: float64 (also fp64, double), float32 (fp32, float) or bfloat16 (bf16),
    /// any case. Anything else throws an <see cref="ArgumentException"/> listing what is accepted.
    /// </summary>
    public static DType Parse(string name) => name?.Trim().ToLowerInvariant() switch
    {
        "float64" or "fp64" or "double" => DType.Float64,
        "float32" or "fp32" or "float" => DType.Float32,
        "bfloat16" or "bf16" => DType.BFloat16,
        _ => throw new ArgumentException($"Unknown dtype '{name}'; expected float64, float32 or bfloat16."),
    };
}

/// <summary>How to start a backend.</summary>
/// <param name="DType">The working dtype, or null for the backend's default.</param>
/// <param name="LibTorchPath">A folder holding libtorch (e.g. PyTorch's torch/lib); null: SIGLIP_LIBTORCH or the packaged one.</param>
/// <param name="Seed">Seed for anything random inside the backend.</param>
/// <param name="Threads">CPU threads a backend's kernels may use; null: every core. Backends that take no such setting ignore it.</param>
/// <param name="DeviceIndex">Which accelerator to use (e.g. GPU k of this machine); null: the first. Under MPI each rank passes
/// its local rank, so the ranks on one machine use one GPU each. CPU backends ignore it.</param>
public sealed record BackendOptions(DType? DType = null, string? LibTorchPath = null, int Seed = 0, int? Threads = null, int? DeviceIndex = null)
{
    /// <summary>Throws an <see cref="ArgumentException"/> when <see cref="Threads"/> is given and below 1.</summary>
    public int ThreadsOrAllCores() => Threads switch
    {
        null => Environment.ProcessorCount,
        >= 1 and var t => t,
        var t => throw new ArgumentException($"--threads {t}: a backend needs at least 1 thread."),
    };
}

/// <summary>Settings of the pairwise loss.</summary>
/// <param name="Kind">Sigmoid (SigLIP) or softmax (CLIP).</param>
/// <param name="Chunks">D, the number of simulated devices of the chunked sigmoid loss (1 = dense).</param>
/// <param name="NormEpsilon">Added to the L2 norm before dividing (0 matches HF; big_vision uses 1e-8).</param>
public sealed record LossOptions(LossKind Kind = LossKind.Sigmoid, int Chunks = 1, double NormEpsilon = 0.0)
{
    /// <summary>The paper's setting: sigmoid loss, dense (one device), no epsilon in the L2 norm (as HF).</summary>
    public static LossOptions Default { get; } = new();
}

/// <summary>
/// A loss value with its gradients. Embedding gradients are with respect to the UNnormalised
/// embeddings (the backward runs through the L2 normalisation).
/// </summary>
/// <param name="Loss">L, the batch's loss (sigmoid: divided by n, not n^2).</param>
/// <param name="GradImageEmbeds">[n, d] dL / d image embeddings (unnormalised).</param>
/// <param name="GradTextEmbeds">[n, d] dL / d text embeddings (unnormalised).</param>
/// <param name="GradLogitScale">dL / dt', where t = exp(t').</param>
/// <param name="GradLogitBias">dL / db (0 for the softmax loss).</param>
/// <param name="LogitsPerImage">[n, n] logits, row = image, when asked for; else null.</param>
public sealed record LossResult(
    double Loss,
    Tensor GradImageEmbeds,
    Tensor GradTextEmbeds,
    double GradLogitScale,
    double GradLogitBias,
    Tensor? LogitsPerImage = null);

/// <summary>AdamW with decoupled weight decay, plus gradient clipping by global norm.</summary>
/// <param name="MaxGradNorm">Clip the global gradient norm to this (0 or less: no clipping).</param>
/// <param name="Beta1">Decay of the first-moment (mean) estimate.</param>
/// <param name="Beta2">Decay of the second-moment (uncentred variance) estimate.</param>
/// <param name="Epsilon">Added to sqrt(v) in the denominator.</param>
/// <param name="WeightDecay">Decoupled weight decay, applied as p -= lr * decay * p to decayed parameters only (<see cref="Models.ParameterSpec.Decayed"/>).</param>
public sealed record AdamWSettings(
    double Beta1 = 0.9,
    double Beta2 = 0.999,
    double Epsilon = 1e-8,
    double WeightDecay = 1e-4,
    double MaxGradNorm = 1.0)
{
    /// <summary>Throws <see cref="ArgumentException"/> naming the setting that no AdamW step can use.</summary>
    public void Validate(double learningRate)
    {
        if (!(Beta1 >= 0 && Beta1 < 1)) throw new ArgumentException($"AdamW: beta1 must be in [0, 1), got {Beta1}.");
        if (!(Beta2 >= 0 && Beta2 < 1)) throw new ArgumentException($"AdamW: beta2 must be in [0, 1), got {Beta2}.");
        if (!(Epsilon > 0) || !double.IsFinite(Epsilon)) throw new ArgumentException($"AdamW: epsilon must be finite and positive, got {Epsilon}.");
        if (!(WeightDecay >= 0) || !double.IsFinite(WeightDecay)) throw new ArgumentException($"AdamW: weight decay must be finite and non-negative, got {WeightDecay}.");
        if (double.IsNaN(MaxGradNorm)) throw new ArgumentException("AdamW: max gradient norm is NaN.");
        if (!(learningRate >= 0) || !double.IsFinite(learningRate)) throw new ArgumentException($"AdamW: learning rate must be finite and non-negative, got {learningRate}.");
    }
}

/// <summary>What one forward and backward pass gives back.</summary>
/// <param name="Loss">The batch's loss.</param>
/// <param name="Outputs">Named outputs (HF names, see <see cref="OutputNames"/>) when asked for, else empty.</param>
public sealed record StepResult(double Loss, IReadOnlyDictionary<string, Tensor> Outputs);

/// <summary>The names of a model's outputs, as HF transformers calls them.</summary>
public static class OutputNames
{
    /// <summary>[B, D] L2-normalised image embeddings.</summary>
    public const string ImageEmbeds = "image_embeds";
    /// <summary>[B, D] L2-normalised text embeddings.</summary>
    public const string TextEmbeds = "text_embeds";
    /// <summary>[B, B] logits, row = text: t * text_embeds @ image_embeds^T + b.</summary>
    public const string LogitsPerText = "logits_per_text";
    /// <summary>[B, B] logits, row = image (the transpose of <see cref="LogitsPerText"/>).</summary>
    public const string LogitsPerImage = "logits_per_image";
    /// <summary>[1] the batch's loss.</summary>
    public const string Loss = "loss";
    /// <summary>[B, N, H] the vision tower's tokens after the final LayerNorm.</summary>
    public const string VisionLastHiddenState = "vision_last_hidden_state";
    /// <summary>[B, H] the MAP head's output (before normalisation).</summary>
    public const string VisionPoolerOutput = "vision_pooler_output";
    /// <summary>[B, L, H] the text tower's tokens after the final LayerNorm.</summary>
    public const string TextLastHiddenState = "text_last_hidden_state";
    /// <summary>[B, D] the last token's state through the text head (before normalisation).</summary>
    public const string TextPoolerOutput = "text_pooler_output";
    /// <summary>Gradients are stored as <c>grad.&lt;parameter name&gt;</c>.</summary>
    public const string GradPrefix = "grad.";
}

/// <summary>What <see cref="ISiglipModel.EncodeForTraining"/> gives back: a local batch's embeddings before the loss.</summary>
/// <param name="ImageEmbeds">[B, D] the image pooler output: UNnormalised image embeddings.</param>
/// <param name="TextEmbeds">[B, D] the text pooler output: UNnormalised text embeddings.</param>
/// <param name="LogitScale">The model's t' (t = exp(t')), for the loss.</param>
/// <param name="LogitBias">The model's b, for the loss.</param>
public sealed record EncodedBatch(Tensor ImageEmbeds, Tensor TextEmbeds, double LogitScale, double LogitBias);

/// <summary>A model living on a backend: its parameters, forward, backward and optimizer.</summary>
public interface ISiglipModel : IDisposable
{
    /// <summary>The model's shapes (both towers).</summary>
    SiglipConfig Config { get; }
    /// <summary>The towers that are frozen: no gradients, no updates.</summary>
    LockedTowers Locked { get; }

    /// <summary>Forward only. With <paramref name="collectOutputs"/>, every named output comes back.</summary>
    StepResult Forward(SiglipBatch batch, LossOptions loss, bool collectOutputs);

    /// <summary>Forward and backward: afterwards <see cref="Gradients"/> holds d loss / d parameter (not accumulated).</summary>
    StepResult ForwardBackward(SiglipBatch batch, LossOptions loss, bool collectOutputs);

    /// <summary>
    /// A training step split in three, for a loss computed elsewhere (e.g. on a ring of ranks):
    /// (1) this: both towers' forward on the local batch, keeping what backward needs; returns the
    /// UNnormalised embeddings (the pooler outputs [B, D]) and the current t' and b;
    /// (2) the caller computes the loss and its gradients w.r.t. those embeddings, t' and b;
    /// (3) <see cref="BackwardFromEmbeddings"/>. <see cref="ForwardBackward"/> is the one-process case:
    /// encode, <see cref="SigLip.Reference.Loss.PairwiseLoss"/>, backward.
    /// </summary>
    EncodedBatch EncodeForTraining(SiglipBatch batch);

    /// <summary>
    /// Step (3): backward from dL/d image embeddings and dL/d text embeddings [B, D] (w.r.t. the
    /// UNnormalised embeddings that <see cref="EncodeForTraining"/> returned) and dL/dt', dL/db.
    /// Afterwards <see cref="Gradients"/> holds d loss / d parameter, with dL/dt' and dL/db as given,
    /// ready for <see cref="OptimizerStep"/>. Once per <see cref="EncodeForTraining"/>.
    /// </summary>
    void BackwardFromEmbeddings(Tensor gradImageEmbeds, Tensor gradTextEmbeds, double gradLogitScale, double gradLogitBias);

    /// <summary>The gradients of the last <see cref="ForwardBackward"/> or <see cref="BackwardFromEmbeddings"/>, by HF parameter name. Locked towers have none.</summary>
    NamedTensors Gradients();

    /// <summary>
    /// Data-parallel training: replaces the gradients of every tower parameter (everything but t' and b)
    /// from the last <see cref="BackwardFromEmbeddings"/> by their sum over the ranks of
    /// <paramref name="communicator"/>, so that <see cref="OptimizerStep"/> steps with the gradient of the
    /// global batch's loss. dL/dt' and dL/db are left as given: the distributed loss passes them already
    /// summed over the ranks. A collective: every rank calls it, with the same parameters.
    /// </summary>
    void AllReduceGradients(Distributed.ICommunicator communicator);

    /// <summary>
    /// Clips the gradients to the global norm, then takes one AdamW step. Returns the norm before clipping.
    /// Throws <see cref="Training.NonFiniteTensorException"/> naming the first gradient that is not finite (nothing
    /// changed), or the first parameter the step made NaN or infinite (the model should then be discarded).
    /// </summary>
    double OptimizerStep(AdamWSettings settings, double learningRate);

    /// <summary>Copies of all parameters, by HF name, in <see cref="ParameterLayout"/> order.</summary>
    NamedTensors GetParameters();

    /// <summary>Replaces parameters by name (every name must exist with the same shape).</summary>
    void SetParameters(IReadOnlyDictionary<string, Tensor> parameters);

    /// <summary>The optimizer's state (moments and step count), for checkpoints.</summary>
    NamedTensors GetOptimizerState();

    /// <summary>Restores the optimizer's state from <see cref="GetOptimizerState"/> (a checkpoint); the names must match.</summary>
    void SetOptimizerState(IReadOnlyDictionary<string, Tensor> state);

    /// <summary>L2-normalised image embeddings [B, D] of pixel values [B, C, H, W].</summary>
    Tensor EmbedImages(Tensor pixelValues);

    /// <summary>L2-normalised text embeddings [B, D] of token ids [B, L].</summary>
    Tensor EmbedTexts(TokenIds inputIds);
}

/// <summary>A started backend.</summary>
public interface IBackend : IDisposable
{
    /// <summary>The name it was started under (e.g. "reference", "torch", "cuda").</summary>
    string Name { get; }
    /// <summary>Where it computes, in words (e.g. "cpu", "cuda:0 NVIDIA H200").</summary>
    string Device { get; }
    /// <summary>The working dtype; golden tolerances are chosen by it.</summary>
    DType DType { get; }

    /// <summary>The pairwise loss of unnormalised embeddings [n, d] and its gradients.</summary>
    LossResult Loss(Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias, LossOptions options);

    /// <summary>A model with the given parameters (HF names) on this backend.</summary>
    ISiglipModel CreateModel(SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, LockedTowers locked = LockedTowers.None);
}

/// <summary>A backend that can be found by name, probed and started.</summary>
public interface IBackendProvider
{
    /// <summary>The backend's name, as <c>--backend</c> and <see cref="BackendRegistry.Find"/> take it.</summary>
    string Name { get; }
    /// <summary>What it is, in one line (shown by <c>siglip backends</c>).</summary>
    string Description { get; }
    /// <summary>Cheap check: can it start here? If not, the reason says what was tried and what to set.</summary>
    BackendAvailability Probe();
    /// <summary>Starts the backend; throws <see cref="BackendUnavailableException"/> saying what was tried and what to set when it cannot.</summary>
    IBackend Start(BackendOptions options);
}

/// <summary>Thrown when a backend cannot start; the message says what was tried and what to set.</summary>
public sealed class BackendUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
