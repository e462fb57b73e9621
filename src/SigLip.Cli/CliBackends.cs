using SigLip.Backends.Managed;
using SigLip.Backends.TorchSharp;
using SigLip.Reference.Backends;

namespace SigLip.Cli;

/// <summary>
/// The backends the `siglip` command knows, by name: the float64 reference (the specification),
/// the fast managed CPU kernels ("managed") and TorchSharp's libtorch on the CPU ("torch") and on CUDA ("cuda"). The core never references a backend assembly;
/// the application registers them here.
/// </summary>
public static class CliBackends
{
    public static BackendRegistry Registry()
    {
        var registry = new BackendRegistry();
        registry.Register(new ReferenceBackendProvider());
        registry.Register(new ManagedBackendProvider());
        foreach (var provider in TorchBackends.Providers()) registry.Register(provider);
        return registry;
    }
}
