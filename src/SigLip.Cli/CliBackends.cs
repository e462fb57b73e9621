using SigLip.Backends.TorchSharp;
using SigLip.Reference.Backends;

namespace SigLip.Cli;

/// <summary>
/// The backends the `siglip` command knows, by name. The core never references a backend assembly;
/// the application registers them here.
/// </summary>
public static class CliBackends
{
    public static BackendRegistry Registry()
    {
        var registry = new BackendRegistry();
        foreach (var provider in TorchBackends.Providers()) registry.Register(provider);
        return registry;
    }
}
