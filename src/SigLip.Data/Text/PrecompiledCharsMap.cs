using System.Text;
using SigLip.Reference.IO;

namespace SigLip.Data.Text;

/// <summary>
/// The normaliser's precompiled character map of a SentencePiece model (normalizer_spec.precompiled_charsmap):
/// a Darts-clone double-array trie over UTF-8 keys whose values point into a block of NUL-terminated
/// replacement strings. Read here only to find the characters the map deletes (replaces with ""),
/// because Microsoft.ML.Tokenizers 2.0.1 keeps them: nmt_nfkc deletes the ASCII control characters
/// (U+0001..U+0008, U+000E..U+001F, U+007F, ...), which sentencepiece then never sees, while the
/// library turns each into an unknown piece.
/// Layout: uint32 trie size in bytes, the trie's 32-bit units, then the replacement strings.
/// </summary>
public sealed class PrecompiledCharsMap
{
    private readonly uint[] _units;
    private readonly byte[] _normalized;

    public PrecompiledCharsMap(byte[] blob, string source)
    {
        if (blob.Length < 4) throw new InputFormatException($"{source}: precompiled_charsmap is {blob.Length} bytes, too short to hold its trie size.", source);
        uint trieSize = BitConverter.ToUInt32(blob, 0);
        if (trieSize % 4 != 0 || trieSize > blob.Length - 4)
            throw new InputFormatException($"{source}: precompiled_charsmap says its trie holds {trieSize} bytes but {blob.Length - 4} follow (or not a multiple of 4).", source);
        _units = new uint[trieSize / 4];
        Buffer.BlockCopy(blob, 4, _units, 0, (int)trieSize);
        _normalized = blob[(4 + (int)trieSize)..];
    }

    /// <summary>The replacement of exactly <paramref name="key"/> (UTF-8), or null when the map has no rule for it.</summary>
    public byte[]? Lookup(ReadOnlySpan<byte> key, out bool startsLongerRule)
    {
        startsLongerRule = false;
        if (_units.Length == 0) return null;
        uint id = Offset(_units[0]);
        uint unit = _units[0];
        foreach (byte c in key)
        {
            id ^= c;
            if (id >= _units.Length) return null;
            unit = _units[id];
            if (Label(unit) != c) return null;
            id ^= Offset(unit);
        }
        // Any child other than the leaf (label 0) means a longer key continues from here.
        for (uint c = 1; c < 256 && !startsLongerRule; c++)
        {
            uint child = id ^ c;
            if (child < _units.Length && Label(_units[child]) == c) startsLongerRule = true;
        }
        if (!HasLeaf(unit) || id >= _units.Length) return null;
        uint value = _units[id] & 0x7FFFFFFF;
        if (value >= _normalized.Length) return null;
        int end = Array.IndexOf(_normalized, (byte)0, (int)value);
        return end < 0 ? null : _normalized[(int)value..end];
    }

    /// <summary>Every Unicode scalar whose single-character rule is deletion and which starts no longer rule.</summary>
    public IReadOnlySet<int> DeletedCodePoints()
    {
        var deleted = new HashSet<int>();
        Span<byte> utf8 = stackalloc byte[4];
        for (int cp = 0; cp <= 0x10FFFF; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF) continue;
            int n = new Rune(cp).EncodeToUtf8(utf8);
            var replacement = Lookup(utf8[..n], out bool longer);
            if (replacement is { Length: 0 } && !longer) deleted.Add(cp);
        }
        return deleted;
    }

    private static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;
    private static uint Label(uint unit) => unit & ((1u << 31) | 0xFF);
    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);
}
