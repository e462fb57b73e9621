using SigLip.Reference.Data;
using SigLip.Reference.Data.BuiltIn;

namespace SigLip.SpecTests.Data.BuiltIn;

public class ShapesDatasetTests
{
    private static readonly string[] DefaultColours = ["red", "green", "blue", "yellow"];
    private static readonly string[] DefaultShapes = ["circle", "square", "triangle", "cross"];

    private static void AssertSameExamples(IReadOnlyList<ImageTextExample> a, IReadOnlyList<ImageTextExample> b)
    {
        Assert.Equal(a.Count, b.Count);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Caption, b[i].Caption);
            Assert.Equal(a[i].ClassName, b[i].ClassName);
            Assert.Equal(a[i].Pixels.Shape, b[i].Pixels.Shape);
            for (int k = 0; k < a[i].Pixels.Size; k++)
                if (BitConverter.DoubleToInt64Bits(a[i].Pixels.Data[k]) != BitConverter.DoubleToInt64Bits(b[i].Pixels.Data[k]))
                    Assert.Fail($"example {i}, pixel {k}: {a[i].Pixels.Data[k]:R} != {b[i].Pixels.Data[k]:R}");
        }
    }

    [Theory]
    [InlineData(ShapesSplit.Train)]
    [InlineData(ShapesSplit.Test)]
    [InlineData(ShapesSplit.Unseen)]
    public void Same_seed_gives_identical_pixels_and_captions_from_separate_instances(ShapesSplit split)
    {
        var first = new ShapesDataset(new ShapesDatasetOptions(Split: split)).Examples(42).Take(40).ToList();
        var second = new ShapesDataset(new ShapesDatasetOptions(Split: split)).Take(42, 40);
        AssertSameExamples(first, second);
    }

    [Fact]
    public void Any_example_can_be_regenerated_alone()
    {
        var ds = new ShapesDataset();
        var streamed = ds.Examples(3).Skip(137).First();
        AssertSameExamples([streamed], [ds.ExampleAt(3, 137)]);
        Assert.Equal(streamed.Caption, ds.SceneAt(3, 137).Caption);
    }

    [Fact]
    public void Different_seeds_and_splits_give_different_images()
    {
        var ds = new ShapesDataset();
        var a = ds.Take(1, 50);
        var b = ds.Take(2, 50);
        var test = new ShapesDataset(new ShapesDatasetOptions(Split: ShapesSplit.Test)).Take(1, 50);
        for (int i = 0; i < 50; i++)
        {
            Assert.False(a[i].Pixels.Data.SequenceEqual(b[i].Pixels.Data), $"seeds 1 and 2 drew the same image at {i}");
            Assert.False(a[i].Pixels.Data.SequenceEqual(test[i].Pixels.Data), $"train and test drew the same image at {i}");
        }
        Assert.False(a.Select(e => e.Caption).SequenceEqual(b.Select(e => e.Caption)));
        Assert.False(a.Select(e => e.ClassName).SequenceEqual(b.Select(e => e.ClassName)));
    }

    [Fact]
    public void The_diagonal_of_the_colour_shape_grid_is_held_out()
    {
        var ds = new ShapesDataset();
        Assert.Equal(["red circle", "green square", "blue triangle", "yellow cross"], ds.HeldOutClassNames);
        Assert.Equal(16, ds.AllClassNames.Count);
        Assert.Equal(12, ds.SeenClassNames.Count);
        Assert.Equal(ds.SeenClassNames, ds.ClassNames);
        Assert.Equal(ds.AllClassNames, new ShapesDataset(new ShapesDatasetOptions(Split: ShapesSplit.Unseen)).ClassNames);
        // Every colour and every shape still appears in training, with other partners.
        foreach (var c in DefaultColours) Assert.Contains(ds.SeenClassNames, n => n.StartsWith(c + " ", StringComparison.Ordinal));
        foreach (var s in DefaultShapes) Assert.Contains(ds.SeenClassNames, n => n.EndsWith(" " + s, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(ShapesSplit.Train)]
    [InlineData(ShapesSplit.Test)]
    [InlineData(ShapesSplit.Unseen)]
    public void Captions_name_the_class_and_held_out_combinations_stay_out_of_training(ShapesSplit split)
    {
        var ds = new ShapesDataset(new ShapesDatasetOptions(Split: split));
        string[] heldOut = ["red circle", "green square", "blue triangle", "yellow cross"];
        var seenClasses = new HashSet<string>();
        foreach (var ex in ds.Take(11, 1200))
        {
            var words = ex.Caption.Split(' ');
            var colours = DefaultColours.Where(words.Contains).ToArray();
            var shapes = DefaultShapes.Where(words.Contains).ToArray();
            Assert.True(colours.Length == 1 && shapes.Length == 1, $"caption '{ex.Caption}' should name exactly one colour and one shape");
            string named = $"{colours[0]} {shapes[0]}";
            Assert.Equal(named, ex.ClassName);
            Assert.Equal(split == ShapesSplit.Unseen, heldOut.Contains(named));
            seenClasses.Add(named);
        }
        Assert.Equal(split == ShapesSplit.Unseen ? 4 : 12, seenClasses.Count);
    }

    [Fact]
    public void Each_block_of_class_count_examples_shows_every_class_once()
    {
        var ds = new ShapesDataset(new ShapesDatasetOptions(Split: ShapesSplit.Test));
        int k = ds.ClassNames.Count;
        var examples = ds.Take(5, k * 6);
        for (int block = 0; block < 6; block++)
            Assert.Equal(ds.ClassNames.OrderBy(n => n, StringComparer.Ordinal),
                examples.Skip(block * k).Take(k).Select(e => e.ClassName!).OrderBy(n => n, StringComparer.Ordinal));
    }

    [Theory]
    [InlineData(16)]
    [InlineData(24)]
    [InlineData(9)]
    public void Pixels_are_finite_in_range_and_shaped_channels_first(int size)
    {
        var ds = new ShapesDataset(new ShapesDatasetOptions(ImageSize: size, NoiseStd: 0.3));
        Assert.Equal(size, ds.ImageSize);
        foreach (var ex in ds.Take(0, 30))
        {
            Assert.Equal([3, size, size], ex.Pixels.Shape);
            Assert.All(ex.Pixels.Data, v => Assert.True(double.IsFinite(v) && v >= -1 && v <= 1, $"pixel {v} outside [-1, 1]"));
        }
    }

    /// <summary>
    /// Independent of the painter: the background is the median of the border pixels, the shape's
    /// pixels are those far from it, and the mean colour of the third of them farthest from it
    /// (edge pixels are blends with the background) must be nearest the caption's colour.
    /// </summary>
    [Theory]
    [InlineData(ShapesSplit.Train, 16)]
    [InlineData(ShapesSplit.Unseen, 16)]
    [InlineData(ShapesSplit.Test, 24)]
    public void The_named_colour_dominates_the_shape_region_despite_noise(ShapesSplit split, int size)
    {
        var ds = new ShapesDataset(new ShapesDatasetOptions(ImageSize: size, Split: split, ColourCount: 6, ShapeCount: 6));
        var palette = ShapesVocabulary.Colours.ToDictionary(c => c.Name, c => new[] { c.Red * 2 - 1, c.Green * 2 - 1, c.Blue * 2 - 1 });
        foreach (var ex in ds.Take(8, 300))
        {
            var mask = Foreground(ex.Pixels, size, threshold: 0.5);
            int count = mask.Count(m => m);
            Assert.True(count >= 4, $"'{ex.Caption}': only {count} pixels stand out from the background");
            var background = BorderMedian(ex.Pixels, size);
            var strongest = Enumerable.Range(0, size * size).Where(p => mask[p])
                .OrderByDescending(p => Distance(PixelAt(ex.Pixels, size, p), background))
                .Take(Math.Max(1, count / 3)).ToArray();
            var mean = new double[3];
            foreach (int p in strongest)
                for (int c = 0; c < 3; c++) mean[c] += ex.Pixels.Data[c * size * size + p] / strongest.Length;
            string nearest = palette.MinBy(kv => Distance(kv.Value, mean)).Key;
            Assert.True(ex.Caption.Split(' ').Contains(nearest),
                $"'{ex.Caption}': the shape's mean colour ({mean[0]:F2}, {mean[1]:F2}, {mean[2]:F2}) is nearest {nearest}");
        }
    }

    /// <summary>
    /// Noise-free 48x48 images, recognised by a small rule set written here from the shapes'
    /// descriptions (not the painter's code): the caption's shape, size and position must match.
    /// </summary>
    [Fact]
    public void Shape_size_and_position_words_match_the_drawing()
    {
        const int size = 96; // large enough that edge pixels blur no boundary the rules below rely on
        var ds = new ShapesDataset(new ShapesDatasetOptions(ImageSize: size, ColourCount: 6, ShapeCount: 6, NoiseStd: 0, BackgroundTint: 0, ColourJitter: 0));
        var areas = new Dictionary<(string Shape, string Size), List<int>>();
        foreach (var (ex, index) in ds.Take(21, 150).Select((e, i) => (e, i)))
        {
            var scene = ds.SceneAt(21, index);
            var mask = Foreground(ex.Pixels, size, threshold: null); // pixels more than half covered
            string recognised = RecogniseShape(mask, size);
            Assert.True(scene.Shape == recognised, $"example {index} '{ex.Caption}': the drawing looks like a {recognised}");
            Assert.Contains(scene.Shape, ex.Caption);
            Assert.Contains(scene.Size, new[] { "small", "large" });
            var list = areas.TryGetValue((scene.Shape, scene.Size), out var l) ? l : areas[(scene.Shape, scene.Size)] = [];
            list.Add(mask.Count(m => m));

            // The centroid lies in the third of the image the position phrase names (a margin of a
            // quarter radius allows for the triangle's centroid sitting below its centre).
            var (cx, cy) = Centroid(mask, size);
            double margin = 0.25 * scene.Radius;
            CheckThird(scene.Position, cx, "left", "right", size, margin, ex.Caption);
            CheckThird(scene.Position, cy, "top", "bottom", size, margin, ex.Caption);
        }
        // Within a shape, every large drawing covers more pixels than every small one.
        int compared = 0;
        foreach (var shape in ShapesVocabulary.Shapes)
            if (areas.TryGetValue((shape, "small"), out var small) && areas.TryGetValue((shape, "large"), out var large))
            {
                Assert.True(large.Min() > small.Max(), $"{shape}: smallest large area {large.Min()} <= largest small area {small.Max()}");
                compared++;
            }
        Assert.Equal(ShapesVocabulary.Shapes.Count, compared); // every shape was drawn in both sizes
    }

    private static void CheckThird(string position, double coordinate, string low, string high, int size, double margin, string caption)
    {
        var words = position.Split(' ');
        double third = size / 3.0;
        if (words.Contains(low)) Assert.True(coordinate < third + margin, $"'{caption}': centroid {coordinate:F1} is not in the {low} third");
        else if (words.Contains(high)) Assert.True(coordinate > 2 * third - margin, $"'{caption}': centroid {coordinate:F1} is not in the {high} third");
        else Assert.True(coordinate > third - margin && coordinate < 2 * third + margin, $"'{caption}': centroid {coordinate:F1} is not in the middle third");
    }

    private static double Distance(double[] a, double[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += (a[i] - b[i]) * (a[i] - b[i]);
        return Math.Sqrt(sum);
    }

    private static double[] PixelAt(SigLip.Reference.Tensor pixels, int size, int p) =>
        [pixels.Data[p], pixels.Data[size * size + p], pixels.Data[2 * size * size + p]];

    /// <summary>
    /// Pixels whose colour is farther than <paramref name="threshold"/> from the median border
    /// colour; null: farther than half the largest distance (on a noise-free image, the pixels
    /// the shape covers more than half of).
    /// </summary>
    private static bool[] Foreground(SigLip.Reference.Tensor pixels, int size, double? threshold)
    {
        var background = BorderMedian(pixels, size);
        var distance = Enumerable.Range(0, size * size).Select(p => Distance(PixelAt(pixels, size, p), background)).ToArray();
        double cut = threshold ?? 0.5 * distance.Max();
        return distance.Select(d => d > cut).ToArray();
    }

    private static double[] BorderMedian(SigLip.Reference.Tensor pixels, int size)
    {
        int plane = size * size;
        var background = new double[3];
        for (int c = 0; c < 3; c++)
        {
            var border = new List<double>();
            for (int i = 0; i < size; i++)
            {
                border.Add(pixels.Data[c * plane + i]);
                border.Add(pixels.Data[c * plane + (size - 1) * size + i]);
                border.Add(pixels.Data[c * plane + i * size]);
                border.Add(pixels.Data[c * plane + i * size + size - 1]);
            }
            border.Sort();
            background[c] = border[border.Count / 2];
        }
        return background;
    }

    private static (double X, double Y) Centroid(bool[] mask, int size)
    {
        double sx = 0, sy = 0; int n = 0;
        for (int p = 0; p < mask.Length; p++)
            if (mask[p]) { sx += p % size + 0.5; sy += p / size + 0.5; n++; }
        return (sx / n, sy / n);
    }

    /// <summary>
    /// ring: hollow centre; triangle: far more pixels in the lower half of its box; square: fills
    /// its box; circle: fills about pi/4 of it; cross and diamond fill half: a diamond covers the
    /// more of the columns beside its centre than a cross.
    /// </summary>
    private static string RecogniseShape(bool[] mask, int size)
    {
        int minX = size, maxX = -1, minY = size, maxY = -1, count = 0;
        for (int p = 0; p < mask.Length; p++)
        {
            if (!mask[p]) continue;
            int x = p % size, y = p / size;
            minX = Math.Min(minX, x); maxX = Math.Max(maxX, x); minY = Math.Min(minY, y); maxY = Math.Max(maxY, y);
            count++;
        }
        double w = maxX - minX + 1, h = maxY - minY + 1;
        double midX = (minX + maxX) / 2.0, midY = (minY + maxY) / 2.0;
        bool At(double x, double y) => mask[(int)Math.Round(y) * size + (int)Math.Round(x)];
        if (!At(midX, midY)) return "ring";
        int top = 0, bottom = 0;
        for (int p = 0; p < mask.Length; p++)
            if (mask[p]) { if (p / size < midY) top++; else if (p / size > midY) bottom++; }
        if (top < 0.6 * bottom) return "triangle";
        double fill = count / (w * h);
        if (fill > 0.9) return "square";
        if (fill > 0.68) return "circle";
        // The columns 0.4 radius either side of the centre: a diamond fills 1.2 radius of them
        // (|v| <= 0.6), a cross's horizontal arm only 0.6 radius (|v| <= 0.3); the box is 2 radii high.
        int ColumnCount(double x) => Enumerable.Range(0, size).Count(y => mask[y * size + (int)Math.Round(x)]);
        double columnFill = (ColumnCount(midX + 0.2 * w) + ColumnCount(midX - 0.2 * w)) / (2 * h);
        return columnFill > 0.45 ? "diamond" : "cross";
    }

    [Fact]
    public void Bad_options_are_rejected_with_the_setting_named()
    {
        Assert.Contains("ImageSize", Assert.Throws<ArgumentException>(() => new ShapesDataset(new ShapesDatasetOptions(ImageSize: 4))).Message);
        Assert.Contains("ColourCount", Assert.Throws<ArgumentException>(() => new ShapesDataset(new ShapesDatasetOptions(ColourCount: 7))).Message);
        Assert.Contains("unseen", Assert.Throws<ArgumentException>(() => new ShapesDataset(new ShapesDatasetOptions(Split: ShapesSplit.Unseen, HoldOutCombinations: false))).Message);
        Assert.Contains("NoiseStd", Assert.Throws<ArgumentException>(() => new ShapesDataset(new ShapesDatasetOptions(NoiseStd: double.NaN))).Message);
        Assert.Contains("train, test or unseen", Assert.Throws<ArgumentException>(() => ShapesDatasetOptions.ParseSplit("validation")).Message);
        Assert.Equal(ShapesSplit.Unseen, ShapesDatasetOptions.ParseSplit(" Unseen "));
    }

    [Fact]
    public void With_nothing_held_out_training_shows_every_combination()
    {
        var ds = new ShapesDataset(new ShapesDatasetOptions(HoldOutCombinations: false));
        Assert.Empty(ds.HeldOutClassNames);
        Assert.Equal(ds.AllClassNames, ds.ClassNames);
        Assert.Equal(16, ds.Take(0, 16).Select(e => e.ClassName).Distinct().Count());
    }
}
