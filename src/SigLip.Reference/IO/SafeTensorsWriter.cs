using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace SigLip.Reference.IO;

/// <summary>One tensor to write: float64 values stored as a float dtype, or integers stored as I64/I32.</summary>
public sealed class SafeTensorEntry
{
    private SafeTensorEntry(string name, SafeTensorDType dtype, IReadOnlyList<int> shape, double[]? floats, long[]? integers)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
        DType = dtype;
        Shape = shape.ToArray();
        Floats = floats;
        Integers = integers;
    }

    /// <summary>The tensor's name in the file.</summary>
    public string Name { get; }
    /// <summary>The element type it is stored as.</summary>
    public SafeTensorDType DType { get; }
    /// <summary>The tensor's shape.</summary>
    public IReadOnlyList<int> Shape { get; }
    internal double[]? Floats { get; }
    internal long[]? Integers { get; }
    internal long ElementCount => Floats?.LongLength ?? Integers!.LongLength;

    /// <summary>A float64 tensor, stored as <paramref name="dtype"/> (rounded to nearest, ties to even).</summary>
    public static SafeTensorEntry Float(string name, Tensor tensor, SafeTensorDType dtype = SafeTensorDType.F64)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!dtype.IsFloat()) throw new ArgumentException($"Tensor '{name}': {dtype} is not a floating-point dtype; use SafeTensorEntry.Int64 for integers.");
        return new(name, dtype, tensor.Shape, tensor.Data, null);
    }

    /// <summary>Integers stored as I64.</summary>
    public static SafeTensorEntry Int64(string name, IReadOnlyList<int> shape, long[] values) =>
        new(name, SafeTensorDType.I64, CheckShape(name, shape, values.LongLength), null, values);

    /// <summary>Integers stored as I32 (each must fit in 32 bits).</summary>
    public static SafeTensorEntry Int32(string name, IReadOnlyList<int> shape, long[] values)
    {
        for (int i = 0; i < values.Length; i++)
            if (values[i] < int.MinValue || values[i] > int.MaxValue)
                throw new ArgumentException($"Tensor '{name}': element {i} is {values[i]}, which does not fit I32; store it as I64.");
        return new(name, SafeTensorDType.I32, CheckShape(name, shape, values.LongLength), null, values);
    }

    /// <summary>Token ids [batch, length] stored as I64 (as HF stores input_ids).</summary>
    public static SafeTensorEntry TokenIds(string name, TokenIds ids) =>
        Int64(name, [ids.Batch, ids.Length], ids.Ids.Select(i => (long)i).ToArray());

    private static IReadOnlyList<int> CheckShape(string name, IReadOnlyList<int> shape, long count)
    {
        long size = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"Tensor '{name}': shape {Tensor.ShapeToString(shape)} has a negative dimension.");
            size *= d;
        }
        if (size != count) throw new ArgumentException($"Tensor '{name}': shape {Tensor.ShapeToString(shape)} holds {size} elements but {count} values were given.");
        return shape;
    }
}

/// <summary>
/// Writes .safetensors files in the layout of the reference (Rust) implementation, so that the
/// same tensors give the same bytes: tensors ordered by dtype (widest first: I64, F64, F32, I32,
/// BF16, F16) and then by name (ordinal), header entries in that same order, "__metadata__" first
/// (its keys in the order given), compact JSON, the header padded with spaces to a multiple of 8.
/// </summary>
public static class SafeTensorsWriter
{
    private const int ChunkElements = 1 << 16;

    /// <summary>Writes the file atomically (temporary file in the same folder, then rename).</summary>
    public static void Write(string path, IEnumerable<SafeTensorEntry> entries, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ordered = Order(entries);
        AtomicFile.Write(path, stream => WriteTo(stream, ordered, metadata));
    }

    /// <summary>Writes the file's bytes to a stream (not atomic; for tests and in-memory use).</summary>
    public static void WriteTo(Stream stream, IEnumerable<SafeTensorEntry> entries, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ordered = Order(entries);
        var header = BuildHeader(ordered, metadata);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        stream.Write(header);
        foreach (var e in ordered) WriteData(stream, e);
    }

    private static List<SafeTensorEntry> Order(IEnumerable<SafeTensorEntry> entries)
    {
        var list = entries.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in list)
        {
            if (e.Name == "__metadata__") throw new ArgumentException("A tensor may not be called '__metadata__' (the header reserves that key).");
            if (!names.Add(e.Name)) throw new ArgumentException($"Two tensors are named '{e.Name}'; names must be unique.");
        }
        return list.OrderBy(e => e.DType.WriteOrderRank()).ThenBy(e => e.Name, StringComparer.Ordinal).ToList();
    }

    private static byte[] BuildHeader(List<SafeTensorEntry> ordered, IReadOnlyDictionary<string, string>? metadata)
    {
        var json = new StringBuilder();
        json.Append('{');
        bool first = true;
        if (metadata is { Count: > 0 })
        {
            json.Append("\"__metadata__\":{");
            bool firstKey = true;
            foreach (var (k, v) in metadata)
            {
                if (!firstKey) json.Append(',');
                AppendString(json, k);
                json.Append(':');
                AppendString(json, v);
                firstKey = false;
            }
            json.Append('}');
            first = false;
        }
        long offset = 0;
        foreach (var e in ordered)
        {
            if (!first) json.Append(',');
            first = false;
            long bytes = e.ElementCount * e.DType.ElementSize();
            AppendString(json, e.Name);
            json.Append(":{\"dtype\":\"").Append(e.DType.HeaderName()).Append("\",\"shape\":[");
            json.Append(string.Join(",", e.Shape.Select(d => d.ToString(CultureInfo.InvariantCulture))));
            json.Append("],\"data_offsets\":[").Append(offset.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append((offset + bytes).ToString(CultureInfo.InvariantCulture)).Append("]}");
            offset += bytes;
        }
        json.Append('}');
        var utf8 = Encoding.UTF8.GetBytes(json.ToString());
        int padded = (utf8.Length + 7) / 8 * 8;
        var header = new byte[padded];
        utf8.CopyTo(header, 0);
        header.AsSpan(utf8.Length).Fill((byte)' ');
        return header;
    }

    // JSON string with the escapes serde_json uses: \" \\ \b \f \n \r \t, other controls as \u00xx.
    private static void AppendString(StringBuilder json, string s)
    {
        json.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': json.Append("\\\""); break;
                case '\\': json.Append("\\\\"); break;
                case '\b': json.Append("\\b"); break;
                case '\f': json.Append("\\f"); break;
                case '\n': json.Append("\\n"); break;
                case '\r': json.Append("\\r"); break;
                case '\t': json.Append("\\t"); break;
                default:
                    if (c < 0x20) json.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else json.Append(c);
                    break;
            }
        }
        json.Append('"');
    }

    private static void WriteData(Stream stream, SafeTensorEntry e)
    {
        int size = e.DType.ElementSize();
        if (e.DType == SafeTensorDType.F64 && BitConverter.IsLittleEndian)
        {
            // Same layout as the source: write it as it is.
            var data = e.Floats!;
            for (int start = 0; start < data.Length; start += ChunkElements * 16)
                stream.Write(MemoryMarshal.AsBytes(data.AsSpan(start, Math.Min(ChunkElements * 16, data.Length - start))));
            return;
        }
        var buffer = new byte[ChunkElements * size];
        long n = e.ElementCount;
        for (long start = 0; start < n; start += ChunkElements)
        {
            int count = (int)Math.Min(ChunkElements, n - start);
            var bytes = buffer.AsSpan(0, count * size);
            for (int i = 0; i < count; i++)
            {
                long k = start + i;
                switch (e.DType)
                {
                    case SafeTensorDType.F64: BinaryPrimitives.WriteDoubleLittleEndian(bytes[(i * 8)..], e.Floats![k]); break;
                    case SafeTensorDType.F32: BinaryPrimitives.WriteSingleLittleEndian(bytes[(i * 4)..], (float)e.Floats![k]); break;
                    case SafeTensorDType.F16: BinaryPrimitives.WriteUInt16LittleEndian(bytes[(i * 2)..], FloatRounding.ToHalfBits(e.Floats![k])); break;
                    case SafeTensorDType.BF16: BinaryPrimitives.WriteUInt16LittleEndian(bytes[(i * 2)..], FloatRounding.ToBFloat16Bits(e.Floats![k])); break;
                    case SafeTensorDType.I64: BinaryPrimitives.WriteInt64LittleEndian(bytes[(i * 8)..], e.Integers![k]); break;
                    case SafeTensorDType.I32: BinaryPrimitives.WriteInt32LittleEndian(bytes[(i * 4)..], (int)e.Integers![k]); break;
                }
            }
            stream.Write(bytes);
        }
    }
}
