using System.Text;

namespace SigLip.Reference.Data.BuiltIn;

/// <summary>
/// A word-level tokenizer over a fixed vocabulary, with SigLIP's text rules: canonicalise (lower
/// case, punctuation removed, whitespace folded), split on spaces, append the end token, pad with
/// the end token to the fixed length (no attention mask), and cut an over-long text so the end
/// token stays last. Unknown words become the unknown id.
/// <para>
/// Ids follow SigLIP's SentencePiece layout: 0 = &lt;pad&gt; (reserved, never emitted: SigLIP pads
/// with the end token), 1 = &lt;/s&gt; (end), 2 = &lt;unk&gt;, then the words in ordinal order from 3.
/// Ids therefore depend only on the set of words, never on the order they were given in.
/// </para>
/// </summary>
public sealed class WordTokenizer : ITextTokenizer
{
    /// <summary>Id of &lt;pad&gt; (reserved, never emitted).</summary>
    public const int PadId = 0;
    /// <summary>Id of &lt;/s&gt;, which ends every text and pads it to the fixed length.</summary>
    public const int EndId = 1;
    /// <summary>Id of &lt;unk&gt;, given to words outside the vocabulary.</summary>
    public const int UnknownId = 2;
    /// <summary>The text of id 0.</summary>
    public const string PadToken = "<pad>";
    /// <summary>The text of id 1.</summary>
    public const string EndToken = "</s>";
    /// <summary>The text of id 2.</summary>
    public const string UnknownToken = "<unk>";

    private readonly string[] _tokens;
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);

    /// <summary>A tokenizer whose vocabulary is the canonical form of each of <paramref name="words"/> (duplicates merged).</summary>
    public WordTokenizer(IEnumerable<string> words)
    {
        ArgumentNullException.ThrowIfNull(words);
        var canonical = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var word in words)
        {
            string w = Canonicalize(word ?? throw new ArgumentException("WordTokenizer: a vocabulary word is null."));
            if (w.Length == 0 || w.Contains(' '))
                throw new ArgumentException($"WordTokenizer: vocabulary entry '{word}' is not one word after canonicalisation ('{w}'); give single words of letters or digits.");
            canonical.Add(w);
        }
        _tokens = [PadToken, EndToken, UnknownToken, .. canonical];
        for (int i = 3; i < _tokens.Length; i++) _ids[_tokens[i]] = i;
    }

    /// <summary>The tokenizer of the built-in data: every word of <see cref="ShapesVocabulary.Words"/>.</summary>
    public static WordTokenizer ForShapes() => new(ShapesVocabulary.Words);

    /// <inheritdoc/>
    public int VocabSize => _tokens.Length;

    /// <summary>Token text by id (id 0..2 are &lt;pad&gt;, &lt;/s&gt;, &lt;unk&gt;).</summary>
    public IReadOnlyList<string> Vocabulary => _tokens;

    /// <summary>The id of a word (canonicalised first), or <see cref="UnknownId"/>.</summary>
    public int IdOf(string word) => _ids.TryGetValue(Canonicalize(word), out int id) ? id : UnknownId;

    /// <summary>
    /// SigLIP's text canonicalisation: lower case, punctuation and symbols removed (not replaced by
    /// spaces, as in big_vision), runs of whitespace folded to one space, ends trimmed.
    /// </summary>
    public static string Canonicalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sb = new StringBuilder(text.Length);
        bool pendingSpace = false;
        foreach (char ch in text.ToLowerInvariant())
        {
            if (char.IsWhiteSpace(ch)) { pendingSpace = sb.Length > 0; continue; }
            if (char.IsPunctuation(ch) || char.IsSymbol(ch)) continue;
            if (pendingSpace) { sb.Append(' '); pendingSpace = false; }
            sb.Append(ch);
        }
        return sb.ToString();
    }

    /// <summary>Ids of one text, exactly <paramref name="maxLength"/> long, ending with <see cref="EndId"/>.</summary>
    public IReadOnlyList<int> EncodeOne(string text, int maxLength)
    {
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "Token length must be at least 1 (room for the end token).");
        var ids = new int[maxLength];
        Array.Fill(ids, EndId);
        string canonical = Canonicalize(text);
        if (canonical.Length == 0) return ids;
        var words = canonical.Split(' ');
        int kept = Math.Min(words.Length, maxLength - 1); // truncation keeps the end token last
        for (int i = 0; i < kept; i++) ids[i] = _ids.TryGetValue(words[i], out int id) ? id : UnknownId;
        return ids;
    }

    /// <inheritdoc/>
    public TokenIds Encode(IReadOnlyList<string> texts, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "Token length must be at least 1 (room for the end token).");
        var ids = new int[texts.Count * maxLength];
        for (int b = 0; b < texts.Count; b++)
        {
            var row = EncodeOne(texts[b] ?? throw new ArgumentException($"Text {b} is null."), maxLength);
            for (int t = 0; t < maxLength; t++) ids[b * maxLength + t] = row[t];
        }
        return new TokenIds(texts.Count, maxLength, ids);
    }

    /// <summary>The words of <paramref name="ids"/> up to the first end token, joined by spaces.</summary>
    public string Decode(IEnumerable<int> ids)
    {
        var words = new List<string>();
        foreach (int id in ids)
        {
            if (id == EndId) break;
            if (id < 0 || id >= _tokens.Length)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is outside this vocabulary (0..{_tokens.Length - 1}).");
            words.Add(_tokens[id]);
        }
        return string.Join(' ', words);
    }
}
