using System.Runtime.InteropServices;
using SigLip.Reference.Models;

namespace SigLip.Backends.TorchSharp;

/// <summary>
/// libtorch's allocation failures as the project's own error (issue 15). libtorch reports them through TorchSharp as an
/// <see cref="ExternalException"/> whose message is libtorch's text, several lines with a C++ backtrace
/// ("DefaultCPUAllocator: can't allocate memory: you tried to allocate N bytes", "CUDA out of memory. Tried to allocate ...");
/// this turns them into a one-line <see cref="ModelSizeException"/> naming what was being allocated, the device, and what to change.
/// </summary>
internal static class TorchMemory
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

    /// <summary>What a batch of <paramref name="pairs"/> needs changed.</summary>
    public static string SmallerBatch(long pairs) =>
        $"use a batch smaller than {pairs:N0} (siglip train --batch-size, siglip throughput --batch)";

    private static string FirstLine(string message)
    {
        string line = message.Split('\n', 2)[0].Trim();
        return line.Length > 300 ? line[..300] + "..." : line;
    }
}
