namespace SigLip.Reference.Backends;

/// <summary>
/// The reference backend: the managed float64 implementation (<see cref="Models.SiglipModel"/>,
/// <see cref="Loss.PairwiseLoss"/>, <see cref="Training.AdamW"/>) behind the backend contract. It IS the
/// specification the other backends are measured against; it is always available.
/// </summary>
public sealed class ReferenceBackendProvider : IBackendProvider
{
    /// <summary>"reference".</summary>
    public const string BackendName = "reference";

    /// <inheritdoc/>
    public string Name => BackendName;
    /// <inheritdoc/>
    public string Description => "managed C# reference implementation, float64 on the CPU (the specification)";
    /// <inheritdoc/>
    public BackendAvailability Probe() => new(true, "always available (pure managed code)");

    /// <summary>Starts the reference backend; any dtype other than float64 throws <see cref="BackendUnavailableException"/>.</summary>
    public IBackend Start(BackendOptions options)
    {
        if (options.DType is { } dtype && dtype != DType.Float64)
            throw new BackendUnavailableException($"The reference backend computes in float64 only; --dtype {dtype.Name()} was asked for. Use --dtype float64 (or leave it out), or another backend.");
        return new ReferenceBackend();
    }
}
