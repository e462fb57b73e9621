using System.Runtime.InteropServices;
using SigLip.Reference.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SigLip.Backends.TorchSharp;

/// <summary>
/// libtorch's allocation failures as the project's own error (issue 15). libtorch reports them through TorchSharp as an
/// <see cref="ExternalException"/> whose message is libtorch's text, several lines with a C++ backtrace
/// ("DefaultCPUAllocator: can't allocate memory: you tried to allocate N bytes", "CUDA out of memory. Tried to allocate ...");
/// this turns them into a one-line <see cref="ModelSizeException"/> naming what was being allocated, the device, and what to change.
/// </summary>
public static class TorchMemory
{
    /// <summary>Whether <paramref name="ex"/> is libtorch failing to allocate memory (CPU or CUDA).</summary>
    public static bool IsOutOfMemory(Exception ex) =>
        ex is ExternalException
        && (ex.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)
            || ex.Message.Contains("can't allocate memory", StringComparison.OrdinalIgnoreCase)
            || ex.Message.Contains("cannot allocate memory", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Runs <paramref name="action"/>; an allocation failure inside it becomes a <see cref="ModelSizeException"/>
    /// "device: libtorch could not allocate memory for WHAT (libtorch's first line); CHANGE."
    /// </summary>
    public static T Guard<T>(Func<T> action, string device, string what, string change)
    {
        try
        {
            return action();
        }
        catch (Exception ex) when (IsOutOfMemory(ex))
        {
            throw new ModelSizeException($"{device}: libtorch could not allocate memory for {what} ({FirstLine(ex.Message)}); {change}.", ex);
        }
    }

    /// <summary><see cref="Guard{T}"/> for an action with no result.</summary>
    public static void Guard(Action action, string device, string what, string change) =>
        Guard(() => { action(); return 0; }, device, what, change);

    /// <summary>
    /// The memory to check a size against before libtorch allocates it, and what it is in words: on the CPU what is
    /// available to this process; on a GPU what NVML says is free; null on a GPU without NVML (nothing to check against).
    /// Some libtorch operations (matmul among them, in TorchSharp 0.107) do not pass an allocation failure back to .NET
    /// but abort the process, so the sizes that feed them are checked first.
    /// </summary>
    public static (long Bytes, string Name)? Available(Device device)
    {
        if (device.type != DeviceType.CUDA) return (ModelSize.AvailableBytes(), "available to this process");
        return GpuInfo.FreeBytes(device.index < 0 ? 0 : device.index) is long free ? (free, $"free on GPU {Math.Max(0, (int)device.index)} (NVML)") : null;
    }

    /// <summary>What a batch of <paramref name="pairs"/> needs changed.</summary>
    public static string SmallerBatch(long pairs) =>
        $"use a batch smaller than {pairs:N0} (siglip train --batch-size, siglip throughput --batch)";

    private static string FirstLine(string message)
    {
        string line = message.Split('\n', 2)[0].Trim();
        return line.Length > 300 ? line[..300] + "..." : line;
    }
}
