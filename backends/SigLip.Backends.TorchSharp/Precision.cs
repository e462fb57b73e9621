using SigLip.Reference.Backends;
using TorchSharp;
using static TorchSharp.torch;

namespace SigLip.Backends.TorchSharp;

/// <summary>
/// Which dtype parameters live in and which dtype matmuls, convolutions and attention run in.
/// float32 / float64: both the same. bfloat16 ("mixed precision", done by hand since TorchSharp has
/// no autocast): fp32 master weights and residual stream, bf16 matmuls / conv / attention / GELU,
/// fp32 LayerNorm, normalisation and loss.
/// </summary>
/// <param name="ParameterType">The dtype parameters (and the residual stream) live in.</param>
/// <param name="ComputeType">The dtype matmuls, convolutions and attention run in.</param>
/// <param name="DType">The working dtype it stands for.</param>
public sealed record Precision(ScalarType ParameterType, ScalarType ComputeType, DType DType)
{
    /// <summary>"float32", "float64" or "bfloat16".</summary>
    public string Name => DType.Name();

    /// <summary>float32 parameters and compute.</summary>
    public static Precision Float32 { get; } = new(ScalarType.Float32, ScalarType.Float32, DType.Float32);
    /// <summary>float64 parameters and compute (comparable with the reference).</summary>
    public static Precision Float64 { get; } = new(ScalarType.Float64, ScalarType.Float64, DType.Float64);
    /// <summary>float32 master weights, bfloat16 matmuls, convolutions, attention and GELU.</summary>
    public static Precision BFloat16Mixed { get; } = new(ScalarType.Float32, ScalarType.BFloat16, DType.BFloat16);

    /// <summary>The precision of a working dtype; null means float32.</summary>
    public static Precision For(DType? dtype) => dtype switch
    {
        null or DType.Float32 => Float32,
        DType.Float64 => Float64,
        DType.BFloat16 => BFloat16Mixed,
        _ => throw new ArgumentException($"Unknown dtype {dtype} for the TorchSharp backends; expected float32 (default), float64 or bfloat16 (mixed precision)."),
    };

    /// <summary>Whether compute runs in a narrower dtype than the parameters.</summary>
    public bool IsMixed => ParameterType != ComputeType;

    /// <summary>The tensor in the compute dtype (no copy when it already is).</summary>
    public Tensor Compute(Tensor t) => t.dtype == ComputeType ? t : t.to(ComputeType);

    /// <summary>The tensor in the parameter (master) dtype, for LayerNorm and the loss.</summary>
    public Tensor Master(Tensor t) => t.dtype == ParameterType ? t : t.to(ParameterType);

    /// <summary>x W^T + b in the compute dtype. x [..., in], W [out, in], b [out] -> [..., out].</summary>
    public Tensor Linear(Tensor x, Tensor weight, Tensor? bias) =>
        nn.functional.linear(Compute(x), Compute(weight), bias is null ? null : Compute(bias));

    /// <summary>LayerNorm in the master dtype over the last dimension.</summary>
    public Tensor LayerNorm(Tensor x, Tensor weight, Tensor bias, double eps) =>
        nn.functional.layer_norm(Master(x), [weight.shape[0]], weight, bias, eps);
}
