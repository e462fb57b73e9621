using System.CommandLine;
using System.CommandLine.Parsing;
using SigLip.Backends.Managed;
using SigLip.Backends.TorchSharp;
using SigLip.Reference.Backends;

namespace SigLip.Cli;

/// <summary>
/// The four options of every verb that starts a backend, declared here once so that every verb
/// has the same names, descriptions and defaults: <c>--backend</c> (default <c>managed</c>),
/// <c>--dtype</c> (default: the backend's own), <c>--libtorch</c> (default: SIGLIP_LIBTORCH or the
/// packaged libtorch) and <c>--threads</c> (default: every core). A verb creates one instance,
/// adds it to its command with <see cref="AddTo"/> and starts the backend with <see cref="Start"/>.
/// </summary>
public sealed class BackendCliOptions
{
    /// <summary>The backend a verb starts when --backend is not given.</summary>
    public const string DefaultBackend = ManagedBackendProvider.BackendName;

    /// <summary>--backend NAME: a backend <c>siglip backends</c> lists.</summary>
    public Option<string> Backend { get; } = new("--backend")
    {
        Description = "Backend to run on (see `siglip backends`): reference (the float64 specification), managed (fast CPU kernels), torch (libtorch CPU) or cuda.",
        DefaultValueFactory = _ => DefaultBackend,
    };

    /// <summary>--dtype float64|float32|bfloat16; null (not given): the backend's own.</summary>
    public Option<DType?> DType { get; } = new("--dtype")
    {
        HelpName = "float64|float32|bfloat16",
        Description = "Working dtype: float64, float32 or bfloat16 (mixed precision; torch/cuda). Default: the backend's own (reference float64; managed, torch and cuda float32).",
        CustomParser = ParseDType,
    };

    /// <summary>--libtorch DIR; null: SIGLIP_LIBTORCH or the packaged libtorch.</summary>
    public Option<string?> LibTorch { get; } = new("--libtorch")
    {
        Description = $"Folder holding libtorch (e.g. an installed PyTorch's torch/lib) for the torch/cuda backends. Default: ${LibTorchRuntime.EnvironmentVariable} or the packaged one.",
    };

    /// <summary>--threads N; null: every core. Backends without a thread setting (reference, torch, cuda) ignore it.</summary>
    public Option<int?> Threads { get; } = new("--threads")
    {
        Description = "CPU threads of the managed backend's kernels (the other backends ignore it). Default: every core.",
    };

    public BackendCliOptions()
    {
        Threads.Validators.Add(result =>
        {
            if (result.Tokens.Count == 0) return;
            if (result.GetValueOrDefault<int?>() is int n && n < 1)
                result.AddError($"--threads {n}: a backend needs at least 1 thread (leave --threads out to use every core, {Environment.ProcessorCount} here).");
        });
    }

    /// <summary>The four options, in the order help lists them.</summary>
    public IReadOnlyList<Option> All => [Backend, DType, LibTorch, Threads];

    /// <summary>Adds the four options to <paramref name="command"/>; returns this, for chaining.</summary>
    public BackendCliOptions AddTo(Command command)
    {
        foreach (var option in All) command.Options.Add(option);
        return this;
    }

    /// <summary>The backend name given (or the default).</summary>
    public string BackendName(ParseResult parse) => parse.GetValue(Backend)!;

    /// <summary>The options a backend starts with, read from <paramref name="parse"/>.</summary>
    public BackendOptions Options(ParseResult parse, int seed = 0) =>
        new(DType: parse.GetValue(DType), LibTorchPath: parse.GetValue(LibTorch), Seed: seed, Threads: parse.GetValue(Threads));

    /// <summary>Starts the backend the options name, through <see cref="CliBackends.Registry"/>.</summary>
    public IBackend Start(ParseResult parse, int seed = 0) => CliBackends.Registry().Start(BackendName(parse), Options(parse, seed));

    /// <summary>The one-line message of a --dtype value that names no dtype.</summary>
    public static string DTypeError(string value) =>
        $"--dtype '{value}' is not a dtype; expected float64, float32 or bfloat16 (or leave --dtype out for the backend's own).";

    private static DType? ParseDType(ArgumentResult result)
    {
        string value = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        try
        {
            return DTypes.Parse(value);
        }
        catch (ArgumentException)
        {
            result.AddError(DTypeError(value));
            return null;
        }
    }
}
