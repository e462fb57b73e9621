using SigLip.Reference.Data;
using SigLip.Reference.IO;

namespace SigLip.Reference.Training;

/// <summary>
/// Where a <see cref="BatchStream"/> is in its data: epoch e reads <c>source.Examples(seed + e)</c>,
/// and <see cref="Index"/> examples of it have been consumed. An endless source stays in epoch 0.
/// </summary>
/// <param name="Epoch">The epoch being read (0 for an endless source).</param>
/// <param name="Index">Examples of that epoch consumed so far.</param>
public sealed record DataPosition(int Epoch, long Index)
{
    /// <summary>The beginning: epoch 0, nothing consumed.</summary>
    public static DataPosition Start { get; } = new(0, 0);
}

/// <summary>
/// Turns an <see cref="IImageTextSource"/> and a tokenizer into training batches, deterministically:
/// the same seed and position give the same batches, so a resumed run re-creates the stream at the
/// saved <see cref="DataPosition"/> (by re-reading the epoch and skipping what was consumed).
/// </summary>
public sealed class BatchStream : IDisposable
{
    private readonly IImageTextSource _source;
    private readonly ITextTokenizer _tokenizer;
    private readonly int _seed;
    private readonly int _batchSize;
    private readonly int _textLength;
    private readonly int _channels;
    private readonly int _imageSize;
    private IEnumerator<ImageTextExample> _examples;
    private int _epoch;
    private long _index;

    /// <param name="textLength">Token ids per caption (the text tower's max_position_embeddings).</param>
    /// <param name="channels">C of the model's images.</param>
    /// <param name="imageSize">H = W of the model's images.</param>
    public BatchStream(IImageTextSource source, ITextTokenizer tokenizer, int seed, int batchSize, int textLength, int channels, int imageSize, DataPosition? position = null)
    {
        _source = source;
        _tokenizer = tokenizer;
        _seed = seed;
        _batchSize = batchSize;
        _textLength = textLength;
        _channels = channels;
        _imageSize = imageSize;
        if (source.Channels != channels || source.ImageSize != imageSize)
            throw new ArgumentException($"Data '{source.Description}' gives {source.Channels}x{source.ImageSize}x{source.ImageSize} images but the model takes {channels}x{imageSize}x{imageSize}.");
        position ??= DataPosition.Start;
        if (position.Epoch < 0 || position.Index < 0) throw new ArgumentException($"Invalid data position: epoch {position.Epoch}, index {position.Index}.");
        _epoch = position.Epoch;
        _examples = OpenEpoch(_epoch);
        for (long i = 0; i < position.Index; i++)
        {
            if (!_examples.MoveNext())
                throw new ArgumentException($"Cannot resume the data at epoch {position.Epoch}, example {position.Index}: epoch {position.Epoch} of '{source.Description}' has only {i} examples now (did the data change?).");
        }
        _index = position.Index;
    }

    /// <summary>The position after the last batch handed out.</summary>
    public DataPosition Position => new(_epoch, _index);

    /// <summary>The next batch of <c>batchSize</c> pairs (an epoch boundary falls anywhere inside a batch).</summary>
    public SiglipBatch Next() => NextRows(0, _batchSize);

    /// <summary>
    /// Rows [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>) of the next
    /// global batch of <c>batchSize</c> pairs: the stream moves past the whole global batch, so every
    /// rank of a data-parallel run, drawing its own rows from its own stream with the same seed, sees
    /// the batches one process would. Only the kept rows are copied and tokenized; the source still
    /// produces every example (a folder decodes every image: which images are usable decides the rows).
    /// </summary>
    public SiglipBatch NextRows(int start, int count)
    {
        if (start < 0 || count < 1 || start + count > _batchSize)
            throw new ArgumentOutOfRangeException(nameof(start), $"Rows [{start}, {start + count}) are not inside a batch of {_batchSize}.");
        int imageValues = _channels * _imageSize * _imageSize;
        var pixels = new double[count * imageValues]; // [count, C, H, W]
        var captions = new string[count];
        for (int b = 0; b < _batchSize; b++)
        {
            var example = NextExample();
            if (example.Pixels.Size != imageValues)
                throw new InputFormatException($"Example {_index - 1} of epoch {_epoch} of '{_source.Description}' has pixels {Tensor.ShapeToString(example.Pixels.Shape)}, expected [{_channels}, {_imageSize}, {_imageSize}].", _source.Description);
            if (b < start || b >= start + count) continue;
            Array.Copy(example.Pixels.Data, 0, pixels, (b - start) * imageValues, imageValues);
            captions[b - start] = example.Caption;
        }
        var ids = _tokenizer.Encode(captions, _textLength);
        return new SiglipBatch(new Tensor([count, _channels, _imageSize, _imageSize], pixels), ids);
    }

    private ImageTextExample NextExample()
    {
        if (_examples.MoveNext()) { _index++; return _examples.Current; }
        // End of a finite source: next epoch, in the order of the next seed.
        if (_index == 0) throw new InputFormatException($"Data '{_source.Description}' yielded no usable examples.", _source.Description);
        _examples.Dispose();
        _epoch++;
        _index = 0;
        _examples = OpenEpoch(_epoch);
        if (!_examples.MoveNext()) throw new InputFormatException($"Data '{_source.Description}' yielded no usable examples in epoch {_epoch}.", _source.Description);
        _index++;
        return _examples.Current;
    }

    private IEnumerator<ImageTextExample> OpenEpoch(int epoch) => _source.Examples(unchecked(_seed + epoch)).GetEnumerator();

    /// <summary>Releases the source's current epoch enumerator.</summary>
    public void Dispose() => _examples.Dispose();
}
