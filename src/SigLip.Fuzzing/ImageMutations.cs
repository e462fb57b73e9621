using System.Buffers.Binary;

namespace SigLip.Fuzzing;

/// <summary>
/// Structure-aware mutations of PNG and JPEG headers: the declared dimensions, bit depth and colour
/// type, component counts and sampling factors, and the length fields of chunks and segments. A PNG
/// chunk's CRC is recomputed half of the time, so the change reaches the decoder behind the CRC check.
/// </summary>
public static class ImageMutations
{
    private static readonly uint[] Dimensions = [0, 1, 2, 3, 7, 8, 255, 256, 4096, 16384, 65535, 65536, 10_000_000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF];
    private static readonly ushort[] JpegDimensions = [0, 1, 2, 7, 8, 9, 16, 255, 4096, 10000, 32768, 65535];

    private readonly record struct Chunk(int Offset, int Length, string Type);

    /// <summary>The chunks of a PNG (offset of each length field), as far as they can be followed.</summary>
    private static List<Chunk> PngChunks(byte[] png)
    {
        var chunks = new List<Chunk>();
        int pos = 8;
        while (pos + 12 <= png.Length)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            string type = System.Text.Encoding.ASCII.GetString(png, pos + 4, 4);
            if (length > (uint)(png.Length - pos - 12)) break;
            chunks.Add(new Chunk(pos, (int)length, type));
            pos += 12 + (int)length;
        }
        return chunks;
    }

    public static byte[] MutatePng(byte[] input, FuzzRandom rng)
    {
        var png = (byte[])input.Clone();
        var chunks = PngChunks(png);
        if (chunks.Count == 0) return png;
        var ihdr = chunks.FirstOrDefault(c => c.Type == "IHDR");
        Chunk changed;
        switch (rng.Next(7))
        {
            case 0 or 1 when ihdr.Type == "IHDR" && ihdr.Length >= 13: // width or height
                BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(ihdr.Offset + 8 + (rng.OneIn(2) ? 0 : 4)), rng.Pick(Dimensions));
                changed = ihdr;
                break;
            case 2 when ihdr.Type == "IHDR" && ihdr.Length >= 13: // bit depth, colour type, compression, filter or interlace
                png[ihdr.Offset + 8 + 8 + rng.Next(5)] = rng.Pick<byte>([0, 1, 2, 3, 4, 6, 8, 16, 255]);
                changed = ihdr;
                break;
            case 3: // a chunk's length field
            {
                changed = rng.Pick(chunks);
                uint length = rng.OneIn(2) ? rng.Pick(Dimensions) : (uint)Math.Max(0, changed.Length + rng.Next(-8, 9));
                BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(changed.Offset), length);
                return png; // the CRC no longer lines up with anything: leave it
            }
            case 4: // drop a chunk
            {
                var c = rng.Pick(chunks);
                return [.. png[..c.Offset], .. png[(c.Offset + 12 + c.Length)..]];
            }
            case 5: // duplicate a chunk
            {
                var c = rng.Pick(chunks);
                var copy = png[c.Offset..(c.Offset + 12 + c.Length)];
                var at = rng.Pick(chunks).Offset;
                return [.. png[..at], .. copy, .. png[at..]];
            }
            default: // a byte inside a chunk's data (IDAT's compressed stream, PLTE, ...)
            {
                changed = rng.Pick(chunks);
                if (changed.Length == 0) return png;
                png[changed.Offset + 8 + rng.Next(changed.Length)] = rng.NextByte();
                break;
            }
        }
        if (rng.OneIn(2)) FixCrc(png, changed);
        return png;
    }

    private static void FixCrc(byte[] png, Chunk c)
    {
        uint crc = Crc32(png.AsSpan(c.Offset + 4, 4 + c.Length));
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(c.Offset + 8 + c.Length), crc);
    }

    private static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    /// <summary>The CRC-32 of PNG chunks (ISO 3309, as zlib's crc32).</summary>
    public static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    private readonly record struct Segment(int Offset, byte Marker, int Length);

    /// <summary>The marker segments of a JPEG up to its first SOS (offset of each 0xFF marker).</summary>
    private static List<Segment> JpegSegments(byte[] jpg)
    {
        var segments = new List<Segment>();
        int pos = 2; // after SOI
        while (pos + 4 <= jpg.Length && jpg[pos] == 0xFF)
        {
            byte marker = jpg[pos + 1];
            int length = BinaryPrimitives.ReadUInt16BigEndian(jpg.AsSpan(pos + 2));
            if (length < 2 || pos + 2 + length > jpg.Length) break;
            segments.Add(new Segment(pos, marker, length));
            if (marker == 0xDA) break; // entropy-coded data follows
            pos += 2 + length;
        }
        return segments;
    }

    private static bool IsStartOfFrame(byte m) => m is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC;

    public static byte[] MutateJpeg(byte[] input, FuzzRandom rng)
    {
        var jpg = (byte[])input.Clone();
        var segments = JpegSegments(jpg);
        if (segments.Count == 0) return jpg;
        var sof = segments.FirstOrDefault(s => IsStartOfFrame(s.Marker));
        var sos = segments.FirstOrDefault(s => s.Marker == 0xDA);
        switch (rng.Next(8))
        {
            case 0 or 1 when sof.Length >= 8: // height (offset 5) or width (offset 7)
                BinaryPrimitives.WriteUInt16BigEndian(jpg.AsSpan(sof.Offset + (rng.OneIn(2) ? 5 : 7)), rng.Pick(JpegDimensions));
                return jpg;
            case 2 when sof.Length >= 8: // precision, component count, a sampling factor or a table id
            {
                int field = rng.Pick<int>([4, 9, 11, 12, 14, 15]);
                if (sof.Offset + field < sof.Offset + 2 + sof.Length) jpg[sof.Offset + field] = rng.Pick<byte>([0, 1, 2, 3, 4, 8, 12, 16, 0x11, 0x22, 0x44, 0xFF]);
                return jpg;
            }
            case 3 when sos.Length >= 6: // SOS component count or table selectors, spectral selection
            {
                int field = rng.Next(4, sos.Length + 2);
                jpg[sos.Offset + field] = rng.Pick<byte>([0, 1, 3, 4, 0x11, 0x3F, 0xFF]);
                return jpg;
            }
            case 4: // a segment's length field
            {
                var s = rng.Pick(segments);
                ushort length = rng.OneIn(2) ? rng.Pick<ushort>([0, 1, 2, 3, 0xFFFF]) : (ushort)Math.Max(0, s.Length + rng.Next(-4, 5));
                BinaryPrimitives.WriteUInt16BigEndian(jpg.AsSpan(s.Offset + 2), length);
                return jpg;
            }
            case 5: // a byte of a table (DQT, DHT) or of any segment
            {
                var s = rng.Pick(segments);
                if (s.Length > 2) jpg[s.Offset + 4 + rng.Next(s.Length - 2)] = rng.NextByte();
                return jpg;
            }
            case 6: // drop a segment
            {
                var s = rng.Pick(segments);
                return [.. jpg[..s.Offset], .. jpg[(s.Offset + 2 + s.Length)..]];
            }
            default: // a marker byte itself (SOF0 becomes progressive or arithmetic, DHT becomes something else)
            {
                var s = rng.Pick(segments);
                jpg[s.Offset + 1] = rng.Pick<byte>([0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC9, 0xCC, 0xDA, 0xDB, 0xDD, 0xE0, 0xFE, 0xD9, 0x00]);
                return jpg;
            }
        }
    }
}
