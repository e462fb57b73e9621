using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace SigLip.Reference.IO;

/// <summary>One tensor's header entry: name, element type, shape and its byte range in the data area.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="DType">Its element type in the file.</param>
/// <param name="Shape">Its shape.</param>
public sealed record SafeTensorInfo(string Name, SafeTensorDType DType, IReadOnlyList<int> Shape)
{
    /// <summary>Start of the tensor's bytes, relative to the start of the data area.</summary>
    public long DataBegin { get; init; }
    /// <summary>End (exclusive) of the tensor's bytes, relative to the start of the data area.</summary>
    public long DataEnd { get; init; }
    /// <summary>The number of elements (the product of the shape).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);
}

/// <summary>
/// A .safetensors file opened for reading. Layout: an 8-byte little-endian header length N, N bytes
/// of UTF-8 JSON (name -> {dtype, shape, data_offsets}, plus an optional "__metadata__" object of
/// strings), then the data area. Opening validates the whole header; tensors are read on demand,
/// straight from the file into their destination arrays (a large file is never held in memory,
/// let alone twice).
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>Headers larger than this are rejected as hostile (the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";
    private const int ChunkElements = 1 << 16;

    private readonly SafeFileHandle _handle;
    private readonly Dictionary<string, SafeTensorInfo> _byName;
    private readonly long _dataStart;

    private SafeTensorsFile(string path, SafeFileHandle handle, IReadOnlyList<SafeTensorInfo> entries, IReadOnlyDictionary<string, string> metadata, long dataStart)
    {
        Path = path;
        _handle = handle;
        Entries = entries;
        Metadata = metadata;
        _dataStart = dataStart;
        _byName = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
    }

    /// <summary>The file's path as given to <see cref="Open"/>.</summary>
    public string Path { get; }
    /// <summary>The tensors in header order.</summary>
    public IReadOnlyList<SafeTensorInfo> Entries { get; }
    /// <summary>The "__metadata__" strings (empty when there are none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Whether the file holds a tensor called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The header entry of <paramref name="name"/>; an unknown name throws, naming the file.</summary>
    public SafeTensorInfo Info(string name) => _byName.TryGetValue(name, out var info)
        ? info
        : throw new SafeTensorsFormatException(Path, name, $"no such tensor; the file holds {Entries.Count} tensors ({Preview(Entries.Select(e => e.Name))}).");

    /// <summary>Opens and validates a file; throws <see cref="SafeTensorsFormatException"/> naming the problem.</summary>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such .safetensors file.", path);
        InputFile.CheckReadable(path, "a .safetensors file"); // a FIFO would block the open, a device never end
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            long fileLength = RandomAccess.GetLength(handle);
            if (fileLength < 8)
                throw new SafeTensorsFormatException(path, null, $"file is {fileLength} bytes, too short to hold the 8-byte header length; the file is truncated or not a .safetensors file.");
            var lengthBytes = new byte[8];
            ReadExactly(handle, lengthBytes, 0, path, null);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            if (headerLength > (ulong)(fileLength - 8))
                throw new SafeTensorsFormatException(path, null, $"header length {headerLength} bytes is larger than the {fileLength - 8} bytes that follow it; the file is truncated or not a .safetensors file.");
            if (headerLength > MaxHeaderBytes)
                throw new SafeTensorsFormatException(path, null, $"header length {headerLength} bytes exceeds the limit of {MaxHeaderBytes} bytes.");
            if (headerLength < 2)
                throw new SafeTensorsFormatException(path, null, $"header length {headerLength} bytes cannot hold a JSON object; expected at least '{{}}'.");
            var header = new byte[headerLength];
            ReadExactly(handle, header, 8, path, null);
            long dataStart = 8 + (long)headerLength;
            var (entries, metadata) = ParseHeader(path, header, fileLength - dataStart);
            return new SafeTensorsFile(path, handle, entries, metadata, dataStart);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Every floating-point tensor of a file as float64, in header order (integer tensors are skipped).</summary>
    public static NamedTensors ReadAllFloats(string path)
    {
        using var file = Open(path);
        var result = new NamedTensors();
        foreach (var e in file.Entries)
            if (e.DType.IsFloat()) result.Add(e.Name, file.ReadTensor(e.Name));
        return result;
    }

    /// <summary>A floating-point tensor (F64, F32, F16 or BF16), converted exactly to float64.</summary>
    public Tensor ReadTensor(string name)
    {
        var info = Info(name);
        if (!info.DType.IsFloat())
            throw new SafeTensorsFormatException(Path, name, $"is an integer tensor ({info.DType}); read it with ReadInt64 or ReadTokenIds, or store it as F64/F32/F16/BF16.");
        var data = new double[CheckedArrayLength(info)];
        long fileOffset = _dataStart + info.DataBegin;
        if (info.DType == SafeTensorDType.F64 && BitConverter.IsLittleEndian)
        {
            // Same layout as the destination: read straight into it.
            for (int start = 0; start < data.Length; start += ChunkElements * 16)
            {
                int count = Math.Min(ChunkElements * 16, data.Length - start);
                ReadExactly(_handle, MemoryMarshal.AsBytes(data.AsSpan(start, count)), fileOffset + (long)start * 8, Path, name);
            }
            return new Tensor(info.Shape, data);
        }
        int size = info.DType.ElementSize();
        var buffer = new byte[ChunkElements * size];
        for (int start = 0; start < data.Length; start += ChunkElements)
        {
            int count = Math.Min(ChunkElements, data.Length - start);
            var bytes = buffer.AsSpan(0, count * size);
            ReadExactly(_handle, bytes, fileOffset + (long)start * size, Path, name);
            var dest = data.AsSpan(start, count);
            switch (info.DType)
            {
                case SafeTensorDType.F64:
                    for (int i = 0; i < count; i++) dest[i] = BinaryPrimitives.ReadDoubleLittleEndian(bytes[(i * 8)..]);
                    break;
                case SafeTensorDType.F32:
                    for (int i = 0; i < count; i++) dest[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * 4)..]);
                    break;
                case SafeTensorDType.F16:
                    for (int i = 0; i < count; i++) dest[i] = FloatRounding.FromHalfBits(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(i * 2)..]));
                    break;
                case SafeTensorDType.BF16:
                    for (int i = 0; i < count; i++) dest[i] = FloatRounding.FromBFloat16Bits(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(i * 2)..]));
                    break;
            }
        }
        return new Tensor(info.Shape, data);
    }

    /// <summary>An integer tensor (I64 or I32) as int64 values, row-major.</summary>
    public long[] ReadInt64(string name)
    {
        var info = Info(name);
        if (info.DType is not (SafeTensorDType.I64 or SafeTensorDType.I32))
            throw new SafeTensorsFormatException(Path, name, $"is {info.DType}, but an integer tensor (I64 or I32) was expected.");
        var data = new long[CheckedArrayLength(info)];
        int size = info.DType.ElementSize();
        var buffer = new byte[ChunkElements * size];
        long fileOffset = _dataStart + info.DataBegin;
        for (int start = 0; start < data.Length; start += ChunkElements)
        {
            int count = Math.Min(ChunkElements, data.Length - start);
            var bytes = buffer.AsSpan(0, count * size);
            ReadExactly(_handle, bytes, fileOffset + (long)start * size, Path, name);
            for (int i = 0; i < count; i++)
                data[start + i] = size == 8
                    ? BinaryPrimitives.ReadInt64LittleEndian(bytes[(i * 8)..])
                    : BinaryPrimitives.ReadInt32LittleEndian(bytes[(i * 4)..]);
        }
        return data;
    }

    /// <summary>A 2-D integer tensor [batch, length] of token ids.</summary>
    public TokenIds ReadTokenIds(string name)
    {
        var info = Info(name);
        if (info.Shape.Count != 2)
            throw new SafeTensorsFormatException(Path, name, $"has shape {Tensor.ShapeToString(info.Shape)}, but token ids must be 2-D [batch, length].");
        var values = ReadInt64(name);
        var ids = new int[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i] < 0 || values[i] > int.MaxValue)
                throw new SafeTensorsFormatException(Path, name, $"element {Tensor.ShapeToString(Tensor.Unravel(info.Shape, i))} is {values[i]}; token ids must be non-negative 32-bit integers.");
            ids[i] = (int)values[i];
        }
        return new TokenIds(info.Shape[0], info.Shape[1], ids);
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _handle.Dispose();

    private int CheckedArrayLength(SafeTensorInfo info) => info.ElementCount <= Array.MaxLength
        ? (int)info.ElementCount
        : throw new SafeTensorsFormatException(Path, info.Name, $"has {info.ElementCount} elements, more than one .NET array can hold ({Array.MaxLength}).");

    private static void ReadExactly(SafeFileHandle handle, Span<byte> destination, long offset, string path, string? tensor)
    {
        while (destination.Length > 0)
        {
            int n = RandomAccess.Read(handle, destination, offset);
            if (n <= 0)
                throw new SafeTensorsFormatException(path, tensor, $"the file ended at byte {offset} while reading; it was truncated (or changed) after it was opened.");
            destination = destination[n..];
            offset += n;
        }
    }

    private static (IReadOnlyList<SafeTensorInfo>, IReadOnlyDictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try
        {
            // Strict UTF-8: invalid bytes are an error, not replacement characters.
            _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetCharCount(header);
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (Exception ex) when (ex is JsonException or DecoderFallbackException or ArgumentException)
        {
            throw new SafeTensorsFormatException(path, null, $"the {header.Length}-byte header is not valid UTF-8 JSON ({ex.Message}); expected a JSON object of name -> {{\"dtype\", \"shape\", \"data_offsets\"}}.", ex);
        }
        using (doc)
        {
            try
            {
                return ParseEntries(path, doc, dataLength);
            }
            catch (InvalidOperationException ex) // System.Text.Json reading a string it cannot convert: an escaped lone surrogate ("\ud800")
            {
                throw new SafeTensorsFormatException(path, null, $"the header holds a string that is not valid Unicode text ({ex.Message}); tensor names, dtypes and metadata must be text without unpaired surrogate escapes such as \\ud800.", ex);
            }
        }
    }

    private static (IReadOnlyList<SafeTensorInfo>, IReadOnlyDictionary<string, string>) ParseEntries(string path, JsonDocument doc, long dataLength)
    {
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsFormatException(path, null, $"the header is a JSON {doc.RootElement.ValueKind}, but a JSON object of name -> {{\"dtype\", \"shape\", \"data_offsets\"}} was expected.");
        var entries = new List<SafeTensorInfo>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        bool sawMetadata = false;
        foreach (var property in doc.RootElement.EnumerateObject())
        {
            if (property.Name == MetadataKey)
            {
                if (sawMetadata) throw new SafeTensorsFormatException(path, null, "the header has \"__metadata__\" twice; it may appear once.");
                sawMetadata = true;
                ParseMetadata(path, property.Value, metadata);
                continue;
            }
            if (!seen.Add(property.Name))
                throw new SafeTensorsFormatException(path, property.Name, "appears twice in the header; tensor names must be unique.");
            entries.Add(ParseEntry(path, property.Name, property.Value));
        }
        CheckOffsets(path, entries, dataLength);
        return (entries, metadata);
    }

    private static void ParseMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsFormatException(path, null, $"\"__metadata__\" is a JSON {value.ValueKind}; it must be an object of string -> string.");
        foreach (var p in value.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new SafeTensorsFormatException(path, null, $"\"__metadata__\" entry '{p.Name}' is a JSON {p.Value.ValueKind}; metadata values must be strings.");
            if (!metadata.TryAdd(p.Name, p.Value.GetString()!))
                throw new SafeTensorsFormatException(path, null, $"\"__metadata__\" has the key '{p.Name}' twice.");
        }
    }

    private static SafeTensorInfo ParseEntry(string path, string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsFormatException(path, name, $"header entry is a JSON {value.ValueKind}; expected an object {{\"dtype\", \"shape\", \"data_offsets\"}}.");
        JsonElement Field(string field) => value.TryGetProperty(field, out var f)
            ? f
            : throw new SafeTensorsFormatException(path, name, $"header entry has no \"{field}\"; every tensor needs \"dtype\", \"shape\" and \"data_offsets\".");

        var dtypeElement = Field("dtype");
        if (dtypeElement.ValueKind != JsonValueKind.String)
            throw new SafeTensorsFormatException(path, name, $"\"dtype\" is a JSON {dtypeElement.ValueKind}; expected a string such as \"F32\".");
        string dtypeName = dtypeElement.GetString()!;
        var dtype = SafeTensorDTypes.TryParse(dtypeName)
            ?? throw new SafeTensorsFormatException(path, name, $"dtype '{dtypeName}' is not supported; supported dtypes are {SafeTensorDTypes.Supported}.");

        var shapeElement = Field("shape");
        if (shapeElement.ValueKind != JsonValueKind.Array)
            throw new SafeTensorsFormatException(path, name, $"\"shape\" is a JSON {shapeElement.ValueKind}; expected an array of non-negative integers.");
        var shape = new List<int>();
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim))
                throw new SafeTensorsFormatException(path, name, $"shape {shapeElement.GetRawText()} holds '{d.GetRawText()}'; every dimension must be a non-negative integer.");
            if (dim < 0)
                throw new SafeTensorsFormatException(path, name, $"shape {shapeElement.GetRawText()} has the negative dimension {dim}; dimensions must be non-negative.");
            if (dim > int.MaxValue)
                throw new SafeTensorsFormatException(path, name, $"shape {shapeElement.GetRawText()} has the dimension {dim}, larger than {int.MaxValue}.");
            shape.Add((int)dim);
        }

        var offsetsElement = Field("data_offsets");
        if (offsetsElement.ValueKind != JsonValueKind.Array || offsetsElement.GetArrayLength() != 2)
            throw new SafeTensorsFormatException(path, name, $"\"data_offsets\" is {offsetsElement.GetRawText()}; expected [begin, end], two non-negative integers.");
        long[] offsets = new long[2];
        for (int i = 0; i < 2; i++)
        {
            var o = offsetsElement[i];
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out offsets[i]) || offsets[i] < 0)
                throw new SafeTensorsFormatException(path, name, $"\"data_offsets\" is {offsetsElement.GetRawText()}; expected [begin, end], two non-negative integers.");
        }
        if (offsets[1] < offsets[0])
            throw new SafeTensorsFormatException(path, name, $"data_offsets [{offsets[0]}, {offsets[1]}] end before they begin; expected begin <= end.");

        // dtype x shape must fill the byte range exactly.
        System.Numerics.BigInteger elements = 1;
        foreach (var d in shape) elements *= d;
        var expectedBytes = elements * dtype.ElementSize();
        long actualBytes = offsets[1] - offsets[0];
        if (expectedBytes != actualBytes)
            throw new SafeTensorsFormatException(path, name, $"shape {Tensor.ShapeToString(shape)} of {dtypeName} needs {expectedBytes} bytes, but data_offsets [{offsets[0]}, {offsets[1]}] span {actualBytes} bytes; the shape or the dtype does not match the data.");
        return new SafeTensorInfo(name, dtype, shape) { DataBegin = offsets[0], DataEnd = offsets[1] };
    }

    // The byte ranges must tile the data area: start at 0, no overlap, no gap, end at its end.
    private static void CheckOffsets(string path, List<SafeTensorInfo> entries, long dataLength)
    {
        var sorted = entries.OrderBy(e => e.DataBegin).ThenBy(e => e.DataEnd).ToList();
        long expectedBegin = 0;
        SafeTensorInfo? previous = null;
        foreach (var e in sorted)
        {
            if (e.DataEnd > dataLength)
                throw new SafeTensorsFormatException(path, e.Name, $"data_offsets [{e.DataBegin}, {e.DataEnd}] run past the end of the data area ({dataLength} bytes); the file is truncated or the offsets are wrong.");
            if (e.DataBegin < expectedBegin)
                throw new SafeTensorsFormatException(path, e.Name, $"data_offsets [{e.DataBegin}, {e.DataEnd}] overlap tensor '{previous!.Name}' [{previous.DataBegin}, {previous.DataEnd}]; each tensor must have its own bytes.");
            if (e.DataBegin > expectedBegin)
                throw new SafeTensorsFormatException(path, e.Name, previous is null
                    ? $"data_offsets [{e.DataBegin}, {e.DataEnd}] leave a gap of {e.DataBegin - expectedBegin} bytes at the start of the data area; the first tensor must begin at 0."
                    : $"data_offsets [{e.DataBegin}, {e.DataEnd}] leave a gap of {e.DataBegin - expectedBegin} bytes after tensor '{previous.Name}' (which ends at {previous.DataEnd}); tensors must be contiguous.");
            expectedBegin = e.DataEnd;
            previous = e;
        }
        if (expectedBegin != dataLength)
            throw new SafeTensorsFormatException(path, previous?.Name, expectedBegin < dataLength
                ? $"the tensors cover {expectedBegin} bytes of the {dataLength}-byte data area; {dataLength - expectedBegin} trailing bytes belong to no tensor."
                : $"the tensors need {expectedBegin} bytes but the data area holds {dataLength}.");
    }

    private static string Preview(IEnumerable<string> names)
    {
        var list = names.Take(6).ToList();
        return list.Count == 0 ? "none" : string.Join(", ", list.Take(5)) + (list.Count > 5 ? ", ..." : "");
    }
}
