using System.Runtime.InteropServices;
using System.Text;

namespace SigLip.Backends.TorchSharp;

/// <summary>
/// GPU 0's name and memory in use, from NVML (libnvidia-ml.so.1, installed with the NVIDIA driver).
/// TorchSharp exposes no CUDA memory statistics; NVML's "used" counts the whole device (the caching
/// allocator's reserve and the CUDA context too), so it is an upper bound on what tensors occupy.
/// Every call returns null where NVML is absent (no GPU, no driver).
/// </summary>
public static class GpuInfo
{
    private const string Nvml = "libnvidia-ml.so.1";

    [StructLayout(LayoutKind.Sequential)]
    private struct NvmlMemory { public ulong Total; public ulong Free; public ulong Used; }

    [DllImport(Nvml, EntryPoint = "nvmlInit_v2")] private static extern int NvmlInit();
    [DllImport(Nvml, EntryPoint = "nvmlDeviceGetHandleByIndex_v2")] private static extern int NvmlDeviceByIndex(uint index, out IntPtr device);
    [DllImport(Nvml, EntryPoint = "nvmlDeviceGetName")] private static extern int NvmlDeviceName(IntPtr device, byte[] name, uint length);
    [DllImport(Nvml, EntryPoint = "nvmlDeviceGetMemoryInfo")] private static extern int NvmlDeviceMemory(IntPtr device, out NvmlMemory memory);

    private static readonly Lazy<IntPtr?> Device0 = new(() =>
    {
        try
        {
            if (NvmlInit() != 0) return null;
            return NvmlDeviceByIndex(0, out var device) == 0 ? device : null;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return null;
        }
    });

    /// <summary>GPU 0's name from the NVIDIA driver (NVML), or null when there is no driver or GPU.</summary>
    public static string? Name()
    {
        if (Device0.Value is not { } device) return null;
        var buffer = new byte[96];
        return NvmlDeviceName(device, buffer, (uint)buffer.Length) == 0 ? Encoding.ASCII.GetString(buffer).TrimEnd('\0') : null;
    }

    /// <summary>Bytes in use on GPU 0 (whole device), or null.</summary>
    public static long? UsedBytes() =>
        Device0.Value is { } device && NvmlDeviceMemory(device, out var m) == 0 ? (long)m.Used : null;

    /// <summary>
    /// Bytes free on GPU <paramref name="index"/> (NVML's numbering, which is CUDA's unless CUDA_VISIBLE_DEVICES reorders
    /// the devices), or null where NVML is absent or has no such GPU: what a batch is checked against before allocating.
    /// </summary>
    public static long? FreeBytes(int index = 0)
    {
        if (index < 0 || Device0.Value is null) return null; // Device0 is there once NVML has initialised
        return NvmlDeviceByIndex((uint)index, out var device) == 0 && NvmlDeviceMemory(device, out var m) == 0 ? (long)m.Free : null;
    }

    /// <summary>Total bytes of GPU 0, or null.</summary>
    public static long? TotalBytes() =>
        Device0.Value is { } device && NvmlDeviceMemory(device, out var m) == 0 ? (long)m.Total : null;
}
