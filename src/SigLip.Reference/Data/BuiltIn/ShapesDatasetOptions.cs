namespace SigLip.Reference.Data.BuiltIn;

/// <summary>Which part of the built-in data to draw.</summary>
public enum ShapesSplit
{
    /// <summary>Training images: only the colour-shape combinations that are not held out.</summary>
    Train,
    /// <summary>Fresh images (new positions, sizes, colours' jitter and noise) of the training combinations.</summary>
    Test,
    /// <summary>Images of the held-out combinations only, which training never shows.</summary>
    Unseen,
}

/// <summary>
/// Settings of <see cref="ShapesDataset"/>. The defaults are the built-in task: 16x16 RGB images,
/// 4 colours x 4 shapes, the diagonal of that grid held out of training.
/// </summary>
/// <param name="ImageSize">Side length in pixels (at least 8).</param>
/// <param name="Split">Train, test or unseen (held-out combinations).</param>
/// <param name="ColourCount">How many colours of <see cref="ShapesVocabulary.Colours"/> to use, from the first (1..6).</param>
/// <param name="ShapeCount">How many shapes of <see cref="ShapesVocabulary.Shapes"/> to use, from the first (1..6).</param>
/// <param name="NoiseStd">Standard deviation of the Gaussian pixel noise, in [-1, 1] pixel units.</param>
/// <param name="BackgroundTint">Largest per-channel tint of the grey background, in [0, 1] colour units.</param>
/// <param name="ColourJitter">Largest per-channel change of the shape's colour, in [0, 1] colour units.</param>
/// <param name="HoldOutCombinations">Hold the combinations with shape index == colour index mod ShapeCount out of training.</param>
public sealed record ShapesDatasetOptions(
    int ImageSize = 16,
    ShapesSplit Split = ShapesSplit.Train,
    int ColourCount = 4,
    int ShapeCount = 4,
    double NoiseStd = 0.08,
    double BackgroundTint = 0.12,
    double ColourJitter = 0.08,
    bool HoldOutCombinations = true)
{
    /// <summary>The defaults: 16x16 pixels, 4 colours x 4 shapes, the training split.</summary>
    public static ShapesDatasetOptions Default { get; } = new();

    /// <summary>Parses "train", "test" or "unseen" (any case); other text throws naming the choices.</summary>
    public static ShapesSplit ParseSplit(string text) => text.Trim().ToLowerInvariant() switch
    {
        "train" => ShapesSplit.Train,
        "test" => ShapesSplit.Test,
        "unseen" => ShapesSplit.Unseen,
        _ => throw new ArgumentException($"Unknown built-in data split '{text}'; use train, test or unseen."),
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the setting that cannot work.</summary>
    public void Validate()
    {
        if (ImageSize < 8) throw new ArgumentException($"ShapesDatasetOptions.ImageSize must be at least 8 pixels, got {ImageSize}.");
        if (ColourCount < 1 || ColourCount > ShapesVocabulary.Colours.Count)
            throw new ArgumentException($"ShapesDatasetOptions.ColourCount must be 1..{ShapesVocabulary.Colours.Count}, got {ColourCount}.");
        if (ShapeCount < 1 || ShapeCount > ShapesVocabulary.Shapes.Count)
            throw new ArgumentException($"ShapesDatasetOptions.ShapeCount must be 1..{ShapesVocabulary.Shapes.Count}, got {ShapeCount}.");
        if (HoldOutCombinations && (ColourCount < 2 || ShapeCount < 2))
            throw new ArgumentException($"Holding combinations out needs at least 2 colours and 2 shapes (got {ColourCount} x {ShapeCount}), so every colour and shape still appears in training.");
        if (!HoldOutCombinations && Split == ShapesSplit.Unseen)
            throw new ArgumentException("The unseen split needs HoldOutCombinations = true: with nothing held out there are no unseen combinations.");
        if (!(NoiseStd >= 0) || double.IsInfinity(NoiseStd)) throw new ArgumentException($"ShapesDatasetOptions.NoiseStd must be finite and >= 0, got {NoiseStd}.");
        if (!(BackgroundTint >= 0 && BackgroundTint <= 0.5)) throw new ArgumentException($"ShapesDatasetOptions.BackgroundTint must be in [0, 0.5], got {BackgroundTint}.");
        if (!(ColourJitter >= 0 && ColourJitter <= 0.3)) throw new ArgumentException($"ShapesDatasetOptions.ColourJitter must be in [0, 0.3], got {ColourJitter}.");
    }
}

/// <summary>A colour of the palette: its caption word and its RGB in [0, 1].</summary>
/// <param name="Name">The caption word, e.g. "red".</param>
/// <param name="Red">Red in [0, 1].</param>
/// <param name="Green">Green in [0, 1].</param>
/// <param name="Blue">Blue in [0, 1].</param>
public sealed record ShapeColour(string Name, double Red, double Green, double Blue);

/// <summary>
/// Every word the built-in captions and prompts can use. The lists are fixed (not cut by the
/// options) so token ids never depend on the settings.
/// </summary>
public static class ShapesVocabulary
{
    /// <summary>Saturated colours, far apart in RGB, none starting with a vowel (so "a {colour}" reads right).</summary>
    public static IReadOnlyList<ShapeColour> Colours { get; } =
    [
        new("red", 0.90, 0.10, 0.10),
        new("green", 0.10, 0.80, 0.15),
        new("blue", 0.15, 0.25, 0.95),
        new("yellow", 0.95, 0.90, 0.10),
        new("purple", 0.60, 0.15, 0.85),
        new("white", 0.95, 0.95, 0.95),
    ];

    /// <summary>Shape names; <see cref="ShapesPainter"/> defines each as a region of the unit square.</summary>
    public static IReadOnlyList<string> Shapes { get; } = ["circle", "square", "triangle", "cross", "diamond", "ring"];

    /// <summary>Size words: small radius is 17-23% of the image side, large 28-36% (a gap between, so the word is never borderline).</summary>
    public static IReadOnlyList<string> Sizes { get; } = ["small", "large"];

    /// <summary>
    /// Position phrases for the 3x3 grid of image thirds the shape's centre falls in, row by row
    /// (top row first).
    /// </summary>
    public static IReadOnlyList<string> Positions { get; } =
    [
        "at the top left", "at the top", "at the top right",
        "on the left", "in the center", "on the right",
        "at the bottom left", "at the bottom", "at the bottom right",
    ];

    /// <summary>Caption templates; {size}, {colour}, {shape} and {position} are filled in per image.</summary>
    public static IReadOnlyList<string> CaptionTemplates { get; } =
    [
        "a {colour} {shape}",
        "a photo of a {colour} {shape}",
        "a {size} {colour} {shape}",
        "a {colour} {shape} {position}",
        "a {size} {colour} {shape} {position}",
        "a picture of a {size} {shape} that is {colour}",
        "there is a {colour} {shape} {position}",
        "an image of a {size} {colour} {shape}",
    ];

    /// <summary>Zero-shot prompt templates; {} is the class name, e.g. "red circle".</summary>
    public static IReadOnlyList<string> PromptTemplates { get; } =
    [
        "a photo of a {}",
        "a {}",
        "a picture of a {}",
        "an image of a {}",
    ];

    /// <summary>Every distinct word of the lists above, in ordinal order.</summary>
    public static IReadOnlyList<string> Words { get; } = CollectWords();

    /// <summary>The longest possible caption or prompt, in words.</summary>
    public static int MaxCaptionWords { get; } = LongestText();

    /// <summary>Token length that holds every caption plus the end token.</summary>
    public static int RecommendedTextLength => MaxCaptionWords + 1;

    private static IReadOnlyList<string> CollectWords()
    {
        var texts = new List<string>();
        texts.AddRange(Colours.Select(c => c.Name));
        texts.AddRange(Shapes);
        texts.AddRange(Sizes);
        texts.AddRange(Positions);
        texts.AddRange(CaptionTemplates.Concat(PromptTemplates).Select(StripSlots));
        return texts.SelectMany(t => t.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Distinct(StringComparer.Ordinal).OrderBy(w => w, StringComparer.Ordinal).ToArray();
    }

    private static string StripSlots(string template) =>
        template.Replace("{size}", " ").Replace("{colour}", " ").Replace("{shape}", " ").Replace("{position}", " ").Replace("{}", " ");

    private static int LongestText()
    {
        static int Words(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        int longestPosition = Positions.Max(Words);
        int captions = CaptionTemplates.Max(t => Words(StripSlots(t))
            + (t.Contains("{size}") ? 1 : 0) + (t.Contains("{colour}") ? 1 : 0) + (t.Contains("{shape}") ? 1 : 0)
            + (t.Contains("{position}") ? longestPosition : 0));
        int prompts = PromptTemplates.Max(t => Words(StripSlots(t)) + 2);
        return Math.Max(captions, prompts);
    }
}
