using System.Globalization;
using System.Text;

namespace SigLip.Data.Text;

/// <summary>
/// SigLIP's text rules that sit before SentencePiece, as HF transformers' SiglipTokenizer (after
/// big_vision's prompt_engineering.canonicalize_text) applies them, reproduced with Python's
/// character classes rather than .NET's where the two differ:
/// <list type="bullet">
/// <item>lower-case as Python's <c>str.lower()</c> (full mapping: U+0130 becomes "i" + U+0307; a final
/// capital sigma becomes U+03C2);</item>
/// <item>remove the 32 ASCII characters of Python's <c>string.punctuation</c> (no other punctuation:
/// "¿", "«" or "。" stay);</item>
/// <item>fold each run of Python whitespace (<c>str.isspace</c>, e.g. U+001C..U+001F and U+3000, but not
/// U+200B) into one space, then strip it from both ends.</item>
/// </list>
/// </summary>
public static class SiglipText
{
    /// <summary>Python's <c>string.punctuation</c>.</summary>
    public const string PythonPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    /// <summary>SentencePiece's whitespace symbol U+2581.</summary>
    public const char SpaceSymbol = '\u2581';

    /// <summary>Python's <c>str.isspace()</c> for one UTF-16 unit (every Python whitespace is in the BMP).</summary>
    public static bool IsPythonWhitespace(char c) => c switch
    {
        >= '\u0009' and <= '\u000D' => true,
        >= '\u001C' and <= '\u001F' => true,
        ' ' or '\u0085' or '\u00A0' or '\u1680' => true,
        >= '\u2000' and <= '\u200A' => true,
        '\u2028' or '\u2029' or '\u202F' or '\u205F' or '\u3000' => true,
        _ => false,
    };

    public static bool IsPythonPunctuation(char c) => c < 128 && PythonPunctuation.Contains(c);

    /// <summary>Punctuation removed, whitespace runs folded to one space, stripped (canonicalize_text).</summary>
    public static string Canonicalize(string text)
    {
        var sb = new StringBuilder(text.Length);
        bool pendingSpace = false;
        foreach (char c in text)
        {
            if (IsPythonPunctuation(c)) continue;
            if (IsPythonWhitespace(c)) { pendingSpace = true; continue; }
            if (pendingSpace && sb.Length > 0) sb.Append(' ');
            pendingSpace = false;
            sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>Python's <c>str.lower()</c>: Unicode lower-casing with its two context rules.</summary>
    public static string PythonLower(string text)
    {
        var sb = new StringBuilder(text.Length);
        int i = 0;
        while (i < text.Length)
        {
            var status = Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out int used);
            if (status != System.Buffers.OperationStatus.Done) { sb.Append(text[i]); i++; continue; }
            if (rune.Value == 0x0130) sb.Append("i\u0307");
            else if (rune.Value == 0x03A3) sb.Append(IsFinalSigma(text, i) ? '\u03C2' : '\u03C3');
            else sb.Append(Rune.ToLowerInvariant(rune).ToString());
            i += used;
        }
        return sb.ToString();
    }

    // Unicode's Final_Sigma: a cased letter before (skipping case-ignorable ones), none after.
    private static bool IsFinalSigma(string s, int at)
    {
        int j = at - 1;
        while (j >= 0 && IsCaseIgnorable(s[j])) j--;
        if (j < 0 || !IsCased(s[j])) return false;
        j = at + 1;
        while (j < s.Length && IsCaseIgnorable(s[j])) j++;
        return j >= s.Length || !IsCased(s[j]);
    }

    private static bool IsCased(char c) => CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;

    private static bool IsCaseIgnorable(char c) =>
        c is '\'' or '.' or ':' or '^' or '`' or '\u00B7' or '\u2019' ||
        CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol;

    /// <summary>
    /// The text HF's SiglipTokenizer hands to SentencePiece (before its "&lt;unk&gt;" prefix trick):
    /// U+2581 inside the text becomes a space, U+2581 is put in front, then lower-case and canonicalise.
    /// </summary>
    public static string PrepareForSentencePiece(string text) =>
        Canonicalize(PythonLower(SpaceSymbol + text.Replace(SpaceSymbol, ' ')));
}
