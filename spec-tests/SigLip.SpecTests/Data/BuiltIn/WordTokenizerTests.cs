using FsCheck;
using FsCheck.Fluent;
using SigLip.Reference.Data.BuiltIn;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Data.BuiltIn;

public class WordTokenizerTests(ITestOutputHelper output)
{
    [Fact]
    public void Ids_are_the_special_tokens_then_the_words_in_ordinal_order_whatever_order_they_came_in()
    {
        var tokenizer = new WordTokenizer(["cat", "Apple", "bird", "cat"]);
        Assert.Equal(["<pad>", "</s>", "<unk>", "apple", "bird", "cat"], tokenizer.Vocabulary);
        Assert.Equal(6, tokenizer.VocabSize);
        Assert.Equal(tokenizer.Vocabulary, new WordTokenizer(["bird", "cat", "apple"]).Vocabulary);
        // apple=3, bird=4, cat=5; unknown -> 2; the end token (1) follows and pads.
        Assert.Equal([5, 3, 2, 4, 1, 1, 1], tokenizer.EncodeOne("Cat, APPLE dog... bird!", 7));
    }

    [Fact]
    public void Truncation_keeps_the_end_token_last()
    {
        var tokenizer = new WordTokenizer(["a", "b", "c"]);
        Assert.Equal([3, 4, 1], tokenizer.EncodeOne("a b c a b", 3));
        Assert.Equal([1], tokenizer.EncodeOne("a b c", 1));
        Assert.Equal([1, 1, 1], tokenizer.EncodeOne("  ?!  ", 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.EncodeOne("a", 0));
    }

    [Fact]
    public void Canonicalisation_lower_cases_drops_punctuation_and_folds_spaces()
    {
        Assert.Equal("hello world", WordTokenizer.Canonicalize("  Hello,\t  WORLD!! "));
        Assert.Equal("topleft", WordTokenizer.Canonicalize("top-left")); // removed, not replaced by a space (as SigLIP)
        Assert.Equal("", WordTokenizer.Canonicalize("..."));
    }

    [Fact]
    public void Bad_vocabulary_entries_are_rejected_by_name()
    {
        Assert.Contains("'two words'", Assert.Throws<ArgumentException>(() => new WordTokenizer(["ok", "two words"])).Message);
        Assert.Contains("'!!'", Assert.Throws<ArgumentException>(() => new WordTokenizer(["!!"])).Message);
    }

    [Fact]
    public void The_built_in_vocabulary_covers_every_caption_and_prompt()
    {
        var tokenizer = WordTokenizer.ForShapes();
        var all = new ShapesDataset(new ShapesDatasetOptions(ColourCount: 6, ShapeCount: 6));
        var texts = all.Take(4, 600).Select(e => e.Caption)
            .Concat(all.AllClassNames.SelectMany(c => ShapesDataset.PromptTemplates.Select(t => t.Replace("{}", c))))
            .ToList();
        int length = ShapesVocabulary.RecommendedTextLength;
        var ids = tokenizer.Encode(texts, length);
        for (int b = 0; b < texts.Count; b++)
        {
            var row = Enumerable.Range(0, length).Select(t => ids[b, t]).ToArray();
            Assert.DoesNotContain(WordTokenizer.UnknownId, row);
            Assert.Equal(WordTokenizer.EndId, row[^1]);
            Assert.Equal(texts[b], tokenizer.Decode(row)); // fits without truncation
        }
    }

    /// <summary>
    /// Random texts of vocabulary words with random case and punctuation, random lengths: every
    /// row is exactly maxLength long, ends with the end token, is end tokens from the first end
    /// token on, and decodes to the first maxLength-1 words.
    /// </summary>
    [Fact]
    public void Encoding_pads_truncates_and_round_trips()
    {
        var tokenizer = WordTokenizer.ForShapes();
        var words = ShapesVocabulary.Words.ToArray();
        var wordGen = from w in Gen.Elements(words)
                      from upper in Gen.Elements(false, true)
                      from punctuation in Gen.Elements("", "", ",", "!", ".", "'")
                      select (upper ? w.ToUpperInvariant() : w) + punctuation;
        var gen = from n in Gen.Choose(0, 14)
                  from text in wordGen.ArrayOf(n)
                  from maxLength in Gen.Choose(1, 18)
                  select (Text: text, MaxLength: maxLength);
        Props.Check(gen, c =>
        {
            string text = string.Join("  ", c.Text);
            var row = tokenizer.EncodeOne(text, c.MaxLength);
            int firstEnd = row.ToList().IndexOf(WordTokenizer.EndId);
            var expectedWords = c.Text.Select(WordTokenizer.Canonicalize).Take(c.MaxLength - 1);
            return row.Count == c.MaxLength
                && row[^1] == WordTokenizer.EndId
                && row.Skip(firstEnd).All(id => id == WordTokenizer.EndId)
                && firstEnd == Math.Min(c.Text.Length, c.MaxLength - 1)
                && !row.Contains(WordTokenizer.UnknownId)
                && tokenizer.Decode(row) == string.Join(' ', expectedWords);
        }, seed: 20260601UL, output: output, maxTest: 200);
    }

    [Fact]
    public void A_batch_is_its_rows_encoded_one_by_one()
    {
        var tokenizer = WordTokenizer.ForShapes();
        string[] texts = ["a red circle", "there is a blue square at the top left corner today", ""];
        var batch = tokenizer.Encode(texts, 6);
        Assert.Equal(3, batch.Batch);
        Assert.Equal(6, batch.Length);
        for (int b = 0; b < texts.Length; b++)
            Assert.Equal(tokenizer.EncodeOne(texts[b], 6), Enumerable.Range(0, 6).Select(t => batch[b, t]));
    }
}
