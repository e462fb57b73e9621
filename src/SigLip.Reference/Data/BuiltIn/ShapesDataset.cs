namespace SigLip.Reference.Data.BuiltIn;

/// <summary>
/// What one built-in image shows: the drawn shape's class, caption words and geometry (pixel
/// coordinates, x right and y down, pixel (x, y) covering [x, x+1) x [y, y+1)).
/// </summary>
public sealed record ShapeScene(
    string Colour,
    string Shape,
    string Size,
    string Position,
    double CenterX,
    double CenterY,
    double Radius,
    string Caption)
{
    /// <summary>The class name, "colour shape", e.g. "red circle".</summary>
    public string ClassName => $"{Colour} {Shape}";
}

/// <summary>
/// The built-in procedural data: one coloured shape per image on a tinted grey background, with
/// noise, and a caption from a template ("a small red circle at the top left"). Generated on the
/// fly and deterministic: example i of a (seed, split) is the same on every machine, and can be
/// regenerated alone (<see cref="ExampleAt"/>). Endless.
/// <para>
/// Classes are colour x shape combinations ("red circle"). The combinations with
/// shape index == colour index mod ShapeCount (a diagonal of the grid) are held out of the train
/// and test splits; the unseen split shows only them. Class names: train and test list the
/// combinations they show; unseen lists EVERY combination, so zero-shot classification of an
/// unseen image must pick the right colour AND shape out of all of them.
/// </para>
/// <para>
/// Classes come in shuffled blocks: each run of <c>ClassNames.Count</c> consecutive examples of a
/// split shows each of its classes once, so any evaluation set of k * classes examples is balanced.
/// </para>
/// </summary>
public sealed class ShapesDataset : IImageTextSource
{
    private readonly (int Colour, int Shape)[] _combinations; // the classes this split draws from
    private readonly int _splitSalt;

    /// <summary>The data the options describe (null: <see cref="ShapesDatasetOptions.Default"/>, the training split).</summary>
    public ShapesDataset(ShapesDatasetOptions? options = null)
    {
        Options = options ?? ShapesDatasetOptions.Default;
        Options.Validate();
        var all = new List<(int, int)>();
        for (int c = 0; c < Options.ColourCount; c++)
            for (int s = 0; s < Options.ShapeCount; s++)
                all.Add((c, s));
        AllClassNames = all.Select(Name).ToArray();
        HeldOutClassNames = all.Where(IsHeldOut).Select(Name).ToArray();
        SeenClassNames = all.Where(cs => !IsHeldOut(cs)).Select(Name).ToArray();
        _combinations = Options.Split == ShapesSplit.Unseen ? all.Where(IsHeldOut).ToArray() : all.Where(cs => !IsHeldOut(cs)).ToArray();
        ClassNames = Options.Split == ShapesSplit.Unseen ? AllClassNames : SeenClassNames;
        _splitSalt = Options.Split switch { ShapesSplit.Train => 1, ShapesSplit.Test => 2, _ => 3 };
    }

    /// <summary>The options it was made with.</summary>
    public ShapesDatasetOptions Options { get; }

    /// <inheritdoc/>
    public string Description =>
        $"built-in shapes ({Options.Split.ToString().ToLowerInvariant()} split): {ImageSize}x{ImageSize} RGB, " +
        $"{Options.ColourCount} colours x {Options.ShapeCount} shapes, " +
        (Options.HoldOutCombinations ? $"held out of training: {string.Join(", ", HeldOutClassNames)}" : "nothing held out") +
        $"; noise std {Options.NoiseStd}";

    /// <inheritdoc/>
    public int ImageSize => Options.ImageSize;
    /// <summary>RGB: 3.</summary>
    public int Channels => 3;

    /// <summary>The class names this split is classified into (see the class summary).</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Every colour x shape combination of the options, colour-major.</summary>
    public IReadOnlyList<string> AllClassNames { get; }

    /// <summary>The combinations training shows.</summary>
    public IReadOnlyList<string> SeenClassNames { get; }

    /// <summary>The combinations training never shows (empty when nothing is held out).</summary>
    public IReadOnlyList<string> HeldOutClassNames { get; }

    /// <summary>Zero-shot prompt templates for this data ({} is the class name).</summary>
    public static IReadOnlyList<string> PromptTemplates => ShapesVocabulary.PromptTemplates;

    /// <summary>The word tokenizer covering every caption and prompt word.</summary>
    public static WordTokenizer CreateTokenizer() => WordTokenizer.ForShapes();

    /// <summary>Endless examples of this split, the same for the same seed on every machine.</summary>
    public IEnumerable<ImageTextExample> Examples(int seed)
    {
        for (long i = 0; ; i++) yield return ExampleAt(seed, i);
    }

    /// <summary>The first <paramref name="count"/> examples of <see cref="Examples"/>.</summary>
    public IReadOnlyList<ImageTextExample> Take(int seed, int count)
    {
        var list = new ImageTextExample[count];
        for (int i = 0; i < count; i++) list[i] = ExampleAt(seed, i);
        return list;
    }

    /// <summary>Example <paramref name="index"/> of the stream for <paramref name="seed"/>.</summary>
    public ImageTextExample ExampleAt(int seed, long index)
    {
        var (scene, pixels) = Generate(seed, index);
        return new ImageTextExample(new Tensor([3, ImageSize, ImageSize], pixels), scene.Caption, scene.ClassName);
    }

    /// <summary>What example <paramref name="index"/> shows, without drawing it.</summary>
    public ShapeScene SceneAt(int seed, long index) => Generate(seed, index, draw: false).Scene;

    private (ShapeScene Scene, double[] Pixels) Generate(int seed, long index, bool draw = true)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "Example index must be >= 0.");
        int k = _combinations.Length;
        var order = ShapesRandom.For(seed, _splitSalt, index / k, -1).Permutation(k);
        var (colourIndex, shapeIndex) = _combinations[order[(int)(index % k)]];
        var colour = ShapesVocabulary.Colours[colourIndex];
        string shape = ShapesVocabulary.Shapes[shapeIndex];

        var rng = ShapesRandom.For(seed, _splitSalt, index);
        string template = ShapesVocabulary.CaptionTemplates[rng.Next(ShapesVocabulary.CaptionTemplates.Count)];
        int sizeIndex = rng.Next(2);
        double side = ImageSize;
        double radius = side * (sizeIndex == 0 ? rng.Uniform(0.17, 0.23) : rng.Uniform(0.28, 0.36));
        // Every shape lies within radius of its centre, so this keeps it whole inside the image.
        double cx = rng.Uniform(radius, side - radius);
        double cy = rng.Uniform(radius, side - radius);
        int column = Math.Min(2, (int)(cx / (side / 3)));
        int row = Math.Min(2, (int)(cy / (side / 3)));
        string position = ShapesVocabulary.Positions[row * 3 + column];
        string size = ShapesVocabulary.Sizes[sizeIndex];
        string caption = template.Replace("{size}", size).Replace("{colour}", colour.Name)
            .Replace("{shape}", shape).Replace("{position}", position);
        var scene = new ShapeScene(colour.Name, shape, size, position, cx, cy, radius, caption);
        if (!draw) return (scene, []);

        double j = Options.ColourJitter;
        var shapeRgb = (Math.Clamp(colour.Red + rng.Uniform(-j, j), 0, 1),
                        Math.Clamp(colour.Green + rng.Uniform(-j, j), 0, 1),
                        Math.Clamp(colour.Blue + rng.Uniform(-j, j), 0, 1));
        // Dark grey so every palette colour (white included) stands out from it.
        double grey = rng.Uniform(0.08, 0.32);
        double t = Options.BackgroundTint;
        var backgroundRgb = (Math.Clamp(grey + rng.Uniform(-t, t), 0, 1),
                             Math.Clamp(grey + rng.Uniform(-t, t), 0, 1),
                             Math.Clamp(grey + rng.Uniform(-t, t), 0, 1));
        var pixels = ShapesPainter.Render(scene, ImageSize, shapeRgb, backgroundRgb, rng, Options.NoiseStd);
        return (scene, pixels);
    }

    private bool IsHeldOut((int Colour, int Shape) cs) => Options.HoldOutCombinations && cs.Shape == cs.Colour % Options.ShapeCount;

    private static string Name((int Colour, int Shape) cs) => $"{ShapesVocabulary.Colours[cs.Colour].Name} {ShapesVocabulary.Shapes[cs.Shape]}";
}
