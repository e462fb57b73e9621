using Microsoft.ML.Tokenizers;
using SigLip.Data.Text;
using SigLip.Reference;
using SigLip.Reference.Data;

using SigLip.Reference.IO;

namespace SigLip.Data;

/// <summary>
/// SigLIP's tokenizer: a SentencePiece unigram model (spiece.model) under SigLIP's own rules, giving the
/// ids HF transformers' <c>SiglipTokenizer(padding="max_length", truncation=True)</c> gives.
///
/// How an id row is made (the HF slow tokenizer's steps):
/// 1. U+2581 in the text becomes a space, U+2581 is put in front; lower-case (Python's rules);
///    remove ASCII punctuation; fold whitespace runs into one space; strip (<see cref="SiglipText"/>).
/// 2. SentencePiece with add_dummy_prefix switched off encodes "&lt;unk&gt;" + that text, and the ids
///    of "&lt;unk&gt;" alone are cut off the front. (HF's trick to keep the leading U+2581 although
///    add_dummy_prefix is off; the model's nmt_nfkc map treats U+2581 as a space, so for every text tried
///    this equals plain SentencePiece on the canonical text. It is kept as HF does it so that quirks match.)
/// 3. Append &lt;/s&gt;; cut to max_length - 1 ids before it when too long, so &lt;/s&gt; stays last; pad
///    with &lt;/s&gt; (HF's pad token for SigLIP is &lt;/s&gt;, not the model's &lt;pad&gt;).
///
/// SentencePiece itself runs through Microsoft.ML.Tokenizers 2.0.1 (its nmt_nfkc normaliser with the
/// model's precompiled character map, and its unigram Viterbi search), with two workarounds:
/// - 2.0.1 throws IndexOutOfRangeException on models without a beginning-of-sentence token
///   (trainer_spec.bos_id = -1, as SigLIP's): bos_id is rewritten in memory to the end token's id
///   before the library reads the model. The library then only uses it for an optional prefix we
///   never ask for, and the end token's own entry is written after it, so nothing visible changes.
/// - the library emits one unknown id per unknown character, where SentencePiece merges a run of
///   adjacent unknown pieces into one: <see cref="MergeUnknownRuns"/> does that merge afterwards.
///   The Viterbi paths are the same (both score an unknown character min_score - 10), so merging
///   adjacent unknown ids afterwards gives SentencePiece's ids.
/// - the library keeps characters that the model's normalisation map deletes (nmt_nfkc deletes the
///   ASCII control characters such as U+0001 and U+007F); sentencepiece drops them, the library makes
///   each an unknown piece. <see cref="PrecompiledCharsMap"/> reads the map and those characters are
///   removed before the library sees the text.
/// Literal special-token strings in a caption ("&lt;/s&gt;", "&lt;unk&gt;") are treated as plain text; HF
/// would map them to their special ids. Captions do not contain them in practice.
/// </summary>
public sealed class SiglipTokenizer : ITextTokenizer
{
    private const string UnkPrefix = "<unk>";
    private readonly SentencePieceTokenizer _plain;     // the model as it is (add_dummy_prefix as stored)
    private readonly SentencePieceTokenizer _noPrefix;  // add_dummy_prefix = false, as HF loads it
    private readonly int _unkPrefixLength;
    private readonly IReadOnlySet<int> _deleted;   // code points the normalisation map replaces by ""

    private SiglipTokenizer(SentencePieceModelProto model)
    {
        Model = model;
        if (model.ModelType != 1)
            throw new InputFormatException($"{model.Source}: SentencePiece model type {model.ModelType} ({ModelTypeName(model.ModelType)}); SigLIP's spiece.model is a unigram model (type 1), the only kind this tokenizer supports.", model.Source);
        CheckId(model, "unk_id", model.UnkId, PieceType.Unknown, required: true);
        CheckId(model, "eos_id", model.EosId, PieceType.Control, required: true);
        byte[] bytes = model.Bytes;
        if (model.BosId < 0 || model.BosId >= model.Pieces.Count)
            bytes = SentencePieceModelProto.WithVarintField(bytes, SentencePieceModelProto.ModelTrainerSpecField, SentencePieceModelProto.TrainerBosIdField, model.EosId, model.Source);
        _deleted = model.PrecompiledCharsMap.Length > 0 ? new PrecompiledCharsMap(model.PrecompiledCharsMap, model.Source).DeletedCodePoints() : new HashSet<int>();
        _plain = Create(bytes, model.Source);
        byte[] noPrefix = SentencePieceModelProto.WithVarintField(bytes, SentencePieceModelProto.ModelNormalizerSpecField, SentencePieceModelProto.NormalizerAddDummyPrefixField, 0, model.Source);
        _noPrefix = Create(noPrefix, model.Source);
        _unkPrefixLength = MergeUnknownRuns(Guard(() => _noPrefix.EncodeToIds(UnkPrefix, false, false)), UnkId).Count;
        // Validate before handing texts over: a damaged model (one changed byte in the normaliser's trie)
        // makes Microsoft.ML.Tokenizers index outside its arrays on the first text that reaches the damage.
        // Encoding every printable ASCII character and a few others here surfaces most of it at load time;
        // every later call is guarded too.
        foreach (var probe in LoadProbes) { Guard(() => _noPrefix.EncodeToIds(probe, false, false)); Guard(() => _plain.EncodeToIds(probe, false, false)); }
    }

    private static readonly string[] LoadProbes =
    [
        new string(Enumerable.Range(0x20, 0x5F).Select(c => (char)c).ToArray()),
        "a cat on the mat. Hello World 0123456789 \u00e9\u00e8\u00fc\u00df \u3042 \uff21\uff22 \u2160 \u00a0\t\n",
        // Characters the map deletes, alone (fuzz spiece seed 2 case 4273: a damaged trie gave the id -1 for "\u0001").
        "\u0001", "a\u0001", "\u007f",
    ];

    /// <summary>
    /// Runs a Microsoft.ML.Tokenizers call; an exception from inside the library (IndexOutOfRange and the like,
    /// which a damaged model causes) becomes an <see cref="InputFormatException"/> naming the model file.
    /// </summary>
    private IReadOnlyList<int> Guard(Func<IReadOnlyList<int>> encode)
    {
        try
        {
            var ids = encode();
            // A damaged normaliser trie can also make the library return ids that name no piece (-1): they
            // would index outside the embedding table later, so they are refused here.
            foreach (int id in ids)
                if (id < 0 || id >= Model.Pieces.Count)
                    throw new InputFormatException($"{Model.Source}: the SentencePiece model is damaged: Microsoft.ML.Tokenizers returned the id {id}, outside the vocabulary of {Model.Pieces.Count} pieces; " +
                                                   "use an intact spiece.model (the one that came with the checkpoint).", Model.Source);
            return ids;
        }
        catch (Exception ex) when (ex is IndexOutOfRangeException or ArgumentOutOfRangeException or ArgumentException or NullReferenceException
                                       or InvalidOperationException or OverflowException or KeyNotFoundException or FormatException)
        {
            throw new InputFormatException($"{Model.Source}: the SentencePiece model is damaged: Microsoft.ML.Tokenizers failed on it ({ex.GetType().Name}: {ex.Message}); " +
                                           "use an intact spiece.model (the one that came with the checkpoint).", Model.Source, null, ex);
        }
    }

    /// <summary>Loads spiece.model.</summary>
    public static SiglipTokenizer Load(string spieceModelPath) => new(SentencePieceModelProto.Read(spieceModelPath));

    /// <summary>From the bytes of a spiece.model.</summary>
    public static SiglipTokenizer FromBytes(byte[] spieceModel, string source = "spiece.model") => new(SentencePieceModelProto.Parse(spieceModel, source));

    public SentencePieceModelProto Model { get; }

    /// <summary>The number of pieces in the model (HF's <c>vocab_size</c>).</summary>
    public int VocabSize => Model.Pieces.Count;

    public int EosId => Model.EosId;
    public int UnkId => Model.UnkId;

    /// <summary>Id rows [texts.Count, maxLength], as HF SiglipTokenizer with padding="max_length", truncation=True.</summary>
    public TokenIds Encode(IReadOnlyList<string> texts, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), $"max_length must be at least 1 (room for </s>), got {maxLength}.");
        var ids = new int[texts.Count * maxLength];
        for (int b = 0; b < texts.Count; b++)
        {
            var row = EncodeRow(texts[b] ?? throw new ArgumentException($"Text {b} is null."), maxLength);
            Array.Copy(row, 0, ids, b * maxLength, maxLength);
        }
        return new TokenIds(texts.Count, maxLength, ids);
    }

    /// <summary>One text: the ids of its pieces, then &lt;/s&gt;, padded or cut to <paramref name="maxLength"/>.</summary>
    public int[] EncodeRow(string text, int maxLength)
    {
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), $"max_length must be at least 1 (room for </s>), got {maxLength}.");
        var pieces = EncodePieces(text);
        var row = new int[maxLength];
        int keep = Math.Min(pieces.Count, maxLength - 1);
        for (int i = 0; i < keep; i++) row[i] = pieces[i];
        for (int i = keep; i < maxLength; i++) row[i] = EosId; // </s>, then </s> padding
        return row;
    }

    /// <summary>The ids of the text's pieces under SigLIP's rules, without &lt;/s&gt; and without padding.</summary>
    public IReadOnlyList<int> EncodePieces(string text)
    {
        string prepared = SiglipText.PrepareForSentencePiece(text);
        var ids = MergeUnknownRuns(Guard(() => _noPrefix.EncodeToIds(UnkPrefix + RemoveDeleted(prepared), false, false)), UnkId);
        return ids.Count >= _unkPrefixLength ? ids.Skip(_unkPrefixLength).ToList() : ids;
    }

    /// <summary>
    /// Plain SentencePiece encoding of <paramref name="text"/> (no SigLIP rules, no &lt;/s&gt;): what
    /// sentencepiece's <c>SentencePieceProcessor.encode(text)</c> gives.
    /// </summary>
    public IReadOnlyList<int> EncodeSentencePiece(string text) =>
        MergeUnknownRuns(Guard(() => _plain.EncodeToIds(RemoveDeleted(text), false, false)), UnkId);

    /// <summary>Characters the model's normalisation map deletes, as a list of code points.</summary>
    public IReadOnlyCollection<int> DeletedCharacters => (IReadOnlyCollection<int>)_deleted;

    private string RemoveDeleted(string text)
    {
        if (_deleted.Count == 0) return text;
        var sb = new System.Text.StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
            if (!_deleted.Contains(rune.Value)) sb.Append(rune.ToString());
        return sb.ToString();
    }

    /// <summary>The piece of an id (e.g. "▁red"); the unknown id gives "&lt;unk&gt;".</summary>
    public string IdToPiece(int id) =>
        id >= 0 && id < Model.Pieces.Count ? Model.Pieces[id].Piece : throw new ArgumentOutOfRangeException(nameof(id), $"Id {id} is outside the vocabulary [0, {Model.Pieces.Count}).");

    /// <summary>SentencePiece merges adjacent unknown pieces into one unknown id; ML.Tokenizers 2.0.1 does not.</summary>
    public static IReadOnlyList<int> MergeUnknownRuns(IReadOnlyList<int> ids, int unkId)
    {
        var merged = new List<int>(ids.Count);
        foreach (int id in ids)
            if (!(id == unkId && merged.Count > 0 && merged[^1] == unkId)) merged.Add(id);
        return merged;
    }

    private static SentencePieceTokenizer Create(byte[] bytes, string source)
    {
        try
        {
            using var stream = new MemoryStream(bytes, writable: false);
            return SentencePieceTokenizer.Create(stream, false, false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new InputFormatException($"{source}: Microsoft.ML.Tokenizers could not load the SentencePiece model: {ex.Message}; use an intact spiece.model (the one that came with the checkpoint).", source, null, ex);
        }
    }

    private static void CheckId(SentencePieceModelProto m, string name, int id, PieceType expected, bool required)
    {
        if (id < 0 || id >= m.Pieces.Count)
        {
            if (required) throw new InputFormatException($"{m.Source}: trainer_spec.{name} is {id}, outside the vocabulary of {m.Pieces.Count} pieces; SigLIP needs it.", m.Source);
            return;
        }
        if (m.Pieces[id].Type != expected)
            throw new InputFormatException($"{m.Source}: trainer_spec.{name} = {id} names piece '{m.Pieces[id].Piece}' of type {m.Pieces[id].Type}; expected a piece of type {expected}.", m.Source);
    }

    private static string ModelTypeName(int type) => type switch { 1 => "unigram", 2 => "BPE", 3 => "word", 4 => "char", _ => "unknown" };
}
