using TorchSharp;
using static TorchSharp.torch;

namespace SigLip.Backends.TorchSharp.Modules;

/// <summary>Copies host tensors into a module's parameters by their Hugging Face names.</summary>
public static class ModuleParameters
{
    /// <summary>
    /// Copies <c>parameters[prefix + name]</c> into every parameter <c>name</c> of <paramref name="module"/>
    /// (e.g. prefix "vision_model.encoder.layers.0." for a <see cref="SiglipEncoderLayer"/>), in the
    /// parameter's own dtype and device. Every parameter must be found with its shape; nothing is
    /// changed unless all are.
    /// </summary>
    public static void Load(nn.Module module, IReadOnlyDictionary<string, HostTensor> parameters, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(parameters);
        var targets = module.named_parameters().ToList();
        foreach (var (name, p) in targets)
        {
            if (!parameters.TryGetValue(prefix + name, out var value))
                throw new ArgumentException($"Parameters: missing '{prefix}{name}'.");
            if (!value.Shape.Select(d => (long)d).SequenceEqual(p.shape))
                throw new ArgumentException($"Parameters: '{prefix}{name}' has shape {HostTensor.ShapeToString(value.Shape)}, the module's is [{string.Join(", ", p.shape)}].");
        }
        using var noGrad = no_grad();
        foreach (var (name, p) in targets)
        {
            using var source = HostTensors.ToTorch(parameters[prefix + name], p.dtype, p.device);
            p.copy_(source);
        }
    }
}
