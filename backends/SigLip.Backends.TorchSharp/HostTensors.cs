using static TorchSharp.torch;

namespace SigLip.Backends.TorchSharp;

/// <summary>Copies between the contract's host float64 tensors and libtorch tensors.</summary>
public static class HostTensors
{
    /// <summary>A libtorch tensor of <paramref name="dtype"/> on <paramref name="device"/> holding <paramref name="host"/>'s values.</summary>
    public static Tensor ToTorch(HostTensor host, ScalarType dtype, Device device)
    {
        using var cpu = tensor(host.Data, host.Shape.Select(d => (long)d).ToArray(), ScalarType.Float64);
        return cpu.to(dtype, device);
    }

    /// <summary>Token ids [B, L] as int64.</summary>
    public static Tensor ToTorch(TokenIds ids, Device device)
    {
        using var cpu = tensor(ids.Ids.Select(i => (long)i).ToArray(), [ids.Batch, ids.Length], ScalarType.Int64);
        return cpu.to(device);
    }

    /// <summary>A host float64 copy of <paramref name="t"/> (any float dtype, any device).</summary>
    public static HostTensor ToHost(Tensor t)
    {
        using var cpu = t.detach().to(ScalarType.Float64, CPU).contiguous();
        var data = cpu.data<double>().ToArray();
        return new HostTensor(t.shape.Select(d => checked((int)d)).ToArray(), data);
    }

    /// <summary>A one-element libtorch tensor's value as a float64.</summary>
    public static double ToDouble(Tensor scalar)
    {
        using var cpu = scalar.detach().to(ScalarType.Float64, CPU);
        return cpu.item<double>();
    }
}
