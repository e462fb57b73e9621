using System.Text;
using SigLip.Data;
using SigLip.Reference;
using SigLip.Reference.IO;
using SigLip.Reference.IO.Golden;
using SigLip.Reference.Models;

namespace SigLip.Fuzzing.Targets;

/// <summary>model.safetensors: <see cref="SafeTensorsFile.Open"/> and reading every tensor back, as loading a checkpoint does.</summary>
public sealed class SafeTensorsTarget() : FuzzTarget("safetensors", "a .safetensors file: SafeTensorsFile.Open, then every tensor read (floats, integers, token ids)")
{
    private const string FileName = "model.safetensors";

    protected override IReadOnlyList<FuzzCase> MakeSeeds()
    {
        var entries = new List<SafeTensorEntry>
        {
            SafeTensorEntry.Float("vision_model.weight", new Tensor([2, 3], [0.5, -1, 2, 3.25, 1e-3, -7]), SafeTensorDType.F32),
            SafeTensorEntry.Float("text_model.bias", new Tensor([4], [1, 2, 3, 4]), SafeTensorDType.F64),
            SafeTensorEntry.Float("half", new Tensor([3], [0.25, -2, 65504]), SafeTensorDType.F16),
            SafeTensorEntry.Float("brain", new Tensor([1, 2], [1.5, -3]), SafeTensorDType.BF16),
            SafeTensorEntry.Int64("input_ids", [2, 2], [1, 2, 3, 4]),
            SafeTensorEntry.Int32("small_ids", [2, 1], [5, 6]),
            SafeTensorEntry.Float("empty", new Tensor([0, 3], []), SafeTensorDType.F32),
        };
        var withMetadata = new MemoryStream();
        SafeTensorsWriter.WriteTo(withMetadata, entries, new Dictionary<string, string> { ["format"] = "pt" });
        var one = new MemoryStream();
        SafeTensorsWriter.WriteTo(one, [SafeTensorEntry.Float("logit_scale", new Tensor([1], [2.3]), SafeTensorDType.F32)]);
        return [new FuzzCase(FileName, withMetadata.ToArray()), new FuzzCase(FileName, one.ToArray())];
    }

    protected override byte[]? MutateStructure(string fileName, byte[] bytes, FuzzRandom rng) => SafeTensorsMutations.Mutate(bytes, rng);

    protected override void Parse(string folder, FuzzCase input)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(folder, FileName));
        foreach (var e in file.Entries)
        {
            if (e.DType.IsFloat()) file.ReadTensor(e.Name);
            else if (e.DType is SafeTensorDType.I64 or SafeTensorDType.I32)
            {
                file.ReadInt64(e.Name);
                if (e.Shape.Count == 2) file.ReadTokenIds(e.Name);
            }
        }
    }
}

/// <summary>config.json: <see cref="HfConfig.ReadDetailed"/> (which validates the sizes), as every model folder load does.</summary>
public sealed class ConfigTarget() : FuzzTarget("config", "an HF config.json: HfConfig.ReadDetailed, with SiglipConfig.Validate and the size checks")
{
    private const string FileName = "config.json";

    protected override IReadOnlyList<FuzzCase> MakeSeeds()
    {
        var tiny = new SiglipConfig(
            new TextConfig(VocabSize: 256, HiddenSize: 32, IntermediateSize: 64, NumHiddenLayers: 2, NumAttentionHeads: 4, MaxPositionEmbeddings: 12, ProjectionSize: 32),
            new VisionConfig(HiddenSize: 32, IntermediateSize: 64, NumHiddenLayers: 2, NumAttentionHeads: 4, ImageSize: 16, PatchSize: 4));
        // A released checkpoint's style: only what differs from HF's defaults.
        const string released = "{\"architectures\": [\"SiglipModel\"], \"initializer_factor\": 1.0, \"model_type\": \"siglip\", " +
                                "\"text_config\": {\"model_type\": \"siglip_text_model\"}, \"vision_config\": {\"patch_size\": 16, \"model_type\": \"siglip_vision_model\"}}";
        return [new FuzzCase(FileName, Encoding.UTF8.GetBytes(HfConfig.ToJson(tiny))), new FuzzCase(FileName, Encoding.UTF8.GetBytes(released))];
    }

    protected override byte[]? MutateStructure(string fileName, byte[] bytes, FuzzRandom rng) => JsonMutations.Mutate(bytes, rng);

    protected override void Parse(string folder, FuzzCase input) => HfConfig.ReadDetailed(Path.Combine(folder, FileName));
}

/// <summary>golden/manifest.json: found by <see cref="GoldenLocator"/> and read by <see cref="GoldenManifest.Read"/>, as `siglip golden verify` does.</summary>
public sealed class ManifestTarget() : FuzzTarget("manifest", "golden/manifest.json: GoldenLocator.Find, then GoldenManifest.Read")
{
    private const string FileName = "manifest.json";

    protected override IReadOnlyList<FuzzCase> MakeSeeds()
    {
        var manifest = new GoldenManifest(
            "siglip-golden/1", "fuzz seed", "two cases",
            new Dictionary<string, GoldenTolerance>
            {
                ["float64"] = new(1e-11, 1e-9, false, "rounding"),
                ["float32"] = new(1e-5, 1e-4, true, "rounding, \u00e9"),
            },
            [
                new GoldenManifestCase("loss-n1", "loss", "one pair", new Dictionary<string, string> { ["expected.safetensors"] = new string('a', 64) }),
                new GoldenManifestCase("hf-siglip-tiny", "model", "the HF fixture", new Dictionary<string, string> { ["config.json"] = new string('0', 64), ["expected.safetensors"] = new string('f', 64) }),
            ]);
        return [new FuzzCase(FileName, Encoding.UTF8.GetBytes(manifest.ToJson()))];
    }

    protected override byte[]? MutateStructure(string fileName, byte[] bytes, FuzzRandom rng) => JsonMutations.Mutate(bytes, rng);

    protected override void Parse(string folder, FuzzCase input)
    {
        string golden = GoldenLocator.Find(folder, "--golden", null, folder, folder);
        GoldenManifest.Read(Path.Combine(golden, FileName));
    }
}

/// <summary>A golden case's weights.json (seeded parameters): <see cref="SeededWeights.Read"/>, as loading a case without model.safetensors does.</summary>
public sealed class GoldenWeightsTarget() : FuzzTarget("golden-weights", "a golden case's weights.json: SeededWeights.Read for a tiny model (the parameters drawn from its seed)")
{
    private const string FileName = "weights.json";

    // Tiny, so that a case that parses draws its parameters in microseconds.
    private static readonly SiglipConfig Tiny = new(
        new TextConfig(VocabSize: 16, HiddenSize: 8, IntermediateSize: 16, NumHiddenLayers: 1, NumAttentionHeads: 2, MaxPositionEmbeddings: 4, ProjectionSize: 8),
        new VisionConfig(HiddenSize: 8, IntermediateSize: 16, NumHiddenLayers: 1, NumAttentionHeads: 2, ImageSize: 8, PatchSize: 4));

    protected override IReadOnlyList<FuzzCase> MakeSeeds() =>
        [new FuzzCase(FileName, Encoding.UTF8.GetBytes(SeededWeights.ToJson(208, 2.302585092994046, -10, "fuzz seed, \u00e9")))];

    protected override byte[]? MutateStructure(string fileName, byte[] bytes, FuzzRandom rng) => JsonMutations.Mutate(bytes, rng);

    protected override void Parse(string folder, FuzzCase input) => SeededWeights.Read(Path.Combine(folder, FileName), Tiny);
}

/// <summary>PNG and JPEG files: <see cref="ImageLoader.Load(string)"/> (decode, resize, pixel values), as a caption folder's images are read.</summary>
public sealed class ImageTarget : FuzzTarget
{
    private readonly bool _png;
    private readonly string _fileName;

    public ImageTarget(bool png)
        : base(png ? "png" : "jpeg", png ? "a PNG image: ImageLoader.Load (SkiaSharp decode, bicubic resize, pixel values)" : "a JPEG image: ImageLoader.Load (SkiaSharp decode, bicubic resize, pixel values)")
    {
        _png = png;
        _fileName = png ? "image.png" : "image.jpg";
    }

    protected override IReadOnlyList<FuzzCase> MakeSeeds()
    {
        var format = _png ? SkiaSharp.SKEncodedImageFormat.Png : SkiaSharp.SKEncodedImageFormat.Jpeg;
        return
        [
            new FuzzCase(_fileName, Encode(9, 7, SkiaSharp.SKColorType.Rgba8888, format)),
            new FuzzCase(_fileName, Encode(5, 3, SkiaSharp.SKColorType.Gray8, format)),
            new FuzzCase(_fileName, Encode(16, 16, SkiaSharp.SKColorType.Rgba8888, format)),
        ];
    }

    /// <summary>A small gradient image, encoded by SkiaSharp.</summary>
    private static byte[] Encode(int width, int height, SkiaSharp.SKColorType colorType, SkiaSharp.SKEncodedImageFormat format)
    {
        var info = new SkiaSharp.SKImageInfo(width, height, colorType, colorType == SkiaSharp.SKColorType.Gray8 ? SkiaSharp.SKAlphaType.Opaque : SkiaSharp.SKAlphaType.Unpremul);
        using var bitmap = new SkiaSharp.SKBitmap(info);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, new SkiaSharp.SKColor((byte)(x * 255 / width), (byte)(y * 255 / height), (byte)((x + y) * 17), (byte)(colorType == SkiaSharp.SKColorType.Gray8 ? 255 : 128 + x * 8)));
        using var data = bitmap.Encode(format, 90) ?? throw new InvalidOperationException($"SkiaSharp could not encode a {format} seed image.");
        return data.ToArray();
    }

    protected override byte[]? MutateStructure(string fileName, byte[] bytes, FuzzRandom rng) =>
        _png ? ImageMutations.MutatePng(bytes, rng) : ImageMutations.MutateJpeg(bytes, rng);

    protected override void Parse(string folder, FuzzCase input) => new ImageLoader(8).Load(Path.Combine(folder, _fileName));
}
