// A SigLIP model living in libtorch: forward with named outputs, backward by autograd, AdamW.
// Dimension legend: B = batch, C = channels, S = image side, L = text tokens, N = image tokens,
// H = width, D = embedding width.
using SigLip.Backends.TorchSharp.Modules;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using ReferenceAdamW = SigLip.Reference.Training.AdamW;

namespace SigLip.Backends.TorchSharp;

/// <summary>A batch already on the device: pixels [B, C, S, S] in the master dtype, ids [B, L] int64.</summary>
public sealed class DeviceBatch(Tensor pixelValues, Tensor inputIds) : IDisposable
{
    /// <summary>[B, C, S, S] pixels on the device.</summary>
    public Tensor PixelValues { get; } = pixelValues;
    /// <summary>[B, L] int64 token ids on the device.</summary>
    public Tensor InputIds { get; } = inputIds;
    /// <summary>Frees both device tensors.</summary>
    public void Dispose() { PixelValues.Dispose(); InputIds.Dispose(); }
}

/// <summary>
/// A SigLIP model as TorchSharp modules under HF parameter names (<see cref="SiglipModule"/>), with
/// autograd gradients and an AdamW that follows the reference's update exactly.
/// </summary>
public sealed class TorchSiglipModel : ISiglipModel
{
    private readonly SiglipModule _module;
    private readonly Dictionary<string, Parameter> _parameters;   // HF name -> parameter
    private readonly IReadOnlyList<ParameterSpec> _layout;
    private readonly TorchAdamW _optimizer;
    private bool _hasGradients;

    /// <summary>
    /// A model on <paramref name="device"/> in <paramref name="precision"/>: <paramref name="parameters"/>
    /// (HF names; every one of the config's) are copied in, or null keeps libtorch's own initialisation.
    /// </summary>
    public TorchSiglipModel(SiglipConfig config, Precision precision, Device device, LockedTowers locked,
                            IReadOnlyDictionary<string, HostTensor>? parameters)
    {
        config.Validate();
        Config = config;
        Precision = precision;
        Device = device;
        Locked = locked;
        _layout = ParameterLayout.For(config);
        _module = TorchMemory.Guard(() =>
        {
            var module = new SiglipModule(config, precision);
            module.to(precision.ParameterType).to(device);
            return module;
        }, DeviceName, $"the model's {ModelSize.ParameterCount(config):N0} parameters", "use a smaller config (fewer layers, narrower widths) or a device with more memory");
        _parameters = _module.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var unknown = _parameters.Keys.Except(_layout.Select(s => s.Name)).ToList();
        var absent = _layout.Select(s => s.Name).Except(_parameters.Keys).ToList();
        if (unknown.Count > 0 || absent.Count > 0)  // a bug here, not a user error: the modules must mirror ParameterLayout
            throw new InvalidOperationException($"TorchSharp module names differ from ParameterLayout: extra {string.Join(", ", unknown)}; missing {string.Join(", ", absent)}.");
        if (parameters is not null)
        {
            var missing = _layout.Select(s => s.Name).Where(n => !parameters.ContainsKey(n)).ToList();
            if (missing.Count > 0)
                throw new ArgumentException($"Parameters: missing {missing.Count} tensor(s): {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", ..." : "")}.");
            SetParameters(parameters);
        }
        foreach (var spec in _layout)
            _parameters[spec.Name].requires_grad = ReferenceAdamW.IsTrainable(spec, locked);
        _optimizer = new TorchAdamW(_layout.Where(s => ReferenceAdamW.IsTrainable(s, locked)).Select(s => (s, _parameters[s.Name])));
    }

    /// <summary>
    /// Refuses a training step of <paramref name="batch"/> pairs whose activations cannot fit in the device's memory
    /// (<see cref="TorchMemory.Available"/>), before libtorch tries: some of its operations abort the process instead of
    /// reporting the failure. Skipped (libtorch's own error, translated where it can be) on a GPU without NVML.
    /// </summary>
    private void CheckStepFits(long batch)
    {
        // Once per batch size up to the largest that passed: afterwards a GPU's free memory no longer counts what
        // libtorch's caching allocator holds for reuse by the next step of the same size.
        if (batch <= _largestBatchChecked) return;
        if (TorchMemory.Available(Device) is not var (bytes, where)) return;
        int parameterBytes = Precision.ParameterType == ScalarType.Float64 ? 8 : 4;
        int activationBytes = Precision.ComputeType switch { ScalarType.Float64 => 8, ScalarType.BFloat16 => 2, _ => 4 };
        try
        {
            ModelSize.CheckTrainingFits(Config, batch, parameterBytes, maxBytes: null, option: "--batch-size", bytes, where, activationBytes);
        }
        catch (ModelSizeException ex)
        {
            throw new ModelSizeException($"{DeviceName}: {ex.Message}", ex);
        }
        _largestBatchChecked = batch;
    }

    private long _largestBatchChecked;

    /// <summary>The device in the messages of allocation failures (<see cref="TorchMemory"/>).</summary>
    private string DeviceName => $"torch backend on {(Device.type == DeviceType.CUDA ? $"cuda:{Device.index}" : "cpu")}";

    /// <inheritdoc/>
    public SiglipConfig Config { get; }
    /// <inheritdoc/>
    public LockedTowers Locked { get; }
    /// <summary>The parameter and compute dtypes.</summary>
    public Precision Precision { get; }
    /// <summary>The libtorch device the parameters live on.</summary>
    public Device Device { get; }
    /// <summary>The underlying TorchSharp module.</summary>
    public SiglipModule Module => _module;

    /// <summary>Copies a host batch to the device, checking its shapes against the config.</summary>
    public DeviceBatch ToDevice(SiglipBatch batch)
    {
        var v = Config.Vision;
        var px = batch.PixelValues;
        if (px.Rank != 4 || px.Shape[1] != v.NumChannels || px.Shape[2] != v.ImageSize || px.Shape[3] != v.ImageSize)
            throw new ArgumentException($"pixel_values has shape {HostTensor.ShapeToString(px.Shape)}; expected [B, {v.NumChannels}, {v.ImageSize}, {v.ImageSize}].");
        CheckIds(batch.InputIds);
        if (px.Shape[0] != batch.InputIds.Batch)
            throw new ArgumentException($"pixel_values holds {px.Shape[0]} images but input_ids {batch.InputIds.Batch} texts; a batch pairs image i with text i.");
        return new DeviceBatch(HostTensors.ToTorch(px, Precision.ParameterType, Device), HostTensors.ToTorch(batch.InputIds, Device));
    }

    private void CheckIds(TokenIds ids)
    {
        var t = Config.Text;
        if (ids.Length < 1 || ids.Length > t.MaxPositionEmbeddings)
            throw new ArgumentException($"input_ids has {ids.Length} tokens per text; expected 1 to max_position_embeddings = {t.MaxPositionEmbeddings}.");
        for (int i = 0; i < ids.Ids.Length; i++)
            if ((uint)ids.Ids[i] >= (uint)t.VocabSize)
                throw new ArgumentException($"input_ids[{i / ids.Length}, {i % ids.Length}] = {ids.Ids[i]} is outside the vocabulary [0, {t.VocabSize}).");
    }

    /// <inheritdoc/>
    public StepResult Forward(SiglipBatch batch, LossOptions loss, bool collectOutputs)
    {
        return TorchMemory.Guard(() =>
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            using var device = ToDevice(batch);
            var pass = Run(device, loss, collectOutputs);
            return new StepResult(HostTensors.ToDouble(pass.Loss), pass.Outputs);
        }, DeviceName, $"the forward pass of {batch.Size:N0} pairs", TorchMemory.SmallerBatch(batch.Size));
    }

    /// <inheritdoc/>
    public StepResult ForwardBackward(SiglipBatch batch, LossOptions loss, bool collectOutputs)
    {
        CheckStepFits(batch.Size);
        return TorchMemory.Guard(() =>
        {
            using var scope = NewDisposeScope();
            using var device = ToDevice(batch);
            _module.zero_grad();
            var pass = Run(device, loss, collectOutputs);
            pass.Loss.backward();
            _hasGradients = true;
            return new StepResult(HostTensors.ToDouble(pass.Loss), pass.Outputs);
        }, DeviceName, $"the training step of {batch.Size:N0} pairs", TorchMemory.SmallerBatch(batch.Size));
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The pooler outputs keep their autograd graphs (held by this model) until
    /// <see cref="BackwardFromEmbeddings"/> or the next encode; the host copies are returned.
    /// </remarks>
    public EncodedBatch EncodeForTraining(SiglipBatch batch)
    {
        CheckStepFits(batch.Size);
        return TorchMemory.Guard(() =>
        {
            ReleaseEncoding();
            _hasGradients = false;
            using var scope = NewDisposeScope();
            using var device = ToDevice(batch);
            _module.zero_grad();
            var (_, visionPooled) = RunTower(LockedTowers.Image, () => _module.vision_model.call(device.PixelValues)); // [B, D]
            var (_, textPooled) = RunTower(LockedTowers.Text, () => _module.text_model.call(device.InputIds));         // [B, D]
            // The graphs live in libtorch (each node holds what it saved); only these two handles are kept.
            _encodedImage = visionPooled.DetachFromDisposeScope();
            _encodedText = textPooled.DetachFromDisposeScope();
            return new EncodedBatch(HostTensors.ToHost(_encodedImage), HostTensors.ToHost(_encodedText),
                HostTensors.ToDouble(_module.logit_scale), HostTensors.ToDouble(_module.logit_bias));
        }, DeviceName, $"the forward pass of {batch.Size:N0} pairs", TorchMemory.SmallerBatch(batch.Size));
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Autograd from the given gradients: backward of the scalar
    /// sum(image_pooler * dImage) + sum(text_pooler * dText) + t' dL/dt' + b dL/db, whose gradient
    /// w.r.t. each pooler output is exactly the given one (and w.r.t. t', b exactly the given numbers).
    /// </remarks>
    public void BackwardFromEmbeddings(HostTensor gradImageEmbeds, HostTensor gradTextEmbeds, double gradLogitScale, double gradLogitBias)
    {
        if (_encodedImage is null || _encodedText is null)
            throw new InvalidOperationException("No encoded batch to run backward from: call EncodeForTraining first (once per BackwardFromEmbeddings).");
        CheckGradient(gradImageEmbeds, _encodedImage, "image");
        CheckGradient(gradTextEmbeds, _encodedText, "text");
        using (var scope = NewDisposeScope())
        {
            var lossType = Precision.ParameterType;
            var surrogate = (_module.logit_scale.to(lossType) * gradLogitScale).sum() + (_module.logit_bias.to(lossType) * gradLogitBias).sum();
            if (_encodedImage.requires_grad)
                surrogate = surrogate + (Precision.Master(_encodedImage).to(lossType) * HostTensors.ToTorch(gradImageEmbeds, lossType, Device)).sum();
            if (_encodedText.requires_grad)
                surrogate = surrogate + (Precision.Master(_encodedText).to(lossType) * HostTensors.ToTorch(gradTextEmbeds, lossType, Device)).sum();
            if (surrogate.requires_grad) surrogate.backward();
        }
        ReleaseEncoding();
        _hasGradients = true;
    }

    private Tensor? _encodedImage, _encodedText;   // pooler outputs [B, D] with their graphs, between encode and backward

    private void ReleaseEncoding()
    {
        _encodedImage?.Dispose();
        _encodedText?.Dispose();
        _encodedImage = _encodedText = null;
    }

    private static void CheckGradient(HostTensor gradient, Tensor embeddings, string tower)
    {
        ArgumentNullException.ThrowIfNull(gradient);
        if (!gradient.Shape.Select(x => (long)x).SequenceEqual(embeddings.shape))
            throw new ArgumentException($"The gradient of the {tower} embeddings is {HostTensor.ShapeToString(gradient.Shape)} but the encoded batch's {tower} embeddings are [{string.Join(", ", embeddings.shape)}].");
        for (int i = 0; i < gradient.Size; i++)
            if (!double.IsFinite(gradient.Data[i]))
                throw new ArgumentException($"The gradient of the {tower} embeddings has {gradient.Data[i]} at flat index {i}; gradients must be finite.");
    }

    /// <summary>
    /// One training step on a device batch with no host sync (forward, backward, clip, AdamW): what
    /// the throughput command times. Returns the loss as a device scalar (the caller disposes it).
    /// </summary>
    public Tensor TrainStepWithoutSync(DeviceBatch batch, LossOptions loss, AdamWSettings settings, double learningRate)
    {
        CheckStepFits(batch.PixelValues.shape[0]);
        return TorchMemory.Guard(() =>
        {
            using var scope = NewDisposeScope();
            _module.zero_grad();
            var pass = Run(batch, loss, collectOutputs: false);
            pass.Loss.backward();
            _hasGradients = true;
            _optimizer.StepWithoutSync(settings, learningRate);
            return pass.Loss.detach().MoveToOuterDisposeScope();
        }, DeviceName, $"the training step of {batch.PixelValues.shape[0]:N0} pairs", TorchMemory.SmallerBatch(batch.PixelValues.shape[0]));
    }

    private sealed record Pass(Tensor Loss, IReadOnlyDictionary<string, HostTensor> Outputs);

    private Pass Run(DeviceBatch batch, LossOptions loss, bool collectOutputs)
    {
        var (visionLast, visionPooled) = RunTower(LockedTowers.Image, () => _module.vision_model.call(batch.PixelValues)); // [B, N, H], [B, D]
        var (textLast, textPooled) = RunTower(LockedTowers.Text, () => _module.text_model.call(batch.InputIds));           // [B, L, H], [B, D]
        var lossValue = TorchLoss.Compute(visionPooled, textPooled, _module.logit_scale, _module.logit_bias, loss, Precision.ParameterType);
        var outputs = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        if (collectOutputs)
        {
            using var noGrad = no_grad();
            var imageEmbeds = TorchLoss.Normalize(Precision.Master(visionPooled), loss.NormEpsilon);  // [B, D]
            var textEmbeds = TorchLoss.Normalize(Precision.Master(textPooled), loss.NormEpsilon);     // [B, D]
            var logitsPerText = TorchLoss.LogitsPerImage(textEmbeds, imageEmbeds, _module.logit_scale, _module.logit_bias); // [B_txt, B_img]
            outputs[OutputNames.ImageEmbeds] = HostTensors.ToHost(imageEmbeds);
            outputs[OutputNames.TextEmbeds] = HostTensors.ToHost(textEmbeds);
            outputs[OutputNames.LogitsPerText] = HostTensors.ToHost(logitsPerText);
            outputs[OutputNames.LogitsPerImage] = HostTensors.ToHost(logitsPerText.t());
            outputs[OutputNames.Loss] = HostTensors.ToHost(lossValue.reshape(1));
            outputs[OutputNames.VisionLastHiddenState] = HostTensors.ToHost(visionLast);
            outputs[OutputNames.VisionPoolerOutput] = HostTensors.ToHost(visionPooled);
            outputs[OutputNames.TextLastHiddenState] = HostTensors.ToHost(textLast);
            outputs[OutputNames.TextPoolerOutput] = HostTensors.ToHost(textPooled);
        }
        return new Pass(lossValue, outputs);
    }

    /// <summary>A locked tower runs without building a graph: backward stops at its output.</summary>
    private (Tensor, Tensor) RunTower(LockedTowers tower, Func<(Tensor, Tensor)> forward)
    {
        if (!Locked.HasFlag(tower)) return forward();
        using var noGrad = no_grad();
        return forward();
    }

    /// <inheritdoc/>
    public NamedTensors Gradients()
    {
        if (!_hasGradients) throw new InvalidOperationException("No gradients yet: call ForwardBackward first.");
        var grads = new NamedTensors();
        foreach (var spec in _layout)
        {
            if (!ReferenceAdamW.IsTrainable(spec, Locked)) continue;
            var p = _parameters[spec.Name];
            grads.Add(spec.Name, p.grad is { } g ? HostTensors.ToHost(g) : HostTensor.Zeros(spec.Shape.ToArray()));
        }
        return grads;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Stages through host memory: the tower gradients are copied into one double array (in layout
    /// order), summed over the ranks, and copied back into each parameter's .grad (in its dtype). A
    /// tower parameter with no .grad (e.g. unused in the graph) takes part with zeros.
    /// </remarks>
    public void AllReduceGradients(SigLip.Reference.Distributed.ICommunicator communicator)
    {
        ArgumentNullException.ThrowIfNull(communicator);
        if (!_hasGradients) throw new InvalidOperationException("No gradients to all-reduce: call BackwardFromEmbeddings first.");
        var specs = _layout.Where(s => ReferenceAdamW.IsTrainable(s, Locked) && s.Name is not ParameterLayout.LogitScale and not ParameterLayout.LogitBias).ToList();
        long total = specs.Sum(s => (long)_parameters[s.Name].numel());
        if (total > Array.MaxLength) throw new InvalidOperationException($"The tower gradients hold {total} values, more than one array can.");
        var flat = new double[total];
        long offset = 0;
        foreach (var spec in specs)
        {
            var p = _parameters[spec.Name];
            int size = (int)p.numel();
            if (p.grad is { } g)
            {
                using var host = g.detach().to(ScalarType.Float64, CPU).contiguous();
                host.data<double>().CopyTo(flat, (int)offset);
            }
            offset += size;
        }
        communicator.AllReduceSum(flat, flat.Length);
        offset = 0;
        using var noGrad = no_grad();
        foreach (var spec in specs)
        {
            var p = _parameters[spec.Name];
            int size = (int)p.numel();
            using var summed = tensor(flat.AsSpan((int)offset, size).ToArray(), p.shape, ScalarType.Float64);
            using var onDevice = summed.to(p.dtype, p.device);
            if (p.grad is { } g) g.copy_(onDevice);
            else p.grad = onDevice.clone();
            offset += size;
        }
    }

    /// <inheritdoc/>
    public double OptimizerStep(AdamWSettings settings, double learningRate)
    {
        if (!_hasGradients) throw new InvalidOperationException("No gradients yet: call ForwardBackward before OptimizerStep.");
        return _optimizer.Step(settings, learningRate);
    }

    /// <inheritdoc/>
    public NamedTensors GetParameters()
    {
        var result = new NamedTensors();
        foreach (var spec in _layout) result.Add(spec.Name, HostTensors.ToHost(_parameters[spec.Name]));
        return result;
    }

    /// <inheritdoc/>
    public void SetParameters(IReadOnlyDictionary<string, HostTensor> parameters)
    {
        // Check everything before changing anything.
        var specs = _layout.ToDictionary(s => s.Name, StringComparer.Ordinal);
        foreach (var (name, value) in parameters)
        {
            if (!specs.TryGetValue(name, out var spec))
                throw new ArgumentException($"Parameters: unexpected tensor '{name}'; it is not a parameter of this config (first names: {string.Join(", ", _layout.Take(3).Select(s => s.Name))}, ...).");
            if (!value.Shape.SequenceEqual(spec.Shape))
                throw new ArgumentException($"Parameters: '{name}' has shape {HostTensor.ShapeToString(value.Shape)}, expected {HostTensor.ShapeToString(spec.Shape)}.");
        }
        using var noGrad = no_grad();
        foreach (var (name, value) in parameters)
        {
            var p = _parameters[name];
            using var source = HostTensors.ToTorch(value, p.dtype, p.device);
            p.copy_(source);
        }
    }

    /// <inheritdoc/>
    public NamedTensors GetOptimizerState() => _optimizer.GetState();

    /// <inheritdoc/>
    public void SetOptimizerState(IReadOnlyDictionary<string, HostTensor> state) => _optimizer.SetState(state);

    /// <inheritdoc/>
    public HostTensor EmbedImages(HostTensor pixelValues)
    {
        return TorchMemory.Guard(() =>
        {
            var v = Config.Vision;
            if (pixelValues.Rank != 4 || pixelValues.Shape[1] != v.NumChannels || pixelValues.Shape[2] != v.ImageSize || pixelValues.Shape[3] != v.ImageSize)
                throw new ArgumentException($"pixel_values has shape {HostTensor.ShapeToString(pixelValues.Shape)}; expected [B, {v.NumChannels}, {v.ImageSize}, {v.ImageSize}].");
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var pixels = HostTensors.ToTorch(pixelValues, Precision.ParameterType, Device);
            var (_, pooled) = _module.vision_model.call(pixels);
            return HostTensors.ToHost(TorchLoss.Normalize(Precision.Master(pooled), 0.0));
        }, DeviceName, $"embedding {pixelValues.Shape[0]:N0} images", TorchMemory.SmallerBatch(pixelValues.Shape[0]));
    }

    /// <inheritdoc/>
    public HostTensor EmbedTexts(TokenIds inputIds)
    {
        return TorchMemory.Guard(() =>
        {
            CheckIds(inputIds);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var ids = HostTensors.ToTorch(inputIds, Device);
            var (_, pooled) = _module.text_model.call(ids);
            return HostTensors.ToHost(TorchLoss.Normalize(Precision.Master(pooled), 0.0));
        }, DeviceName, $"embedding {inputIds.Batch:N0} texts", TorchMemory.SmallerBatch(inputIds.Batch));
    }

    /// <summary>Frees the module's and the optimizer's device tensors.</summary>
    public void Dispose()
    {
        ReleaseEncoding();
        _optimizer.Dispose();
        _module.Dispose();
    }
}
