namespace SigLip.Reference.Data.BuiltIn;

/// <summary>Stacks examples into a <see cref="SiglipBatch"/>: pixels [B, C, H, W] and token ids [B, L].</summary>
public static class ExampleBatch
{
    /// <summary>A batch of <paramref name="examples"/>: their pixels stacked, their captions tokenized to <paramref name="maxTextLength"/> ids.</summary>
    public static SiglipBatch Create(IReadOnlyList<ImageTextExample> examples, ITextTokenizer tokenizer, int maxTextLength) =>
        new(StackPixels(examples), tokenizer.Encode(examples.Select(e => e.Caption).ToArray(), maxTextLength));

    /// <summary>Pixels of every example, stacked to [B, C, H, W]; all examples must have the same [C, H, W].</summary>
    public static Tensor StackPixels(IReadOnlyList<ImageTextExample> examples)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0) throw new ArgumentException("Cannot stack an empty list of examples into a batch.");
        var shape = examples[0].Pixels.Shape;
        if (shape.Count != 3) throw new ArgumentException($"Example 0 has pixels of shape {Tensor.ShapeToString(shape)}; expected [C, H, W].");
        int per = examples[0].Pixels.Size;
        var data = new double[examples.Count * per];
        for (int b = 0; b < examples.Count; b++)
        {
            var p = examples[b].Pixels;
            if (!p.Shape.SequenceEqual(shape))
                throw new ArgumentException($"Example {b} has pixels of shape {Tensor.ShapeToString(p.Shape)} but example 0 has {Tensor.ShapeToString(shape)}; every image of a batch must have the same size.");
            Array.Copy(p.Data, 0, data, b * per, per);
        }
        return new Tensor([examples.Count, shape[0], shape[1], shape[2]], data);
    }
}
