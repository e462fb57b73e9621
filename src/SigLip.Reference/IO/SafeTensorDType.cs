namespace SigLip.Reference.IO;

/// <summary>The element types this project reads and writes in .safetensors files (little-endian).</summary>
public enum SafeTensorDType
{
    /// <summary>IEEE float64.</summary>
    F64,
    /// <summary>IEEE float32.</summary>
    F32,
    /// <summary>IEEE float16 (half).</summary>
    F16,
    /// <summary>bfloat16: float32's exponent, 7 mantissa bits.</summary>
    BF16,
    /// <summary>Signed 64-bit integer (token ids, as HF stores them).</summary>
    I64,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
}

/// <summary>Sizes, names and kinds of <see cref="SafeTensorDType"/>.</summary>
public static class SafeTensorDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int ElementSize(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F64 or SafeTensorDType.I64 => 8,
        SafeTensorDType.F32 or SafeTensorDType.I32 => 4,
        SafeTensorDType.F16 or SafeTensorDType.BF16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    /// <summary>Whether it is a floating-point type.</summary>
    public static bool IsFloat(this SafeTensorDType dtype) =>
        dtype is SafeTensorDType.F64 or SafeTensorDType.F32 or SafeTensorDType.F16 or SafeTensorDType.BF16;

    /// <summary>The name in a file's header ("F64", "BF16", ...).</summary>
    public static string HeaderName(this SafeTensorDType dtype) => dtype.ToString();

    /// <summary>The header names this project understands, for error messages.</summary>
    public static string Supported => string.Join(", ", Enum.GetNames<SafeTensorDType>());

    /// <summary>Parses a header dtype name; null when it is not one of ours.</summary>
    public static SafeTensorDType? TryParse(string name) => name switch
    {
        "F64" => SafeTensorDType.F64,
        "F32" => SafeTensorDType.F32,
        "F16" => SafeTensorDType.F16,
        "BF16" => SafeTensorDType.BF16,
        "I64" => SafeTensorDType.I64,
        "I32" => SafeTensorDType.I32,
        _ => null,
    };

    /// <summary>Parses a friendly name: "float64"/"f64"/"F64", "float32", "float16"/"half", "bfloat16"/"bf16".</summary>
    public static SafeTensorDType ParseFriendly(string name) => name.Trim().ToLowerInvariant() switch
    {
        "f64" or "float64" or "double" => SafeTensorDType.F64,
        "f32" or "float32" or "float" => SafeTensorDType.F32,
        "f16" or "float16" or "half" => SafeTensorDType.F16,
        "bf16" or "bfloat16" => SafeTensorDType.BF16,
        _ => throw new ArgumentException($"Unknown floating-point dtype '{name}'. Use one of float64, float32, float16, bfloat16."),
    };

    /// <summary>
    /// Rank used to order tensors in a written file, as the reference (Rust) implementation does:
    /// wider types first, so each tensor stays aligned to its element size.
    /// </summary>
    internal static int WriteOrderRank(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.I64 => 0,
        SafeTensorDType.F64 => 1,
        SafeTensorDType.F32 => 2,
        SafeTensorDType.I32 => 3,
        SafeTensorDType.BF16 => 4,
        SafeTensorDType.F16 => 5,
        _ => 6,
    };
}
