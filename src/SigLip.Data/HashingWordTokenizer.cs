using System.Text;
using SigLip.Data.Text;
using SigLip.Reference;
using SigLip.Reference.Data;

namespace SigLip.Data;

/// <summary>
/// The tokenizer for a model trained from scratch on a folder that comes without a spiece.model: it
/// knows every word without a vocabulary file, so nothing beyond its vocabulary size has to be saved
/// with the checkpoint. Words are SigLIP-canonicalised (lower case, ASCII punctuation removed,
/// whitespace folded; <see cref="SiglipText"/>), split at spaces, and each word maps to
/// 2 + FNV-1a-32(UTF-8 bytes) mod (vocab - 2); id 0 is the end token &lt;/s&gt; (also the padding, as in
/// SigLIP) and id 1 is kept unused (never produced) so that 0/1 match nothing a word can hash to.
/// Distinct words can share an id (a hash collision); with a vocabulary much larger than the caption
/// vocabulary that is rare. Deterministic on every machine.
/// </summary>
public sealed class HashingWordTokenizer : ITextTokenizer
{
    public const int EndId = 0;

    public HashingWordTokenizer(int vocabSize)
    {
        if (vocabSize < 3) throw new ArgumentOutOfRangeException(nameof(vocabSize), $"The hashing tokenizer needs a vocabulary of at least 3 ids, got {vocabSize}.");
        VocabSize = vocabSize;
    }

    public int VocabSize { get; }

    public int WordId(string word)
    {
        uint hash = 2166136261;
        foreach (byte b in Encoding.UTF8.GetBytes(word)) { hash ^= b; hash *= 16777619; }
        return 2 + (int)(hash % (uint)(VocabSize - 2));
    }

    public IReadOnlyList<int> EncodeWords(string text) =>
        SiglipText.Canonicalize(SiglipText.PythonLower(text)).Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(WordId).ToList();

    public TokenIds Encode(IReadOnlyList<string> texts, int maxLength)
    {
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), $"max_length must be at least 1 (room for </s>), got {maxLength}.");
        var ids = new int[texts.Count * maxLength]; // zero-filled: </s>
        for (int b = 0; b < texts.Count; b++)
        {
            var words = EncodeWords(texts[b]);
            int keep = Math.Min(words.Count, maxLength - 1);
            for (int t = 0; t < keep; t++) ids[b * maxLength + t] = words[t];
        }
        return new TokenIds(texts.Count, maxLength, ids);
    }
}

/// <summary>Which tokenizer a run uses, in one place so train, eval and embed agree.</summary>
public static class TokenizerChoice
{
    /// <summary>
    /// An explicit spiece.model wins; else the checkpoint folder's spiece.model; else (a fresh model on a
    /// folder without one) the <see cref="HashingWordTokenizer"/> over the config's vocabulary.
    /// </summary>
    public static ITextTokenizer Resolve(string? spieceModel, string? checkpointFolder, int vocabSize)
    {
        if (spieceModel is not null) return SiglipTokenizer.Load(spieceModel);
        if (checkpointFolder is not null && File.Exists(Path.Combine(checkpointFolder, PretrainedFolder.SpieceFileName)))
            return SiglipTokenizer.Load(Path.Combine(checkpointFolder, PretrainedFolder.SpieceFileName));
        return new HashingWordTokenizer(vocabSize);
    }
}
