namespace SigLip.Reference;

/// <summary>
/// A dense, row-major float64 array with a shape. It is the currency between the reference, the
/// backends and the files: golden cases, checkpoints and gradients travel as <see cref="Tensor"/>.
/// </summary>
public sealed class Tensor
{
    /// <summary>Wraps <paramref name="data"/> (not copied) with the given shape.</summary>
    public Tensor(IReadOnlyList<int> shape, double[] data)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        long size = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"Tensor shape {ShapeToString(shape)} has a negative dimension.");
            size *= d;
        }
        if (size != data.Length)
            throw new ArgumentException($"Tensor shape {ShapeToString(shape)} holds {size} elements but {data.Length} were given.");
        Shape = shape.ToArray();
        Data = data;
    }

    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(params int[] shape)
    {
        long size = 1;
        foreach (var d in shape) size *= d;
        return new Tensor(shape, new double[size]);
    }

    /// <summary>A tensor holding a copy of <paramref name="values"/>.</summary>
    public static Tensor FromArray(IReadOnlyList<int> shape, IEnumerable<double> values) => new(shape, values.ToArray());

    /// <summary>A one-element tensor of shape [1] (how HF stores logit_scale and logit_bias).</summary>
    public static Tensor Scalar(double value) => new([1], [value]);

    /// <summary>The dimensions, outermost first (e.g. [B, C, H, W]); a copy of what the constructor was given.</summary>
    public IReadOnlyList<int> Shape { get; }
    /// <summary>The elements in row-major order (the last index varies fastest). Not a copy: writes change the tensor.</summary>
    public double[] Data { get; }
    /// <summary>The number of elements (the product of <see cref="Shape"/>).</summary>
    public int Size => Data.Length;
    /// <summary>The number of dimensions.</summary>
    public int Rank => Shape.Count;

    /// <summary>A copy with its own data array.</summary>
    public Tensor Clone() => new(Shape, (double[])Data.Clone());

    /// <summary>The same data (shared, not copied) seen with another shape of the same size.</summary>
    public Tensor Reshape(params int[] shape) => new(shape, Data);

    /// <summary>The shape, e.g. <c>Tensor[2, 3]</c> (not the values).</summary>
    public override string ToString() => $"Tensor{ShapeToString(Shape)}";

    /// <summary>A shape as text, e.g. <c>[2, 3]</c>, for messages.</summary>
    public static string ShapeToString(IReadOnlyList<int> shape) => "[" + string.Join(", ", shape) + "]";

    /// <summary>Row-major multi-index of a flat element index, e.g. [2, 0, 5].</summary>
    public static int[] Unravel(IReadOnlyList<int> shape, long flat)
    {
        var index = new int[shape.Count];
        for (int d = shape.Count - 1; d >= 0; d--)
        {
            int n = Math.Max(shape[d], 1);
            index[d] = (int)(flat % n);
            flat /= n;
        }
        return index;
    }
}

/// <summary>Token ids of a batch: <c>Ids</c> is row-major [Batch, Length].</summary>
/// <param name="Batch">B, the number of texts.</param>
/// <param name="Length">L, ids per text.</param>
/// <param name="Ids">[B, L] row-major.</param>
public sealed record TokenIds(int Batch, int Length, int[] Ids)
{
    /// <summary>The token id at batch row <paramref name="b"/>, position <paramref name="t"/>.</summary>
    public int this[int b, int t] => Ids[b * Length + t];

    /// <summary>Token ids from one list per batch row; every row must have the same length (an empty list gives an empty batch).</summary>
    public static TokenIds FromRows(IReadOnlyList<IReadOnlyList<int>> rows)
    {
        if (rows.Count == 0) return new TokenIds(0, 0, []);
        int length = rows[0].Count;
        var ids = new int[rows.Count * length];
        for (int b = 0; b < rows.Count; b++)
        {
            if (rows[b].Count != length)
                throw new ArgumentException($"Token row {b} has {rows[b].Count} ids but row 0 has {length}; every row must have the same length.");
            for (int t = 0; t < length; t++) ids[b * length + t] = rows[b][t];
        }
        return new TokenIds(rows.Count, length, ids);
    }
}

/// <summary>One training or evaluation batch: images [B, C, H, W] in [-1, 1] and their captions' token ids [B, L].</summary>
/// <param name="PixelValues">[B, C, H, W] images in [-1, 1].</param>
/// <param name="InputIds">[B, L] token ids of the captions, row b belongs to image b.</param>
public sealed record SiglipBatch(Tensor PixelValues, TokenIds InputIds)
{
    /// <summary>The number of image-text pairs, B.</summary>
    public int Size => InputIds.Batch;
}
