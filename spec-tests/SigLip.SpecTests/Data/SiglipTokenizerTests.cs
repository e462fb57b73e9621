using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.ML.Tokenizers;
using SigLip.Data;
using SigLip.Data.Text;
using SigLip.Reference.IO;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Data;

/// <summary>
/// SiglipTokenizer against ../shared/fixtures/sentencepiece-tiny (ids from sentencepiece itself and from
/// HF transformers' SiglipTokenizer), plus properties for texts without a reference output.
/// </summary>
public sealed class SiglipTokenizerTests(ITestOutputHelper output)
{
    private static readonly Lazy<SiglipTokenizer> TinyLazy = new(() => SiglipTokenizer.Load(SpiecePath));
    private static string SpiecePath => Path.Combine(RepoPaths.Fixture("sentencepiece-tiny"), "spiece.model");
    private static SiglipTokenizer Tiny => TinyLazy.Value;

    private sealed record Expected(string[] Texts, int[][] SentencePieceIds, int[][] HfIds16);

    private static Expected ReadExpected()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.Fixture("sentencepiece-tiny"), "expected.json")));
        var root = doc.RootElement;
        string[] texts = root.GetProperty("texts").EnumerateArray().Select(e => e.GetString()!).ToArray();
        int[][] Rows(string name) => root.GetProperty(name).EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray();
        return new Expected(texts, Rows("sentencepiece_ids"), Rows("hf_siglip_input_ids_max_length_16"));
    }

    private static string Show(IEnumerable<int> ids) => "[" + string.Join(", ", ids) + "]";

    [Fact]
    public void Reproduces_hf_siglip_tokenizer_ids_at_max_length_16()
    {
        var e = ReadExpected();
        var ids = Tiny.Encode(e.Texts, 16);
        for (int b = 0; b < e.Texts.Length; b++)
        {
            var row = Enumerable.Range(0, 16).Select(t => ids[b, t]).ToArray();
            output.WriteLine($"{JsonSerializer.Serialize(e.Texts[b])} -> {Show(row)}");
            Assert.True(e.HfIds16[b].SequenceEqual(row), $"text {b} {JsonSerializer.Serialize(e.Texts[b])}: expected {Show(e.HfIds16[b])}, got {Show(row)}");
        }
    }

    [Fact]
    public void Reproduces_plain_sentencepiece_ids_including_merged_unknown_runs()
    {
        var e = ReadExpected();
        for (int b = 0; b < e.Texts.Length; b++)
        {
            var ids = Tiny.EncodeSentencePiece(e.Texts[b]);
            Assert.True(e.SentencePieceIds[b].SequenceEqual(ids), $"text {b} {JsonSerializer.Serialize(e.Texts[b])}: expected {Show(e.SentencePieceIds[b])}, got {Show(ids)}");
        }
    }

    [Fact]
    public void The_library_still_needs_both_workarounds()
    {
        // If Microsoft.ML.Tokenizers is upgraded and this fails, the workarounds in SiglipTokenizer can go.
        byte[] raw = File.ReadAllBytes(SpiecePath);
        Assert.Equal(-1, SentencePieceModelProto.Parse(raw).BosId);
        Assert.ThrowsAny<Exception>(() => SentencePieceTokenizer.Create(new MemoryStream(raw), false, false));
        byte[] patched = SentencePieceModelProto.WithVarintField(raw, SentencePieceModelProto.ModelTrainerSpecField, SentencePieceModelProto.TrainerBosIdField, 2);
        var lib = SentencePieceTokenizer.Create(new MemoryStream(patched), false, false);
        var libIds = lib.EncodeToIds("A photo of a BLUE star.", false, false);
        Assert.Equal(2, libIds.Count(id => id == Tiny.UnkId)); // "UE": one unknown per character
        Assert.Equal(1, Tiny.EncodeSentencePiece("A photo of a BLUE star.").Count(id => id == Tiny.UnkId));
        // Third finding: the library keeps a character the model's map deletes (U+0001) as an unknown.
        Assert.Contains(Tiny.UnkId, lib.EncodeToIds("a\u0001red", false, false));
        Assert.DoesNotContain(Tiny.UnkId, Tiny.EncodeSentencePiece("a\u0001red"));
    }

    [Fact]
    public void The_precompiled_charsmap_holds_the_nmt_nfkc_rules()
    {
        var map = new PrecompiledCharsMap(Tiny.Model.PrecompiledCharsMap, "spiece.model");
        string? Map(string s) => map.Lookup(System.Text.Encoding.UTF8.GetBytes(s), out _) is { } r ? System.Text.Encoding.UTF8.GetString(r) : null;
        Assert.Equal("r", Map("\uFF52"));      // NFKC: full-width r
        Assert.Equal(" ", Map("\t"));          // nmt: tab is a space
        Assert.Equal(" ", Map("\u2581"));      // nmt: U+2581 is a space (why HF's leading "▁" trick is harmless)
        Assert.Equal(" ", Map("\u00A0"));      // NFKC: no-break space
        Assert.Equal("", Map("\u0001"));       // nmt: control characters are deleted
        Assert.Equal("", Map("\u007F"));
        Assert.Null(Map("A"));                  // no rule: copied as is
        foreach (int cp in new[] { 0x01, 0x07, 0x08, 0x0E, 0x7F }) Assert.Contains(cp, Tiny.DeletedCharacters);
        foreach (int cp in new[] { 'a', 0x09, 0x20, 0x2581 }) Assert.DoesNotContain(cp, Tiny.DeletedCharacters);
    }

    [Fact]
    public void Protobuf_rewrite_changes_only_the_named_field()
    {
        byte[] raw = File.ReadAllBytes(SpiecePath);
        var before = SentencePieceModelProto.Parse(raw);
        var after = SentencePieceModelProto.Parse(SentencePieceModelProto.WithVarintField(raw, 2, SentencePieceModelProto.TrainerBosIdField, 7));
        Assert.Equal(7, after.BosId);
        Assert.Equal(before.EosId, after.EosId);
        Assert.Equal(before.UnkId, after.UnkId);
        Assert.Equal(before.PadId, after.PadId);
        Assert.Equal(before.Pieces, after.Pieces);
        var noPrefix = SentencePieceModelProto.Parse(SentencePieceModelProto.WithVarintField(raw, 3, SentencePieceModelProto.NormalizerAddDummyPrefixField, 0));
        Assert.True(before.AddDummyPrefix);
        Assert.False(noPrefix.AddDummyPrefix);
        Assert.Equal(before.NormalizerName, noPrefix.NormalizerName);
        Assert.Equal(90, before.Pieces.Count);
        Assert.Equal("nmt_nfkc", before.NormalizerName);
    }

    [Fact]
    public void Corrupt_model_files_are_rejected_with_the_file_name()
    {
        byte[] raw = File.ReadAllBytes(SpiecePath);
        var ex = Assert.Throws<InputFormatException>(() => SiglipTokenizer.FromBytes(raw[..(raw.Length / 2)], "half.model"));
        Assert.Contains("half.model", ex.Message);
        var ex2 = Assert.Throws<InputFormatException>(() => SiglipTokenizer.FromBytes("hello world, not a model"u8.ToArray(), "text.model"));
        Assert.Contains("text.model", ex2.Message);
        Assert.Throws<FileNotFoundException>(() => SiglipTokenizer.Load("/nonexistent/spiece.model"));
    }

    [Theory]
    [InlineData("A  RED,   circle!!", "a red circle")]
    [InlineData("a\tred\n\r\n circle", "a red circle")]
    [InlineData("   a red circle   ", "a red circle")]   // HF keeps "▁ a..." here; nmt_nfkc reads U+2581 as a space, so no extra piece
    [InlineData("\u3000a\u00A0red\u2003circle\u001F", "a red circle")]
    [InlineData("(a) [red] {circle}?", "a red circle")]
    [InlineData("A RED CIRCLE", "a red circle")]
    public void Canonicalisation_makes_texts_equal(string text, string same)
    {
        Assert.Equal(Tiny.EncodePieces(same), Tiny.EncodePieces(text));
    }

    [Fact]
    public void Canonicalise_follows_python_rules()
    {
        Assert.Equal("a b c", SiglipText.Canonicalize("  a,\t\u001Cb -- c. "));
        Assert.Equal("¿qué «tal»", SiglipText.Canonicalize("¿qué «tal»?")); // only ASCII punctuation goes
        Assert.Equal("a\u200Bb", SiglipText.Canonicalize("a\u200Bb"));    // U+200B is not whitespace in Python
        Assert.Equal("i\u0307stanbul", SiglipText.PythonLower("\u0130STANBUL"));
        Assert.Equal("\u03BF\u03B4\u03BF\u03C2", SiglipText.PythonLower("\u039F\u0394\u039F\u03A3"));      // final sigma
        Assert.Equal("\u03C3\u03B1", SiglipText.PythonLower("\u03A3\u0391"));                               // not final
        Assert.Equal("\U00010428", SiglipText.PythonLower("\U00010400"));                                   // astral (Deseret)
        Assert.Equal(32, SiglipText.PythonPunctuation.Length);
    }

    [Theory]
    [InlineData("ｒｅｄ ｃｉｒｃｌｅ", "red circle")]           // NFKC folds full-width forms (nmt_nfkc)
    [InlineData("ＲＥＤ　ＣＩＲＣＬＥ", "red circle")]
    [InlineData("cafe\u0301", "caf\u00E9")]                    // NFKC composes e + combining acute
    public void Nfkc_normalisation_of_the_library_is_applied(string text, string same)
    {
        Assert.Equal(Tiny.EncodePieces(same), Tiny.EncodePieces(text));
    }

    [Theory]
    [InlineData("日本語")]
    [InlineData("🙂🙃")]
    [InlineData("ÆØÅ")]
    [InlineData("\u0416\u0416")]
    public void A_run_of_unknown_characters_is_one_unknown(string word)
    {
        foreach (char c in word) Assert.DoesNotContain(Tiny.Model.Pieces, p => p.Piece.Contains(c)); // really unknown to this model
        var ids = Tiny.EncodePieces(word);
        output.WriteLine($"{word} -> {Show(ids)}");
        Assert.Equal(new[] { PieceId("▁"), Tiny.UnkId }, ids);
        var mixed = Tiny.EncodePieces($"a {word} red");
        Assert.Equal(Tiny.EncodePieces("a").Concat(new[] { PieceId("▁"), Tiny.UnkId }).Concat(Tiny.EncodePieces("red")), mixed);
    }

    [Fact]
    public void Empty_whitespace_and_punctuation_only_texts_are_all_end_tokens()
    {
        foreach (var text in new[] { "", " ", "\t\n", "...!?", " - , ", "\u3000" })
        {
            var row = Tiny.EncodeRow(text, 8);
            Assert.True(row.All(id => id == Tiny.EosId), $"{JsonSerializer.Serialize(text)} -> {Show(row)}");
        }
    }

    [Fact]
    public void Over_long_text_is_cut_so_that_the_end_token_stays_last()
    {
        string text = string.Join(" ", Enumerable.Repeat("a small red circle at the top left", 20));
        var full = Tiny.EncodePieces(text);
        Assert.True(full.Count > 64);
        foreach (int max in new[] { 1, 2, 5, 16, 64 })
        {
            var row = Tiny.EncodeRow(text, max);
            Assert.Equal(max, row.Length);
            Assert.Equal(Tiny.EosId, row[^1]);
            Assert.Equal(full.Take(max - 1), row.Take(max - 1));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => Tiny.EncodeRow(text, 0));
    }

    [Theory]
    [InlineData("a\u0001red circle", "ared circle")]       // deleted by the model's nmt_nfkc map, as sentencepiece does
    [InlineData("a red\u0007\u007F circle", "a red circle")]
    [InlineData("\u0008a red circle\u000E", "a red circle")]
    [InlineData("a\tred\u000Bcircle", "a red circle")]        // \t and \v are whitespace to Python: folded
    public void Control_characters_are_deleted_or_folded(string text, string same)
    {
        Assert.Equal(Tiny.EncodePieces(same), Tiny.EncodePieces(text));
    }

    [Fact]
    public void Control_characters_never_break_encoding()
    {
        var text = "a\u0000red\u0001circle\u0007\u001B[0m\u007F\u0085";
        var row = Tiny.EncodeRow(text, 32);
        output.WriteLine($"{Show(row)}");
        Assert.Equal(32, row.Length);
        Assert.Contains(Tiny.EosId, row);
        Assert.All(row, id => Assert.InRange(id, 0, Tiny.VocabSize - 1));
    }

    /// <summary>Any text: a row of max_length valid ids, &lt;/s&gt; after the pieces then only &lt;/s&gt;, no two adjacent unknowns, the same twice.</summary>
    [Fact]
    public void Rows_have_the_promised_shape_for_any_text()
    {
        string alphabet = "abc XYZ,.!\t\n\u0000\u0007éüßÆ日本🙂\u3000\u00A0\u2581\u0301ｒＲ-_'\"İΣ";
        var runes = alphabet.EnumerateRunes().Select(r => r.ToString()).ToArray();
        var gen = Gen.Choose(0, runes.Length - 1).ArrayOf().Select(ix => string.Concat(ix.Select(i => runes[i])))
            .SelectMany(s => Gen.Choose(1, 24), (s, max) => (Text: s, Max: max));
        Props.Check(gen, c =>
        {
            var pieces = Tiny.EncodePieces(c.Text);
            var row = Tiny.EncodeRow(c.Text, c.Max);
            int n = Math.Min(pieces.Count, c.Max - 1);
            bool ok = row.Length == c.Max
                && row.Take(n).SequenceEqual(pieces.Take(n))
                && row.Skip(n).All(id => id == Tiny.EosId)
                && row.All(id => id >= 0 && id < Tiny.VocabSize)
                && !pieces.Contains(Tiny.EosId)
                && !pieces.Zip(pieces.Skip(1)).Any(p => p.First == Tiny.UnkId && p.Second == Tiny.UnkId)
                && Tiny.EncodeRow(c.Text, c.Max).SequenceEqual(row);
            if (!ok) output.WriteLine($"failed: {JsonSerializer.Serialize(c.Text)} max {c.Max} -> {Show(row)}");
            return ok;
        }, seed: 20261127UL, output, maxTest: 300);
    }

    [Fact]
    public void Merge_unknown_runs_merges_only_adjacent_unknowns()
    {
        Assert.Equal(new[] { 3, 5, 3, 7 }, SiglipTokenizer.MergeUnknownRuns([3, 3, 5, 3, 3, 3, 7], 3));
        Assert.Equal(new[] { 5, 5 }, SiglipTokenizer.MergeUnknownRuns([5, 5], 3));
        Assert.Empty(SiglipTokenizer.MergeUnknownRuns([], 3));
    }

    private static int PieceId(string piece)
    {
        for (int i = 0; i < Tiny.Model.Pieces.Count; i++) if (Tiny.Model.Pieces[i].Piece == piece) return i;
        throw new InvalidOperationException($"piece {piece} not in the model");
    }
}

[Collection("Console")]
public sealed class TokenizeCommandTests
{
    [Fact]
    public void Siglip_tokenize_prints_the_hf_ids_one_json_array_per_line_in_order()
    {
        string dir = RepoPaths.Fixture("sentencepiece-tiny");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")));
        var texts = doc.RootElement.GetProperty("texts").EnumerateArray().Select(e => e.GetString()!).ToArray();
        var expected = doc.RootElement.GetProperty("hf_siglip_input_ids_max_length_16").EnumerateArray()
            .Select(r => r.EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray();
        var (code, stdout, stderr) = CliRunner.Run(["tokenize", "--model", Path.Combine(dir, "spiece.model"), "--max-length", "16", .. texts]);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith('[')).ToArray();
        Assert.Equal(texts.Length, lines.Length);
        for (int i = 0; i < texts.Length; i++)
            Assert.Equal(expected[i], JsonSerializer.Deserialize<int[]>(lines[i]));
    }

    [Fact]
    public void Siglip_tokenize_sentencepiece_prints_plain_sentencepiece_ids()
    {
        string dir = RepoPaths.Fixture("sentencepiece-tiny");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")));
        var texts = doc.RootElement.GetProperty("texts").EnumerateArray().Select(e => e.GetString()!).ToArray();
        var expected = doc.RootElement.GetProperty("sentencepiece_ids").EnumerateArray()
            .Select(r => r.EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray();
        var (code, stdout, stderr) = CliRunner.Run(["tokenize", "--model", Path.Combine(dir, "spiece.model"), "--sentencepiece", .. texts]);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith('[')).ToArray();
        Assert.Equal(texts.Length, lines.Length);
        for (int i = 0; i < texts.Length; i++)
            Assert.Equal(expected[i], JsonSerializer.Deserialize<int[]>(lines[i]));
    }

    [Fact]
    public void Siglip_tokenize_reports_a_missing_model_and_exits_1()
    {
        var (code, _, stderr) = CliRunner.Run("tokenize", "--model", "/nonexistent/spiece.model", "--max-length", "16", "a cat");
        Assert.Equal(1, code);
        Assert.Contains("/nonexistent/spiece.model", stderr);
    }
}
