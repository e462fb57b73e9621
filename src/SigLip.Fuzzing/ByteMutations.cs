using System.Buffers.Binary;
using System.Text;

namespace SigLip.Fuzzing;

/// <summary>
/// Format-blind mutations: bit flips, interesting bytes and integers, truncation, insertion, deletion,
/// duplication and splicing with another seed. Every target uses these besides its structure-aware ones.
/// </summary>
public static class ByteMutations
{
    private static readonly long[] InterestingIntegers =
    [
        0, 1, -1, 2, 7, 8, 16, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
        int.MaxValue, int.MinValue, uint.MaxValue, 1L << 32, long.MaxValue, long.MinValue, 100_000_001,
    ];

    // Text that parsers of JSON, TSV and protobuf-ish data treat specially, and byte sequences that are not UTF-8.
    private static readonly byte[][] InterestingTokens =
    [
        "\""u8.ToArray(), "{"u8.ToArray(), "}"u8.ToArray(), "["u8.ToArray(), "]"u8.ToArray(), ","u8.ToArray(), ":"u8.ToArray(),
        "\\"u8.ToArray(), "\\u"u8.ToArray(), "\\ud800"u8.ToArray(), "\\udc00"u8.ToArray(), "\t"u8.ToArray(), "\n"u8.ToArray(), "\r"u8.ToArray(),
        "\0"u8.ToArray(), "-1"u8.ToArray(), "0"u8.ToArray(), "1e999"u8.ToArray(), "-1e999"u8.ToArray(), "NaN"u8.ToArray(),
        "99999999999999999999"u8.ToArray(), "null"u8.ToArray(), "true"u8.ToArray(), "../"u8.ToArray(), "/"u8.ToArray(),
        [0xFF], [0xFE], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x96], [0xEF, 0xBB, 0xBF],
    ];

    /// <summary>One random byte-level change of <paramref name="input"/> (a new array); <paramref name="donors"/> are spliced from.</summary>
    public static byte[] Mutate(byte[] input, FuzzRandom rng, IReadOnlyList<byte[]> donors)
    {
        if (input.Length == 0) return rng.OneIn(2) ? [] : RandomBytes(rng, rng.Next(1, 16));
        var b = (byte[])input.Clone();
        switch (rng.Next(11))
        {
            case 0: // flip one bit
                b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                return b;
            case 1: // a random byte
                b[rng.Next(b.Length)] = rng.NextByte();
                return b;
            case 2: // an interesting integer, little- or big-endian, 1 to 8 bytes
                return OverwriteInteger(b, rng.Next(b.Length), rng.Pick(InterestingIntegers), rng.Pick<int>([1, 2, 4, 8]), bigEndian: rng.OneIn(2));
            case 3: // truncate
                return b[..rng.Next(b.Length)];
            case 4: // delete a range
            {
                int start = rng.Next(b.Length), length = Math.Min(b.Length - start, 1 + rng.Next(Math.Min(64, b.Length)));
                return [.. b[..start], .. b[(start + length)..]];
            }
            case 5: // insert random bytes
            {
                int at = rng.Next(b.Length + 1);
                return [.. b[..at], .. RandomBytes(rng, rng.Next(1, 32)), .. b[at..]];
            }
            case 6: // insert an interesting token
            {
                int at = rng.Next(b.Length + 1);
                return [.. b[..at], .. rng.Pick(InterestingTokens), .. b[at..]];
            }
            case 7: // duplicate a range
            {
                int start = rng.Next(b.Length), length = Math.Min(b.Length - start, 1 + rng.Next(Math.Min(256, b.Length)));
                int at = rng.Next(b.Length + 1);
                return [.. b[..at], .. b[start..(start + length)], .. b[at..]];
            }
            case 8: // splice: the start of this input and the end of another seed
            {
                var donor = donors.Count > 0 ? rng.Pick(donors) : b;
                if (donor.Length == 0) return b[..rng.Next(b.Length)];
                return [.. b[..rng.Next(b.Length)], .. donor[rng.Next(donor.Length)..]];
            }
            case 9: // overwrite a run of bytes with random ones
            {
                int start = rng.Next(b.Length), length = Math.Min(b.Length - start, 1 + rng.Next(16));
                for (int i = 0; i < length; i++) b[start + i] = rng.NextByte();
                return b;
            }
            default: // swap two ranges' worth of bytes (reordering)
            {
                int i = rng.Next(b.Length), j = rng.Next(b.Length);
                (b[i], b[j]) = (b[j], b[i]);
                return b;
            }
        }
    }

    public static byte[] RandomBytes(FuzzRandom rng, int count)
    {
        var b = new byte[count];
        for (int i = 0; i < count; i++) b[i] = rng.NextByte();
        return b;
    }

    /// <summary>Writes <paramref name="value"/>'s low <paramref name="width"/> bytes at <paramref name="offset"/> (clipped at the end).</summary>
    public static byte[] OverwriteInteger(byte[] b, int offset, long value, int width, bool bigEndian)
    {
        Span<byte> v = stackalloc byte[8];
        if (bigEndian) BinaryPrimitives.WriteInt64BigEndian(v, value << (8 * (8 - width)));
        else BinaryPrimitives.WriteInt64LittleEndian(v, value);
        for (int i = 0; i < width && offset + i < b.Length; i++) b[offset + i] = v[i];
        return b;
    }

    /// <summary>A short hex dump of the first bytes, for failure reports.</summary>
    public static string HexPrefix(byte[] bytes, int count = 64) =>
        Convert.ToHexString(bytes, 0, Math.Min(count, bytes.Length)).ToLowerInvariant() + (bytes.Length > count ? $"... ({bytes.Length} bytes)" : $" ({bytes.Length} bytes)");

    /// <summary>The first characters as text with control characters escaped, for failure reports of text formats.</summary>
    public static string TextPrefix(byte[] bytes, int count = 160)
    {
        var s = Encoding.UTF8.GetString(bytes, 0, Math.Min(bytes.Length, count * 2));
        var sb = new StringBuilder();
        foreach (char c in s.Take(count)) sb.Append(c < 0x20 || c == 0x7F || char.IsSurrogate(c) ? $"\\x{(int)c:x2}" : c.ToString());
        return sb.ToString();
    }
}
