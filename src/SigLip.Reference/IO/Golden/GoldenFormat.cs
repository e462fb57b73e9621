using System.Globalization;
using SigLip.Reference.Backends;
using SigLip.Reference.Numerics;

namespace SigLip.Reference.IO.Golden;

/// <summary>
/// The layout of a golden case folder (the layout of ../shared/fixtures/hf-siglip-tiny):
/// <list type="bullet">
/// <item><c>expected.safetensors</c> (always): the inputs, the expected outputs and gradients,
///   float64. Its "__metadata__" says how to run the case (keys below); a file without them (the HF
///   fixture) is a full-model case: dense sigmoid loss, no tower locked, L2 epsilon 0.</item>
/// <item>Model cases: <c>config.json</c> (HF SiglipConfig) and the parameters, either
///   <c>model.safetensors</c> or, where they would be too large to keep, <c>weights.json</c> naming
///   the seed of <see cref="GoldenRandom.Parameters"/>. Inputs: <c>input_ids</c> (I64 [B, L]) and
///   <c>pixel_values</c> ([B, C, S, S]). Expected: outputs under HF's names
///   (<see cref="OutputNames"/>) and <c>grad.&lt;parameter&gt;</c>; a large gradient may instead be
///   checked on a fixed sample of its elements: <c>grad_sample.&lt;parameter&gt;</c> [K] with
///   <c>grad_sample_index.&lt;parameter&gt;</c> (I64 [K], flat row-major indices).</item>
/// <item>Loss cases: inputs <c>image_embeds</c>, <c>text_embeds</c> (UNnormalised [n, d]),
///   <c>logit_scale</c> [1] (t'), <c>logit_bias</c> [1] (b); expected <c>loss</c> [1] and
///   <c>grad.image_embeds</c>, <c>grad.text_embeds</c>, <c>grad.logit_scale</c>, <c>grad.logit_bias</c>.</item>
/// </list>
/// </summary>
public static class GoldenFormat
{
    /// <summary>The "format" metadata value of this layout.</summary>
    public const string FormatVersion = "siglip-golden/1";
    /// <summary>Bump when the generator's cases or numbers change on purpose.</summary>
    public const string GeneratorVersion = "1";
    /// <summary>The file every case folder holds: inputs, expected outputs and gradients.</summary>
    public const string ExpectedFile = "expected.safetensors";
    /// <summary>The file beside the cases listing them with sha256 sums and the per-dtype tolerances.</summary>
    public const string ManifestFile = "manifest.json";
    /// <summary>A model case's seeded parameters (see <see cref="SeededWeights"/>), instead of model.safetensors.</summary>
    public const string WeightsSpecFile = "weights.json";
    /// <summary>Prefix of a sampled gradient's values.</summary>
    public const string GradSamplePrefix = "grad_sample.";
    /// <summary>Prefix of a sampled gradient's flat indices.</summary>
    public const string GradSampleIndexPrefix = "grad_sample_index.";

    // expected.safetensors "__metadata__" keys.
    /// <summary>Metadata key: the layout's version (<see cref="FormatVersion"/>).</summary>
    public const string KeyFormat = "format";
    /// <summary>Metadata key: "model" or "loss".</summary>
    public const string KeyKind = "kind";            // "model" | "loss"
    /// <summary>Metadata key: "none", "image" or "text".</summary>
    public const string KeyLocked = "locked";        // "none" | "image" | "text"
    /// <summary>Metadata key: "sigmoid" or "softmax".</summary>
    public const string KeyLoss = "loss";            // "sigmoid" | "softmax"
    /// <summary>Metadata key: D of the chunked sigmoid loss ("1" = dense).</summary>
    public const string KeyChunks = "chunks";        // D of the chunked sigmoid loss, "1" = dense
    /// <summary>Metadata key: the epsilon of the L2 normalisation.</summary>
    public const string KeyNormEpsilon = "norm_epsilon";
    /// <summary>Metadata key: what the case is there to catch, in words.</summary>
    public const string KeyCovers = "covers";

    /// <summary>The input tensors of a model case.</summary>
    public static readonly IReadOnlyList<string> ModelInputs = ["input_ids", "pixel_values"];
    /// <summary>The input tensors of a loss case.</summary>
    public static readonly IReadOnlyList<string> LossInputs = ["image_embeds", "text_embeds", "logit_scale", "logit_bias"];

    /// <summary>A float64 written so that it reads back exactly (round-trip "R", invariant culture).</summary>
    public static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>The metadata text of <paramref name="locked"/>.</summary>
    public static string LockedName(LockedTowers locked) => locked switch
    {
        LockedTowers.None => "none",
        LockedTowers.Image => "image",
        LockedTowers.Text => "text",
        _ => "image,text",
    };

    /// <summary>Parses the "locked" metadata value of <paramref name="file"/>; anything else throws <see cref="InputFormatException"/> naming the file.</summary>
    public static LockedTowers ParseLocked(string text, string file) => text.Trim().ToLowerInvariant() switch
    {
        "" or "none" => LockedTowers.None,
        "image" => LockedTowers.Image,
        "text" => LockedTowers.Text,
        "image,text" => LockedTowers.Image | LockedTowers.Text,
        _ => throw new InputFormatException($"{file}: metadata locked '{JsonInputErrors.OneLine(text)}' is not one of none, image, text, image,text.", file),
    };
}

/// <summary>
/// An allowance for one dtype: an element passes when |a - e| &lt;= atol + rtol |e|. With
/// <paramref name="AtolRelativeToMaxAbs"/>, atol is multiplied by the tensor's largest |e|, so that
/// it scales with the tensor (gradients range over many magnitudes across parameters). A tensor
/// that is zero up to float64 rounding (its largest |e| below <see cref="NegligibleRelative"/> times
/// the largest |e| of its group in the case, e.g. the key bias gradients, which attention's softmax
/// makes exactly zero) is held to atol times the group's scale instead: its expected values are
/// rounding noise, and so are the backend's.
/// </summary>
/// <param name="Atol">Absolute allowance (times the tensor's largest |e| when relative).</param>
/// <param name="Rtol">Relative allowance.</param>
/// <param name="AtolRelativeToMaxAbs">Whether atol scales with the tensor.</param>
/// <param name="Why">The reasoning behind the numbers, as manifest.json states it.</param>
public sealed record GoldenTolerance(double Atol, double Rtol, bool AtolRelativeToMaxAbs, string Why)
{
    /// <summary>Below this fraction of its group's scale, a tensor counts as zero (float64 noise is ~1e-16 relative).</summary>
    public const double NegligibleRelative = 1e-9;

    /// <summary>The largest |value| among the finite elements of <paramref name="t"/> (0 if none).</summary>
    public static double MaxAbs(Tensor t)
    {
        double max = 0;
        foreach (var v in t.Data) if (double.IsFinite(v)) max = Math.Max(max, Math.Abs(v));
        return max;
    }

    /// <param name="groupScale">The largest |e| over the tensor's group in the case (all gradients, or all outputs).</param>
    public Tolerance For(Tensor expected, double groupScale = 0)
    {
        if (!AtolRelativeToMaxAbs) return new Tolerance(Atol, Rtol);
        double max = MaxAbs(expected);
        double scale = max < NegligibleRelative * groupScale ? groupScale : max;
        // Never exactly zero, so an all-zero tensor still compares sensibly.
        return new Tolerance(Math.Max(Atol * scale, 1e-300), Rtol);
    }

    /// <summary>
    /// Whether this allows more than <paramref name="other"/> anywhere: a larger atol or rtol, or an
    /// atol scaled by the tensor's largest |e| where <paramref name="other"/>'s is absolute.
    /// </summary>
    public bool IsLooserThan(GoldenTolerance other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Atol > other.Atol || Rtol > other.Rtol || (AtolRelativeToMaxAbs && !other.AtolRelativeToMaxAbs);
    }

    /// <summary>
    /// (2L + 2) u for bfloat16 (u = 2^-8) and the deepest golden cases (L = 3 layers): 8 * 2^-8 = 2^-5,
    /// the a-priori count of successive roundings on a first-layer gradient (see the "why" text).
    /// </summary>
    public const double BFloat16RoundingBound = (2 * 3 + 2) / 256.0;

    /// <summary>The tolerances used when a folder has no manifest (and written into the generated one); a manifest may tighten them, not loosen them.</summary>
    public static IReadOnlyDictionary<string, GoldenTolerance> Defaults { get; } = new Dictionary<string, GoldenTolerance>
    {
        ["float64"] = new(1e-11, 1e-9, false,
            "The bound of the encoders issue for float64 against HF transformers. Both sides round at 1.1e-16 per operation; " +
            "the deepest case (a few layers, sums of at most 3072 terms) loses at most a few hundred ulps, i.e. ~1e-13 relative, so 1e-9 leaves room for different summation orders but not for a real bug."),
        ["float32"] = new(1e-5, 1e-4, true,
            "float32 rounds at u = 6e-8. A dot product of K terms (K <= 3072 here) is off by about sqrt(K) u (~3e-6) relative to the sum of |terms| " +
            "(K u = 2e-4 in the very worst case); LayerNorm, softmax, GELU and the log-sigmoid are well conditioned and add a few u each. Outputs therefore agree to ~1e-5 relative; rtol 1e-4 allows " +
            "a factor of ~10 for depth and for gradients. A gradient element that is a near-cancelling sum has a small |e| but an error set by the size of its terms, so atol is 1e-5 times the tensor's largest |e|. " +
            "A tensor that is exactly zero in exact arithmetic (the key-projection bias gradients: softmax ignores a shift shared by a row) holds only rounding noise (~1e-17 in float64, ~1e-8 in float32); " +
            "when its largest |e| is below 1e-9 of the largest |e| among the case's gradients (or outputs), atol is 1e-5 times that larger scale."),
        ["bfloat16"] = new(BFloat16RoundingBound, BFloat16RoundingBound, true,
            "Mixed precision: matmul and attention inputs rounded to bfloat16 (8 significant bits: unit roundoff u = 2^-8 = 3.9e-3), accumulation and LayerNorm, softmax and loss in float32. " +
            "Every layer rounds its matmul operands once forward and once backward, and the embedding and the head add one rounding each, so a gradient of the first of L layers " +
            "carries at most 2L + 2 successive relative roundings of size u; to first order their effects add, giving (2L + 2) u of the tensor's scale. For the deepest cases here (L = 3) " +
            "that is 8 u = 2^-5 = 3.125e-2 in the worst case (about a third of that typically). atol is 3.125e-2 of the tensor's largest |e| and rtol 3.125e-2: bfloat16's rounding passes, " +
            "a wrong formula (errors of order one) does not. The bound comes from this count alone, not from a measurement. Check only: the TorchSharp CPU backend in bfloat16 " +
            "passes every case, its worst element using 0.78 of its allowance (hf-siglip-tiny, gradient of text layer 0's LayerNorm bias, which nearly cancels)."),
    };
}
