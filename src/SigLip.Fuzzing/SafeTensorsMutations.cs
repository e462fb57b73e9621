using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace SigLip.Fuzzing;

/// <summary>
/// Structure-aware mutations of a .safetensors file: its 8-byte header length, and in the JSON header a
/// tensor's data_offsets, shape or dtype (the header length is then rewritten to match, so the change
/// reaches the checks behind it), or any JSON change of <see cref="JsonMutations"/>.
/// </summary>
public static class SafeTensorsMutations
{
    private static readonly long[] Extremes = [0, 1, -1, 2, 3, 7, 8, 1023, 65536, int.MaxValue, (long)int.MaxValue + 1, uint.MaxValue, 1L << 40, long.MaxValue, long.MinValue];
    private static readonly string[] DTypes = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "f32", "", "F32 "];

    public static byte[] Mutate(byte[] file, FuzzRandom rng)
    {
        if (file.Length < 8) return ByteMutations.Mutate(file, rng, []);
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (length > (ulong)(file.Length - 8) || rng.OneIn(6))
        {
            // The header length itself.
            var b = (byte[])file.Clone();
            long value = rng.OneIn(2) ? rng.Pick(Extremes) : (long)length + rng.Next(-16, 17);
            BinaryPrimitives.WriteInt64LittleEndian(b, value);
            return b;
        }
        byte[] header = file[8..(8 + (int)length)];
        byte[] data = file[(8 + (int)length)..];
        byte[]? changed = rng.OneIn(2) ? TamperEntry(header, rng) : JsonMutations.Mutate(header, rng);
        if (changed is null) return ByteMutations.Mutate(file, rng, []);
        // Pad to a multiple of 8 with spaces, as writers do (not required by readers).
        int padded = rng.OneIn(3) ? changed.Length : (changed.Length + 7) / 8 * 8;
        var result = new byte[8 + padded + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)padded);
        changed.CopyTo(result, 8);
        for (int i = 8 + changed.Length; i < 8 + padded; i++) result[i] = (byte)' ';
        data.CopyTo(result, 8 + padded);
        return result;
    }

    private static byte[]? TamperEntry(byte[] header, FuzzRandom rng)
    {
        try
        {
            return TamperEntryCore(header, rng);
        }
        // The header is already broken (JsonNode reads lazily, so this can surface late): let the byte mutations have it.
        catch (Exception ex) when (ex is System.Text.Json.JsonException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
    }

    private static byte[]? TamperEntryCore(byte[] header, FuzzRandom rng)
    {
        var root = JsonNode.Parse(header) as JsonObject;
        if (root is null) return null;
        var tensors = root.Where(p => p.Key != "__metadata__" && p.Value is JsonObject).Select(p => (JsonObject)p.Value!).ToList();
        if (tensors.Count == 0) return null;
        var t = rng.Pick(tensors);
        switch (rng.Next(5))
        {
            case 0: // one offset
            {
                var offsets = t["data_offsets"] as JsonArray;
                if (offsets is null || offsets.Count == 0) return null;
                offsets[rng.Next(offsets.Count)] = rng.Pick(Extremes);
                break;
            }
            case 1: // both offsets shifted together (a gap or an overlap that still matches the size)
            {
                // Only offsets that are still two integers (an earlier mutation may have made one null or a string).
                if (t["data_offsets"] is not JsonArray { Count: 2 } offsets
                    || offsets[0] is not JsonValue first || !first.TryGetValue(out long begin)
                    || offsets[1] is not JsonValue second || !second.TryGetValue(out long end)) return null;
                long shift = rng.Pick<long>([-8, -4, -2, -1, 1, 2, 4, 8, long.MaxValue / 2]);
                try
                {
                    offsets[0] = checked(begin + shift);
                    offsets[1] = checked(end + shift);
                }
                catch (OverflowException) { return null; }
                break;
            }
            case 2: // one dimension
            {
                if (t["shape"] is not JsonArray shape) return null;
                if (shape.Count == 0 || rng.OneIn(4)) shape.Add(rng.Pick(Extremes));
                else shape[rng.Next(shape.Count)] = rng.Pick(Extremes);
                break;
            }
            case 3: // the shape's rank
            {
                if (t["shape"] is not JsonArray shape) return null;
                if (shape.Count > 0 && rng.OneIn(2)) shape.RemoveAt(shape.Count - 1);
                else shape.Add(1);
                break;
            }
            default:
                t["dtype"] = rng.Pick(DTypes);
                break;
        }
        return Encoding.UTF8.GetBytes(root.ToJsonString());
    }
}
