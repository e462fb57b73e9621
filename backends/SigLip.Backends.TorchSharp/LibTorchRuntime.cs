using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;

namespace SigLip.Backends.TorchSharp;

/// <summary>
/// Starts libtorch once per process. libtorch comes either from the NuGet packages (CPU, or CUDA with
/// -p:SigLipTorchCuda=true) or from a folder named by SIGLIP_LIBTORCH / --libtorch, typically an
/// existing PyTorch install's torch/lib. A folder is loaded by full path BEFORE TorchSharp's static
/// initialiser runs; TorchSharp's own libLibTorchSharp.so then binds to the libraries already loaded.
/// </summary>
public static class LibTorchRuntime
{
    /// <summary>The environment variable naming a libtorch folder.</summary>
    public const string EnvironmentVariable = "SIGLIP_LIBTORCH";

    /// <summary>Loaded in this order: each one's dependencies come before it.</summary>
    public static IReadOnlyList<string> LibraryOrder { get; } =
        ["libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so"];

    private static readonly object Gate = new();
    private static string? _preloadedFrom;
    private static string? _cpuError;
    private static bool _cpuReady;
    private static string? _cudaError;
    private static bool _cudaReady;

    /// <summary>The libtorch folder to use: the option, else SIGLIP_LIBTORCH, else null (the packaged libtorch).</summary>
    public static string? ConfiguredFolder(string? option = null) =>
        !string.IsNullOrWhiteSpace(option) ? option
        : Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } env ? env
        : null;

    /// <summary>Where libtorch was loaded from by this class (null: TorchSharp found it itself).</summary>
    public static string? PreloadedFrom { get { lock (Gate) return _preloadedFrom; } }

    /// <summary>Null when TorchSharp works on the CPU here, else why not.</summary>
    public static string? CpuProblem(string? libTorchFolder = null)
    {
        lock (Gate)
        {
            if (_cpuReady || _cpuError is not null) return _cpuError;
            try
            {
                Preload(ConfiguredFolder(libTorchFolder), requireCuda: false);
                torch.InitializeDeviceType(DeviceType.CPU);
                using var probe = torch.ones(2, 2).matmul(torch.ones(2, 2));
                _cpuReady = true;
            }
            catch (Exception ex)
            {
                var folder = ConfiguredFolder(libTorchFolder);
                _cpuError = $"TorchSharp native library failed to load: {Innermost(ex)}" +
                    (folder is not null ? $" (libtorch from {EnvironmentVariable}/--libtorch = {folder})"
                    : IsLinuxX64 ? " (libtorch from the libtorch-cpu-linux-x64 package; on Debian 12 / Ubuntu 22.04 the build must have patched libLibTorchSharp.so, see docs/torchsharp.md)"
                    : $". This build carries libtorch for Linux x64 only and this machine is {RuntimeInformation.RuntimeIdentifier}: use --backend reference here, or run on Linux x64");
            }
            return _cpuError;
        }
    }

    /// <summary>Null when a CUDA device is usable here, else what was tried and what to set.</summary>
    public static string? CudaProblem(string? libTorchFolder = null)
    {
        lock (Gate)
        {
            if (_cudaReady || _cudaError is not null) return _cudaError;
            var folder = ConfiguredFolder(libTorchFolder);
            string tried = folder is null
                ? $"{EnvironmentVariable} is not set, so only TorchSharp's packaged libtorch was tried (this build: {PackagedLibTorch})"
                : $"tried {EnvironmentVariable}/--libtorch = {folder}";
            const string advice = $"set {EnvironmentVariable}=<PyTorch's torch/lib, e.g. the output of python3 -c \"import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))\"> or pass --libtorch <dir>, or build with -p:SigLipTorchCuda=true";
            try
            {
                Preload(folder, requireCuda: true);
                torch.InitializeDeviceType(DeviceType.CUDA);
                if (!torch.cuda.is_available())
                    _cudaError = $"no CUDA device: libtorch loaded but torch.cuda.is_available() is false (no GPU or driver visible); {tried}.";
                else
                    _cudaReady = true;
            }
            catch (Exception ex)
            {
                _cudaError = $"no CUDA device: {tried}: {Innermost(ex)}. To use a GPU, {advice}.";
            }
            return _cudaError;
        }
    }

    private static bool IsLinuxX64 => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    /// <summary>What the packaged libtorch of this build is.</summary>
    public static string PackagedLibTorch =>
        typeof(LibTorchRuntime).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "SigLipTorchCuda")?.Value == "true" ? "TorchSharp-cuda-linux" : "libtorch-cpu-linux-x64 (no CUDA)";

    /// <summary>Loads libtorch's libraries from <paramref name="folder"/> by full path, once.</summary>
    private static void Preload(string? folder, bool requireCuda)
    {
        if (folder is null) return;
        var full = Path.GetFullPath(folder);
        if (_preloadedFrom is not null)
        {
            if (!string.Equals(_preloadedFrom, full, StringComparison.Ordinal))
                throw new InvalidOperationException($"libtorch was already loaded from {_preloadedFrom} in this process; cannot switch to {full}.");
            return;
        }
        if (!Directory.Exists(full))
            throw new DirectoryNotFoundException($"the libtorch folder {full} does not exist");
        var missing = LibraryOrder.Where(n => !File.Exists(Path.Combine(full, n))).ToList();
        bool hasCuda = File.Exists(Path.Combine(full, "libtorch_cuda.so"));
        if (requireCuda && !hasCuda)
            throw new FileNotFoundException($"{full} holds no libtorch_cuda.so (missing: {string.Join(", ", missing)}), so it is a CPU-only libtorch");
        if (missing.Contains("libtorch_cpu.so") || missing.Contains("libc10.so"))
            throw new FileNotFoundException($"{full} is not a libtorch folder (missing: {string.Join(", ", missing)})");
        foreach (var name in LibraryOrder)
        {
            var path = Path.Combine(full, name);
            if (!File.Exists(path)) continue; // the CUDA pair is absent from a CPU-only folder
            try
            {
                NativeLibrary.Load(path);
            }
            catch (Exception ex)
            {
                throw new DllNotFoundException($"loading {path} failed: {ex.Message} (is {full} on LD_LIBRARY_PATH too, for the libraries it needs?)", ex);
            }
        }
        _preloadedFrom = full;
    }

    // TorchSharp appends "Trace from LoadNativeBackend:" even when it has no trace to show.
    private static readonly System.Text.RegularExpressions.Regex EmptyTrace = new(@"\s*Trace from LoadNativeBackend:\s*\.?\s*$");

    private static string Innermost(Exception ex)
    {
        var messages = new List<string>();
        for (var e = ex; e is not null; e = e.InnerException)
            if (e is not TypeInitializationException && e is not TargetInvocationException)
                messages.Add(EmptyTrace.Replace(e.Message, "").Trim().TrimEnd('.'));
        return messages.Count == 0 ? ex.Message : string.Join(" <- ", messages.Distinct());
    }
}
