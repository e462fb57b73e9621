using System.Text;
using SigLip.Reference.IO;

namespace SigLip.Data.Text;

/// <summary>The kind of a SentencePiece vocabulary entry (sentencepiece_model.proto, SentencePiece.Type).</summary>
public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

/// <summary>One vocabulary entry of a SentencePiece model.</summary>
public sealed record SentencePiece(string Piece, float Score, PieceType Type);

/// <summary>
/// A tiny reader and rewriter of the SentencePiece model protobuf (spiece.model), written by hand so that
/// no protobuf package is needed. It reads what the tokenizer checks (pieces, special ids, model type)
/// and rewrites single varint fields in memory, which is how <see cref="SiglipTokenizer"/> works around
/// Microsoft.ML.Tokenizers 2.0.1's limits (see ../shared/notes/sentencepiece.md).
/// Field numbers are those of sentencepiece_model.proto:
/// ModelProto { 1 pieces (repeated), 2 trainer_spec, 3 normalizer_spec };
/// TrainerSpec { 3 model_type, 40 unk_id, 41 bos_id, 42 eos_id, 43 pad_id };
/// NormalizerSpec { 1 name, 2 precompiled_charsmap, 3 add_dummy_prefix, 4 remove_extra_whitespaces, 5 escape_whitespaces }.
/// </summary>
public sealed class SentencePieceModelProto
{
    public const int ModelPiecesField = 1, ModelTrainerSpecField = 2, ModelNormalizerSpecField = 3;
    public const int TrainerModelTypeField = 3, TrainerUnkIdField = 40, TrainerBosIdField = 41, TrainerEosIdField = 42, TrainerPadIdField = 43;
    public const int NormalizerNameField = 1, NormalizerPrecompiledCharsMapField = 2, NormalizerAddDummyPrefixField = 3, NormalizerRemoveExtraWhitespacesField = 4, NormalizerEscapeWhitespacesField = 5;

    private SentencePieceModelProto(byte[] bytes, string source)
    {
        Bytes = bytes;
        Source = source;
        var pieces = new List<SentencePiece>();
        // Sub-messages as ranges of the whole file, so that a broken field's byte is its offset in the file.
        (int Start, int End) trainer = (0, 0), normalizer = (0, 0);
        foreach (var f in ReadFields(bytes, 0, bytes.Length, source, "ModelProto"))
        {
            if (f.Number == ModelPiecesField && f.WireType == 2) pieces.Add(ReadPiece(bytes, f, source, pieces.Count));
            else if (f.Number == ModelTrainerSpecField && f.WireType == 2) trainer = (f.Start, f.End);
            else if (f.Number == ModelNormalizerSpecField && f.WireType == 2) normalizer = (f.Start, f.End);
        }
        if (pieces.Count == 0) throw new InputFormatException($"{source}: the SentencePiece model has no pieces (field 1 of ModelProto); is this a spiece.model file?", source);
        Pieces = pieces;
        // Defaults are those of sentencepiece_model.proto.
        ModelType = (int)(LastVarint(bytes, trainer, TrainerModelTypeField, source, "trainer_spec") ?? 1);
        UnkId = (int)(LastVarint(bytes, trainer, TrainerUnkIdField, source, "trainer_spec") ?? 0);
        BosId = (int)(LastVarint(bytes, trainer, TrainerBosIdField, source, "trainer_spec") ?? 1);
        EosId = (int)(LastVarint(bytes, trainer, TrainerEosIdField, source, "trainer_spec") ?? 2);
        PadId = (int)(LastVarint(bytes, trainer, TrainerPadIdField, source, "trainer_spec") ?? unchecked((ulong)-1L));
        AddDummyPrefix = (LastVarint(bytes, normalizer, NormalizerAddDummyPrefixField, source, "normalizer_spec") ?? 1) != 0;
        RemoveExtraWhitespaces = (LastVarint(bytes, normalizer, NormalizerRemoveExtraWhitespacesField, source, "normalizer_spec") ?? 1) != 0;
        NormalizerName = LastString(bytes, normalizer, NormalizerNameField, source) ?? "";
        PrecompiledCharsMap = LastBytes(bytes, normalizer, NormalizerPrecompiledCharsMapField, source);
    }

    /// <summary>normalizer_spec.precompiled_charsmap (empty when the model has no normalisation map).</summary>
    public byte[] PrecompiledCharsMap { get; }

    /// <summary>The raw protobuf bytes.</summary>
    public byte[] Bytes { get; }
    public string Source { get; }
    public IReadOnlyList<SentencePiece> Pieces { get; }
    /// <summary>1 unigram, 2 BPE, 3 word, 4 char.</summary>
    public int ModelType { get; }
    public int UnkId { get; }
    /// <summary>-1 when the model has no beginning-of-sentence token (T5 and SigLIP vocabularies).</summary>
    public int BosId { get; }
    public int EosId { get; }
    public int PadId { get; }
    public bool AddDummyPrefix { get; }
    public bool RemoveExtraWhitespaces { get; }
    /// <summary>The normalisation rule's name, e.g. nmt_nfkc.</summary>
    public string NormalizerName { get; }

    public static SentencePieceModelProto Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"SentencePiece model '{path}' does not exist; give the path of a spiece.model file.", path);
        return Parse(InputFile.ReadAllBytes(path, "a SentencePiece model"), path);
    }

    public static SentencePieceModelProto Parse(byte[] bytes, string source = "spiece.model") => new(bytes, source);

    /// <summary>
    /// A copy of <paramref name="model"/> where varint field <paramref name="field"/> of the sub-message
    /// <paramref name="messageField"/> (2 trainer_spec, 3 normalizer_spec) is set to <paramref name="value"/>:
    /// earlier occurrences are dropped and one is appended (protobuf keeps the last scalar it reads).
    /// </summary>
    public static byte[] WithVarintField(byte[] model, int messageField, int field, long value, string source = "spiece.model")
    {
        var output = new MemoryStream(model.Length + 16);
        bool found = false;
        foreach (var f in ReadFields(model, 0, model.Length, source, "ModelProto"))
        {
            if (f.Number == messageField && f.WireType == 2 && !found)
            {
                found = true;
                var inner = new MemoryStream();
                foreach (var g in ReadFields(model, f.Start, f.End, source, $"field {messageField}"))
                    if (g.Number != field) inner.Write(model, g.TagStart, g.End - g.TagStart);
                WriteVarint(inner, ((ulong)field << 3) | 0);
                WriteVarint(inner, unchecked((ulong)value)); // negative int32 values are 10-byte varints, as protobuf writes them
                WriteVarint(output, ((ulong)messageField << 3) | 2);
                WriteVarint(output, (ulong)inner.Length);
                inner.Position = 0;
                inner.CopyTo(output);
            }
            else output.Write(model, f.TagStart, f.End - f.TagStart);
        }
        if (!found)
        {
            var inner = new MemoryStream();
            WriteVarint(inner, ((ulong)field << 3) | 0);
            WriteVarint(inner, unchecked((ulong)value));
            WriteVarint(output, ((ulong)messageField << 3) | 2);
            WriteVarint(output, (ulong)inner.Length);
            inner.Position = 0;
            inner.CopyTo(output);
        }
        return output.ToArray();
    }

    // ---- the wire format ----

    private readonly record struct Field(int Number, int WireType, int TagStart, int Start, int End, ulong Varint);

    private static IEnumerable<Field> ReadFields(byte[] b, int start, int end, string source, string message)
    {
        int pos = start;
        while (pos < end)
        {
            int tagStart = pos;
            ulong tag = ReadVarint(b, ref pos, end, source, message);
            int number = (int)(tag >> 3), wire = (int)(tag & 7);
            if (number == 0) throw Broken(source, message, tagStart, "field number 0");
            switch (wire)
            {
                case 0:
                    ulong v = ReadVarint(b, ref pos, end, source, message);
                    yield return new Field(number, wire, tagStart, pos, pos, v);
                    break;
                case 1:
                    if (end - pos < 8) throw Broken(source, message, tagStart, "a 64-bit field runs past the end");
                    yield return new Field(number, wire, tagStart, pos, pos + 8, 0);
                    pos += 8;
                    break;
                case 2:
                    ulong len = ReadVarint(b, ref pos, end, source, message);
                    if (len > (ulong)(end - pos)) throw Broken(source, message, tagStart, $"field {number} says it holds {len} bytes but only {end - pos} remain");
                    yield return new Field(number, wire, tagStart, pos, pos + (int)len, 0);
                    pos += (int)len;
                    break;
                case 5:
                    if (end - pos < 4) throw Broken(source, message, tagStart, "a 32-bit field runs past the end");
                    yield return new Field(number, wire, tagStart, pos, pos + 4, 0);
                    pos += 4;
                    break;
                default:
                    throw Broken(source, message, tagStart, $"unsupported wire type {wire} of field {number}");
            }
        }
    }

    private static ulong ReadVarint(byte[] b, ref int pos, int end, string source, string message)
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (pos >= end) throw Broken(source, message, pos, "a varint runs past the end");
            byte x = b[pos++];
            result |= (ulong)(x & 0x7F) << shift;
            if ((x & 0x80) == 0) return result;
        }
        throw Broken(source, message, pos, "a varint is longer than 10 bytes");
    }

    private static void WriteVarint(Stream s, ulong v)
    {
        while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        s.WriteByte((byte)v);
    }

    private static Exception Broken(string source, string message, int offset, string what) =>
        new InputFormatException($"{source}: not a valid SentencePiece model protobuf ({message}, byte {offset}: {what}). Expected a spiece.model written by sentencepiece.", source, offset);

    private static SentencePiece ReadPiece(byte[] b, Field f, string source, int index)
    {
        string piece = "";
        float score = 0;
        var type = PieceType.Normal;
        foreach (var g in ReadFields(b, f.Start, f.End, source, $"piece {index}"))
        {
            if (g.Number == 1 && g.WireType == 2) piece = Encoding.UTF8.GetString(b, g.Start, g.End - g.Start);
            else if (g.Number == 2 && g.WireType == 5) score = BitConverter.ToSingle(b, g.Start);
            else if (g.Number == 3 && g.WireType == 0) type = (PieceType)(int)g.Varint;
        }
        return new SentencePiece(piece, score, type);
    }

    private static ulong? LastVarint(byte[] b, (int Start, int End) message, int field, string source, string name)
    {
        ulong? value = null;
        foreach (var f in ReadFields(b, message.Start, message.End, source, name))
            if (f.Number == field && f.WireType == 0) value = f.Varint;
        return value;
    }

    private static byte[] LastBytes(byte[] b, (int Start, int End) message, int field, string source)
    {
        byte[] value = [];
        foreach (var f in ReadFields(b, message.Start, message.End, source, "normalizer_spec"))
            if (f.Number == field && f.WireType == 2) value = b[f.Start..f.End];
        return value;
    }

    private static string? LastString(byte[] b, (int Start, int End) message, int field, string source)
    {
        string? value = null;
        foreach (var f in ReadFields(b, message.Start, message.End, source, "normalizer_spec"))
            if (f.Number == field && f.WireType == 2) value = Encoding.UTF8.GetString(b, f.Start, f.End - f.Start);
        return value;
    }
}
