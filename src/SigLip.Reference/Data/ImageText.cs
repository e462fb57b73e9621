namespace SigLip.Reference.Data;

/// <summary>One image with its caption. Pixels are [C, H, W], scaled to [-1, 1].</summary>
/// <param name="ClassName">The class of the image where the source has classes (for zero-shot evaluation).</param>
/// <param name="Pixels">[C, H, W] pixels in [-1, 1].</param>
/// <param name="Caption">The image's text.</param>
public sealed record ImageTextExample(Tensor Pixels, string Caption, string? ClassName = null);

/// <summary>
/// A stream of image-caption pairs: the built-in procedural data, or a folder of images with a
/// captions file. Streaming: examples are produced as they are read, never all held at once.
/// </summary>
public interface IImageTextSource
{
    /// <summary>What the data is, in words.</summary>
    string Description { get; }

    /// <summary>Image side length in pixels, and channels, of every example.</summary>
    int ImageSize { get; }
    /// <summary>Colour channels of every example (3 for RGB).</summary>
    int Channels { get; }

    /// <summary>
    /// The examples, in an order fixed by <paramref name="seed"/>. A procedural source may be endless;
    /// a folder source yields each usable example once per call, skipping bad ones.
    /// </summary>
    IEnumerable<ImageTextExample> Examples(int seed);

    /// <summary>Class names with their prompt texts, where the source has classes; empty otherwise.</summary>
    IReadOnlyList<string> ClassNames { get; }
}

/// <summary>Turns captions into token ids of a fixed length (SigLIP pads with the end token, no mask).</summary>
public interface ITextTokenizer
{
    /// <summary>The number of token ids it can produce (the text tower's vocab size must be at least this).</summary>
    int VocabSize { get; }

    /// <summary>Token ids [texts.Count, maxLength].</summary>
    TokenIds Encode(IReadOnlyList<string> texts, int maxLength);
}
