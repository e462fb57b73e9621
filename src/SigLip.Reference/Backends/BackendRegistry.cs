namespace SigLip.Reference.Backends;

/// <summary>
/// Backends by name. The core registers only the reference backend; an application (the CLI, a
/// test) adds the others, so the core never references a backend assembly.
/// </summary>
public sealed class BackendRegistry
{
    private readonly List<IBackendProvider> _providers = [];

    /// <summary>The registered providers, in registration order.</summary>
    public IReadOnlyList<IBackendProvider> Providers => _providers;

    /// <summary>Adds a provider; a second one with the same name (case-insensitive) throws. Returns this registry, for chaining.</summary>
    public BackendRegistry Register(IBackendProvider provider)
    {
        if (_providers.Any(p => string.Equals(p.Name, provider.Name, StringComparison.OrdinalIgnoreCase)))
            throw new ArgumentException($"A backend named '{provider.Name}' is already registered.");
        _providers.Add(provider);
        return this;
    }

    /// <summary>The provider called <paramref name="name"/>; an unknown name lists the known ones.</summary>
    public IBackendProvider Find(string name) =>
        _providers.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"Unknown backend '{name}'. Known backends: {string.Join(", ", _providers.Select(p => p.Name))}.");

    /// <summary>
    /// Finds and starts a backend, or throws <see cref="BackendUnavailableException"/> with the reason.
    /// No separate probe first: only <see cref="IBackendProvider.Start"/> sees the options (e.g. a
    /// --libtorch folder), and a provider's Start throws with its own reason when it cannot start.
    /// </summary>
    public IBackend Start(string name, BackendOptions? options = null) =>
        Find(name).Start(options ?? new BackendOptions());
}
