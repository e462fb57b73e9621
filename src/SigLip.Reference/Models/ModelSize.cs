using SigLip.Reference.IO.Golden;

namespace SigLip.Reference.Models;

/// <summary>A size read from a file or given as an option that cannot be honoured (it overflows, or needs more memory than there is).</summary>
public sealed class ModelSizeException(string message, Exception? inner = null) : ArgumentException(message, inner);

/// <summary>
/// The one place that checks sizes before anything is allocated (issue 15): a config's tensor sizes and
/// parameter count in checked arithmetic (<see cref="CheckConfig"/>, called by <see cref="SiglipConfig.Validate"/>),
/// and the memory a batch needs (<see cref="CheckTrainingFits"/>, <see cref="CheckTokenIdsFit"/>) against the
/// memory available to the process or a <c>--max-memory</c> the user gives; a run's steps (<see cref="CheckSteps"/>:
/// every loss is kept), evaluation images (<see cref="CheckImagesFit"/>), a loss's logits (<see cref="CheckLossFits"/>)
/// and a GPU batch against the GPU's free memory (<see cref="CheckTrainingFitsGpu"/>). A refusal is one line with the
/// numbers: what it needs, what there is, and which field or option to change.
/// </summary>
public static class ModelSize
{
    /// <summary>The memory the process may use (the container's limit where there is one).</summary>
    public static long AvailableBytes() => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>The parameter count in closed form, in checked arithmetic (equal to <see cref="ParameterLayout.Count"/>, without listing the tensors).</summary>
    /// <exception cref="OverflowException">The count does not fit in a long.</exception>
    public static long ParameterCount(SiglipConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var (t, v) = (config.Text, config.Vision);
        checked
        {
            long th = t.HiddenSize, vh = v.HiddenSize, vi = v.IntermediateSize;
            long text = (long)t.VocabSize * th + (long)t.MaxPositionEmbeddings * th + t.NumHiddenLayers * Layer(th, t.IntermediateSize)
                        + 2 * th + (long)t.ProjectionDim * th + t.ProjectionDim;
            long patches = (long)v.PatchesPerSide * v.PatchesPerSide;
            long vision = vh * v.NumChannels * v.PatchSize * v.PatchSize + vh + patches * vh + v.NumHiddenLayers * Layer(vh, vi)
                          + 2 * vh + vh + 3 * vh * vh + 3 * vh + (vh * vh + vh) + 2 * vh + (vi * vh + vi) + (vh * vi + vh);
            return text + vision + 2;
        }
    }

    private static long Layer(long h, long i) => checked(4 * (h * h + h) + 2 * h + (i * h + i) + (h * i + h) + 2 * h);

    /// <summary>
    /// Refuses a config whose patch count or any parameter tensor exceeds what an array holds, whose parameter
    /// count overflows, or whose parameters alone (as float32, the least any backend stores) exceed the memory available.
    /// </summary>
    public static void CheckConfig(SiglipConfig config, long? availableBytes = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var (t, v) = (config.Text, config.Vision);
        long patches = (long)v.PatchesPerSide * v.PatchesPerSide;
        if (patches > int.MaxValue)
            throw new ModelSizeException($"config: vision_config.image_size {v.ImageSize} with patch_size {v.PatchSize} gives {patches:N0} patches, over the limit of {int.MaxValue:N0}; use a smaller image_size or a larger patch_size.");
        foreach (var (what, fields, elements) in new (string, string, long)[]
                 {
                     ("text token embedding", "text_config.vocab_size x hidden_size", (long)t.VocabSize * t.HiddenSize),
                     ("text position embedding", "text_config.max_position_embeddings x hidden_size", (long)t.MaxPositionEmbeddings * t.HiddenSize),
                     ("text MLP weight", "text_config.intermediate_size x hidden_size", (long)t.IntermediateSize * t.HiddenSize),
                     ("text head", "text_config.projection_size x hidden_size", (long)t.ProjectionDim * t.HiddenSize),
                     ("image position embedding", "vision_config patches x hidden_size", patches * v.HiddenSize),
                     ("image MLP weight", "vision_config.intermediate_size x hidden_size", (long)v.IntermediateSize * v.HiddenSize),
                     ("image patch embedding", "vision_config.hidden_size x num_channels x patch_size^2", (long)v.HiddenSize * v.NumChannels * v.PatchSize * v.PatchSize),
                     ("MAP head in-projection", "3 x vision_config.hidden_size^2", 3L * v.HiddenSize * v.HiddenSize),
                 })
            if (elements > Array.MaxLength)
                throw new ModelSizeException($"config: the {what} ({fields}) would hold {elements:N0} elements, over the {Array.MaxLength:N0} one tensor can hold; reduce {fields.Split(' ')[0]}.");
        long count;
        try { count = ParameterCount(config); }
        catch (OverflowException)
        {
            throw new ModelSizeException($"config: the parameter count overflows (vision_config.num_hidden_layers {v.NumHiddenLayers}, text_config.num_hidden_layers {t.NumHiddenLayers}); reduce num_hidden_layers or the widths.");
        }
        long available = availableBytes ?? AvailableBytes();
        if (count > available / sizeof(float))
        {
            long visionLayers = v.NumHiddenLayers * Layer(v.HiddenSize, v.IntermediateSize), textLayers = t.NumHiddenLayers * Layer(t.HiddenSize, t.IntermediateSize);
            string field = visionLayers >= textLayers && visionLayers >= count / 2 ? $"vision_config.num_hidden_layers ({v.NumHiddenLayers})"
                : textLayers >= count / 2 ? $"text_config.num_hidden_layers ({t.NumHiddenLayers})"
                : "the widths (hidden_size, intermediate_size, vocab_size)";
            throw new ModelSizeException($"config: the model has {count:N0} parameters, at least {CheckpointCase.FormatBytes(SaturatingMultiply(count, sizeof(float)))} as float32, " +
                                         $"but only {CheckpointCase.FormatBytes(available)} is available to this process; reduce {field}.");
        }
    }

    /// <summary>
    /// Bytes to train <paramref name="config"/> on batches of <paramref name="batch"/> pairs: parameters, gradients and
    /// the two AdamW moments at <paramref name="bytesPerElement"/>, the activations kept for the backward pass, the
    /// images and the B x B logits at <paramref name="activationBytes"/> (default: <paramref name="bytesPerElement"/>;
    /// 2 for bfloat16, whose master weights stay float32). Saturates at <see cref="long.MaxValue"/> instead of overflowing.
    /// </summary>
    public static long TrainingBytes(SiglipConfig config, long batch, int bytesPerElement, int? activationBytes = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        int perActivation = activationBytes ?? bytesPerElement;
        try
        {
            checked
            {
                return FixedElements(config) * bytesPerElement + batch * PerExampleElements(config) * perActivation + batch * batch * perActivation;
            }
        }
        catch (OverflowException) { return long.MaxValue; }
    }

    private static long FixedElements(SiglipConfig config) => checked(4 * ParameterCount(config));

    private static long PerExampleElements(SiglipConfig config)
    {
        var (t, v) = (config.Text, config.Vision);
        static long Saved(long tokens, long h, long i, long heads) => checked(tokens * (10 * h + 2 * i) + heads * tokens * tokens);
        checked
        {
            long n = v.NumPatches, l = t.MaxPositionEmbeddings;
            return v.NumHiddenLayers * Saved(n, v.HiddenSize, v.IntermediateSize, v.NumAttentionHeads)
                   + t.NumHiddenLayers * Saved(l, t.HiddenSize, t.IntermediateSize, t.NumAttentionHeads)
                   + (v.NumHiddenLayers + 4L) * n * v.HiddenSize + (t.NumHiddenLayers + 4L) * l * t.HiddenSize
                   + (long)v.NumChannels * v.ImageSize * v.ImageSize + 2 * l;
        }
    }

    /// <summary>
    /// Refuses a training batch that needs more memory than <paramref name="maxBytes"/> (when given) or than is
    /// available, naming <paramref name="option"/>, the bytes needed and there, and the largest batch that fits.
    /// </summary>
    /// <param name="availableName">What <paramref name="availableBytes"/> is, in words (e.g. "free on GPU 0 (NVML)").</param>
    /// <param name="activationBytes">Bytes per activation when they differ from <paramref name="bytesPerElement"/> (see <see cref="TrainingBytes"/>).</param>
    public static void CheckTrainingFits(SiglipConfig config, long batch, int bytesPerElement, long? maxBytes, string option = "--batch-size", long? availableBytes = null,
        string availableName = "available to this process", int? activationBytes = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (batch < 1) throw new ModelSizeException($"{option} must be at least 1, got {batch}.");
        long needs = TrainingBytes(config, batch, bytesPerElement, activationBytes);
        long available = availableBytes ?? AvailableBytes();
        var (limit, limitName, change) = maxBytes is long max && max < available
            ? (max, "the --max-memory given", "raise --max-memory or lower " + option)
            : (available, availableName, "lower " + option + " or use a machine with more memory");
        if (needs <= limit) return;
        long fixedBytes = SaturatingMultiply(FixedElements(config), bytesPerElement);
        long perExample = Math.Max(1, SaturatingMultiply(PerExampleElements(config), activationBytes ?? bytesPerElement));
        long fits = Math.Max(0, (limit - fixedBytes) / perExample);
        while (fits > 0 && TrainingBytes(config, fits, bytesPerElement, activationBytes) > limit) fits--;
        string precision = activationBytes is int a && a != bytesPerElement
            ? $"{bytesPerElement} bytes per parameter number, {a} per activation"
            : $"{bytesPerElement} bytes per number";
        throw new ModelSizeException($"{option} {batch}: training needs {Describe(needs)} (parameters, optimizer state and activations at {precision}), " +
                                     $"but {CheckpointCase.FormatBytes(limit)} is {limitName}; " +
                                     (fits > 0 ? $"{option} {fits} is the most that fits; " : "even one pair does not fit; ") + change + ".");
    }

    /// <summary>
    /// The GPU check of a training batch (<c>siglip throughput --backend cuda</c>): refuses a batch whose estimate
    /// (<see cref="TrainingBytes"/>: float32 parameters and optimizer state; activations in the working dtype) exceeds
    /// <paramref name="freeBytes"/>, the GPU's free memory, before anything is allocated on it. Where the free memory is
    /// unknown (null: no NVML driver library), nothing is checked and the line returned says so; otherwise the line
    /// gives the estimate against the free memory.
    /// </summary>
    /// <param name="device">The GPU, in words (e.g. "GPU 0").</param>
    public static string CheckTrainingFitsGpu(SiglipConfig config, long batch, Backends.DType dtype, long? freeBytes, string device, string option = "--batch")
    {
        ArgumentNullException.ThrowIfNull(config);
        int parameterBytes = dtype == Backends.DType.Float64 ? 8 : 4, activationBytes = dtype switch
        {
            Backends.DType.Float64 => 8,
            Backends.DType.BFloat16 => 2,
            _ => 4,
        };
        if (batch < 1) throw new ModelSizeException($"{option} must be at least 1, got {batch}.");
        long needs = TrainingBytes(config, batch, parameterBytes, activationBytes);
        if (freeBytes is not long free)
            return $"GPU memory check skipped: the free memory of {device} is unknown (NVML, libnvidia-ml.so.1, is not available); " +
                   $"{option} {batch} needs {Describe(needs)} by the estimate, and libtorch reports its own out-of-memory.";
        CheckTrainingFits(config, batch, parameterBytes, maxBytes: null, option, free, $"free on {device} (NVML)", activationBytes);
        return $"GPU memory check: {option} {batch} needs {Describe(needs)} by the estimate; {CheckpointCase.FormatBytes(free)} is free on {device}.";
    }

    /// <summary>
    /// Refuses a pairwise loss of <paramref name="pairs"/> embeddings of width <paramref name="width"/> whose logits cannot
    /// fit: the n x n logits (for a chunked loss, one chunk's (n/D) x (n/D)), their probabilities, their gradient and a
    /// temporary, plus the embeddings, their normalised copies and their gradients, at <paramref name="bytesPerElement"/>.
    /// A backend calls it before an allocation it cannot recover from (libtorch's matmul aborts the process when it
    /// cannot allocate its result).
    /// </summary>
    public static void CheckLossFits(long pairs, long width, int chunks, int bytesPerElement, long availableBytes, string availableName, string option = "the batch")
    {
        long rows = chunks > 1 ? (pairs + chunks - 1) / chunks : pairs;
        long needs = SaturatingMultiply(SaturatingAdd(SaturatingMultiply(4, SaturatingMultiply(rows, rows)), SaturatingMultiply(6, SaturatingMultiply(pairs, width))), bytesPerElement);
        if (needs <= availableBytes) return;
        long fits = (long)Math.Sqrt(availableBytes / (4.0 * bytesPerElement)) * Math.Max(1, chunks);
        throw new ModelSizeException($"{option} of {pairs:N0} pairs: the loss's {rows:N0} x {rows:N0} logits and their gradients need {Describe(needs)}, " +
                                     $"but {CheckpointCase.FormatBytes(availableBytes)} is {availableName}; use at most about {fits:N0} pairs.");
    }

    /// <summary>
    /// The most steps one run can have: trainer_state.json keeps every step's loss (at most 32 characters each in the
    /// indented JSON) and is written and read back as one string, which .NET caps at about 2^30 characters; 30 million
    /// steps stay under that with room for the rest of the file.
    /// </summary>
    public const int MaxSteps = 30_000_000;

    /// <summary>
    /// Bytes one step costs at the peak of a checkpoint save: its loss in the trainer's list (up to 16 with the list's
    /// growth), the copy the state takes (8), its JSON text as a string (64) and as UTF-8 (32), rounded up.
    /// </summary>
    public const int BytesPerRecordedStep = 128;

    /// <summary>
    /// Refuses a run of <paramref name="steps"/> steps whose loss history (one number per step, kept in memory and
    /// written to trainer_state.json) cannot be recorded: more than <see cref="MaxSteps"/>, or more memory than
    /// <paramref name="maxBytes"/> (when given) or than is available. Names <paramref name="option"/> and what fits.
    /// </summary>
    public static void CheckSteps(long steps, long? maxBytes, string option = "--steps", long? availableBytes = null)
    {
        if (steps < 1) throw new ModelSizeException($"{option} must be at least 1, got {steps}.");
        long available = availableBytes ?? AvailableBytes();
        var (limit, limitName) = maxBytes is long max && max < available ? (max, "the --max-memory given") : (available, "available to this process");
        long needs = SaturatingMultiply(steps, BytesPerRecordedStep);
        long fits = Math.Min(MaxSteps, limit / BytesPerRecordedStep);
        if (steps <= fits) return;
        throw new ModelSizeException(steps > MaxSteps
            ? $"{option} {steps:N0}: a run records one loss per step in trainer_state.json, which holds at most {MaxSteps:N0} steps; use {option} {MaxSteps:N0} or less."
            : $"{option} {steps:N0}: the loss history (one number per step, kept in memory and written to trainer_state.json) needs {Describe(needs)}, " +
              $"but {CheckpointCase.FormatBytes(limit)} is {limitName}; use {option} {fits:N0} or less.");
    }

    /// <summary>
    /// Bytes one evaluation image costs besides its pixels: its embedding, its caption and the objects that hold them
    /// (an allowance, not a measurement: the pixels dominate at every image size the models use).
    /// </summary>
    private const int BytesPerImageBesidesPixels = 1024;

    /// <summary>
    /// Refuses <paramref name="imagesPerClass"/> x <paramref name="classes"/> images of <paramref name="valuesPerImage"/>
    /// float64 values each (the built-in evaluation holds them all at once) when their count overflows an array or they
    /// need more memory than <paramref name="maxBytes"/> (when given) or than is available; names <paramref name="option"/> and what fits.
    /// </summary>
    /// <param name="availableName">What <paramref name="availableBytes"/> is, in words.</param>
    public static void CheckImagesFit(long imagesPerClass, long classes, long valuesPerImage, long? maxBytes, string option = "--images-per-class", long? availableBytes = null,
        string availableName = "available to this process")
    {
        if (imagesPerClass < 1) throw new ModelSizeException($"{option} must be at least 1, got {imagesPerClass}.");
        if (classes < 1 || valuesPerImage < 1) throw new ArgumentOutOfRangeException(nameof(classes), "classes and values per image must be positive.");
        long available = availableBytes ?? AvailableBytes();
        var (limit, limitName) = maxBytes is long max && max < available ? (max, "the --max-memory given") : (available, availableName);
        long perImage = SaturatingAdd(SaturatingMultiply(valuesPerImage, sizeof(double)), BytesPerImageBesidesPixels);
        long images = SaturatingMultiply(imagesPerClass, classes);
        long needs = SaturatingMultiply(images, perImage);
        long fits = Math.Min(Array.MaxLength, limit / perImage) / classes;
        if (images <= Array.MaxLength && needs <= limit) return;
        throw new ModelSizeException($"{option} {imagesPerClass:N0}: {classes} classes x {imagesPerClass:N0} images of {valuesPerImage:N0} values need {Describe(needs)}, " +
                                     $"but {CheckpointCase.FormatBytes(limit)} is {limitName}; use {option} {fits:N0} or less.");
    }

    /// <summary>Refuses token-id rows (<paramref name="rows"/> x <paramref name="maxLength"/> ints) that overflow an array or exceed the memory.</summary>
    public static void CheckTokenIdsFit(long rows, long maxLength, long? maxBytes, string option = "--max-length", long? availableBytes = null)
    {
        long elements = rows > 0 && maxLength > Array.MaxLength / rows ? long.MaxValue : rows * maxLength;
        // The ids are one [rows, maxLength] array: past Array.MaxLength elements it cannot exist, whatever the memory.
        if (elements > Array.MaxLength)
            throw new ModelSizeException($"{option} {maxLength}: {rows:N0} text(s) of {maxLength:N0} ids are {SaturatingMultiply(rows, maxLength):N0} ids, over the {Array.MaxLength:N0} ids one array holds; " +
                                         $"use {option} {Array.MaxLength / Math.Max(1, rows):N0} or less (SigLIP checkpoints use 64).");
        long needs = elements == long.MaxValue ? long.MaxValue : SaturatingMultiply(elements, sizeof(int) * 2);
        long available = Math.Min(availableBytes ?? AvailableBytes(), maxBytes ?? long.MaxValue);
        if (elements <= Array.MaxLength && needs <= available) return;
        long fits = Math.Max(0, Math.Min(Array.MaxLength, available / (sizeof(int) * 2)) / Math.Max(1, rows));
        throw new ModelSizeException($"{option} {maxLength}: {rows:N0} text(s) of {maxLength:N0} ids need {Describe(needs)}, but {CheckpointCase.FormatBytes(available)} is " +
                                     $"{(maxBytes is not null && maxBytes < (availableBytes ?? AvailableBytes()) ? "the --max-memory given" : "available to this process")}; " +
                                     $"use {option} {fits:N0} or less (SigLIP checkpoints use 64).");
    }

    private static long SaturatingMultiply(long a, long b) => a != 0 && b > long.MaxValue / a ? long.MaxValue : a * b;

    private static long SaturatingAdd(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;

    private static string Describe(long bytes) => bytes == long.MaxValue ? "more than 8 EiB" : "about " + CheckpointCase.FormatBytes(bytes);
}
