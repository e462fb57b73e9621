using SigLip.Reference.Backends;
using SigLip.Reference.Loss;
using SigLip.Reference.Models;

namespace SigLip.Reference.IO.Golden;

/// <summary>
/// Writes the golden cases: the reference computes every case in float64 from fixed seeds
/// (<see cref="GoldenRandom"/>), and the HF fixture is copied in beside them. No timestamps, fixed
/// orders: running it twice gives the same bytes.
/// </summary>
public static class GoldenGenerator
{
    /// <summary>The name of the case copied from the Hugging Face fixture (computed by transformers, not by this code).</summary>
    public const string HfFixtureCase = "hf-siglip-tiny";
    private const int SampleCount = 1024;
    private const long FullGradientLimit = 65_536;

    private sealed record LossCase(string Name, string Covers, int N, int D, double LogitScale, double LogitBias, ulong Seed,
        LossKind Kind = LossKind.Sigmoid, int Chunks = 1, double NormEpsilon = 0, double EmbedScale = 1, double Correlation = 0);

    private sealed record ModelCase(string Name, string Covers, SiglipConfig Config, int Batch, ulong Seed,
        LockedTowers Locked = LockedTowers.None, LossKind Kind = LossKind.Sigmoid, bool SeededWeights = false,
        double LogitScale = 2.302585092994046, double LogitBias = -10);

    private static SiglipConfig Config(
        int textWidth, int textLayers, int textHeads, int textMlp, int length, int vocab,
        int visionWidth, int visionLayers, int visionHeads, int visionMlp, int image, int patch, int channels = 3,
        int? projection = null, double eps = 1e-6) => new(
        new TextConfig(VocabSize: vocab, HiddenSize: textWidth, IntermediateSize: textMlp, NumHiddenLayers: textLayers,
            NumAttentionHeads: textHeads, MaxPositionEmbeddings: length, ProjectionSize: projection ?? visionWidth, LayerNormEps: eps),
        new VisionConfig(HiddenSize: visionWidth, IntermediateSize: visionMlp, NumHiddenLayers: visionLayers,
            NumAttentionHeads: visionHeads, NumChannels: channels, ImageSize: image, PatchSize: patch, LayerNormEps: eps));

    private static readonly IReadOnlyList<LossCase> LossCases =
    [
        new("loss-n1", "sigmoid loss with a single pair (n = 1: no negatives), paper init t' = ln 10, b = -10", 1, 8, Math.Log(10), -10, 101),
        new("loss-n2-d3", "sigmoid loss, n = 2, width 3, t' = 0.5, b = 0.3", 2, 3, 0.5, 0.3, 102),
        new("loss-n7-d16", "sigmoid loss, odd n = 7, width 16, paper init", 7, 16, Math.Log(10), -10, 103),
        new("loss-n32-d128", "sigmoid loss, n = 32, width 128, t' = 2, b = -5", 32, 128, 2, -5, 104),
        new("loss-extreme-positive", "extreme logits: t = 500, b = +20, aligned pairs (logits from about -480 to +520): log-sigmoid must not overflow or lose the small terms", 6, 8, Math.Log(500), 20, 105, Correlation: 0.9),
        new("loss-extreme-negative", "extreme logits: t' = 6 (t = 403), b = -60, every logit far below zero", 6, 8, 6, -60, 106, Correlation: 0.9),
        new("loss-chunked-n12-d4", "chunked sigmoid loss over D = 4 simulated devices (paper section 3.1); equals the dense loss", 12, 16, Math.Log(10), -10, 107, Chunks: 4),
        new("loss-chunked-n9-d3", "chunked sigmoid loss over D = 3 devices, n = 9", 9, 5, 1.5, -2, 108, Chunks: 3),
        new("loss-softmax-n8", "CLIP's softmax loss (the paper's baseline), n = 8", 8, 12, Math.Log(10), 0, 109, Kind: LossKind.Softmax),
        new("loss-norm-eps-n5", "L2 normalisation with epsilon 1e-8 (big_vision's form) on embeddings of norm ~1e-7, where the epsilon matters", 5, 6, Math.Log(10), -10, 110, NormEpsilon: 1e-8, EmbedScale: 1e-7),
    ];

    private static readonly IReadOnlyList<ModelCase> ModelCases =
    [
        new("model-tiny", "whole model, both towers 2 layers, batch 4", Config(16, 2, 2, 32, 6, 64, 16, 2, 2, 24, 12, 4), 4, 201),
        new("model-batch1", "whole model with a batch of one pair", Config(16, 2, 2, 32, 6, 64, 16, 2, 2, 24, 12, 4), 1, 202),
        new("model-text-wider", "text tower (width 36, 3 heads) wider than the image tower (width 20, 5 heads), projection 36 -> 20, one-channel images", Config(36, 2, 3, 48, 7, 80, 20, 1, 5, 28, 10, 5, channels: 1), 3, 203),
        new("model-odd-heads", "odd head counts and widths: text width 21 with 7 heads, image width 15 with 3 heads, two-channel 9x9 images, LayerNorm eps 1e-5, batch 5", Config(21, 1, 7, 30, 5, 50, 15, 2, 3, 33, 9, 3, channels: 2, eps: 1e-5), 5, 204),
        new("model-softmax", "whole model under CLIP's softmax loss", Config(16, 2, 2, 32, 6, 64, 16, 2, 2, 24, 12, 4), 4, 205, Kind: LossKind.Softmax),
        new("vision-alone", "image tower alone: 3 layers, 16 patches; the text tower is locked (no text gradients are computed or compared)", Config(8, 1, 1, 8, 4, 20, 24, 3, 3, 40, 16, 4), 3, 206, Locked: LockedTowers.Text),
        new("text-alone", "text tower alone (SigLiT): 3 layers, length 10; the image tower is locked (no image gradients are computed or compared)", Config(24, 3, 4, 40, 10, 100, 12, 1, 1, 8, 4, 4, projection: 12), 3, 207, Locked: LockedTowers.Image),
        new("b16-width-one-layer", "one layer per tower at SigLIP B/16 width (768, 12 heads, MLP 3072), 32x32 images (4 patches), text length 8, batch 2; weights from a seed (weights.json); gradients of matrices larger than 65,536 elements are checked on 1,024 sampled elements", Config(768, 1, 12, 3072, 8, 256, 768, 1, 12, 3072, 32, 16), 2, 208, SeededWeights: true),
    ];

    /// <summary>The names of the cases the generator writes (the HF fixture copy included when given).</summary>
    public static IReadOnlyList<string> CaseNames => [.. LossCases.Select(c => c.Name), .. ModelCases.Select(c => c.Name), HfFixtureCase];

    /// <summary>
    /// Writes every case under <paramref name="outDir"/> and then manifest.json. With
    /// <paramref name="hfFixtureDir"/>, the HF fixture is copied to hf-siglip-tiny/ with a
    /// PROVENANCE.md; without it, a copy already present in <paramref name="outDir"/> is kept.
    /// </summary>
    /// <remarks>
    /// Computed by the specification's loops (<see cref="Layers.ReferenceOps"/>), whose summation order
    /// does not depend on the CPU, so the golden bytes do not either.
    /// Every case is first written into a staging folder inside <paramref name="outDir"/>; only when all of
    /// them are complete does each replace its old folder (a rename) and manifest.json follow. A failure
    /// before that (a fixture file missing, a write refused) removes the staging folder and leaves
    /// <paramref name="outDir"/> as it was (an out folder this call created is removed too).
    /// </remarks>
    public static GoldenManifest Generate(string outDir, string? hfFixtureDir = null, Action<string>? log = null)
    {
        outDir = Path.GetFullPath(outDir);
        if (hfFixtureDir is not null) CheckFixture(hfFixtureDir); // the cheap check first: before a second of work
        bool created = !Directory.Exists(outDir);
        Directory.CreateDirectory(outDir);
        var outDirTime = Directory.GetLastWriteTimeUtc(outDir);
        string staging = Path.Combine(outDir, $".generate-{Guid.NewGuid():N}.tmp");
        GoldenManifest manifest;
        var staged = new List<string>();
        try
        {
            Directory.CreateDirectory(staging);
            var manifestCases = new List<GoldenManifestCase>();
            foreach (var c in LossCases)
            {
                log?.Invoke(c.Name);
                manifestCases.Add(WriteLossCase(staging, c));
                staged.Add(c.Name);
            }
            foreach (var c in ModelCases)
            {
                log?.Invoke(c.Name);
                manifestCases.Add(WriteModelCase(staging, c));
                staged.Add(c.Name);
            }
            var hf = CopyHfFixture(outDir, staging, hfFixtureDir, log);
            if (hf is not null) manifestCases.Add(hf);
            if (hfFixtureDir is not null) staged.Add(HfFixtureCase);
            manifest = new GoldenManifest(
                GoldenFormat.FormatVersion,
                $"siglip golden generate (SigLip.Reference golden generator version {GoldenFormat.GeneratorVersion}); every case but hf-siglip-tiny computed by the reference in float64",
                "Golden cases: the contract between the reference and every backend. Each folder is one case in the layout of ../shared/fixtures/hf-siglip-tiny " +
                "(see docs/backend-authors.md). Run them with: siglip golden verify --backend NAME. Tolerances are chosen by the backend's working dtype; " +
                "an element passes when |actual - expected| <= atol + rtol |expected| (atol times the tensor's largest |expected| where atol_relative_to_max_abs).",
                GoldenTolerance.Defaults,
                manifestCases);
            // A case folder that is a file, or a manifest.json that is a FIFO, is refused now, before anything is replaced.
            foreach (var name in staged)
                if (File.Exists(Path.Combine(outDir, name))) throw new PathRefusedException($"Refusing to write the case {name} into {outDir}: {Path.Combine(outDir, name)} is a file, not a case folder; move it away.", Path.Combine(outDir, name));
            AtomicFile.CheckWritable(ContainedPath.ForWriting(outDir, GoldenFormat.ManifestFile));
        }
        catch
        {
            TryDelete(staging);
            if (created) TryDelete(outDir);
            // Adding and removing the staging folder touched the folder's time: put it back, so a failed run changes nothing.
            else try { Directory.SetLastWriteTimeUtc(outDir, outDirTime); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
        // Everything is computed and written: each case replaces its old folder, then the manifest names them.
        foreach (var name in staged) Replace(Path.Combine(staging, name), Path.Combine(outDir, name));
        TryDelete(staging);
        AtomicFile.WriteAllText(ContainedPath.ForWriting(outDir, GoldenFormat.ManifestFile), manifest.ToJson());
        return manifest;
    }

    /// <summary>Moves the finished case folder <paramref name="from"/> to <paramref name="to"/>, the old folder (or a link to one: only the link goes) moved aside and removed.</summary>
    private static void Replace(string from, string to)
    {
        string? aside = null;
        if (FileKinds.Of(to) == FileKind.SymbolicLink)
            File.Delete(to); // the link, never what it points to: nothing outside the out folder is touched
        else if (Directory.Exists(to))
        {
            aside = $"{to}.old-{Guid.NewGuid():N}.tmp";
            Directory.Move(to, aside);
        }
        Directory.Move(from, to);
        if (aside is not null) TryDelete(aside);
    }

    private static void TryDelete(string folder)
    {
        try { if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static Dictionary<string, string> Metadata(string kind, string covers, ulong seed, LockedTowers locked, LossOptions loss) => new()
    {
        [GoldenFormat.KeyFormat] = GoldenFormat.FormatVersion,
        ["generator"] = "SigLip.Reference golden generator version " + GoldenFormat.GeneratorVersion,
        [GoldenFormat.KeyKind] = kind,
        [GoldenFormat.KeyCovers] = covers,
        [GoldenFormat.KeyLocked] = GoldenFormat.LockedName(locked),
        [GoldenFormat.KeyLoss] = loss.Kind.Name(),
        [GoldenFormat.KeyChunks] = loss.Chunks.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [GoldenFormat.KeyNormEpsilon] = GoldenFormat.Format(loss.NormEpsilon),
        ["seed"] = seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["dtype"] = "float64",
    };

    /// <summary>A new, empty case folder inside the staging folder.</summary>
    private static string FreshFolder(string staging, string name)
    {
        var dir = Path.Combine(staging, name);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static GoldenManifestCase Entry(string dir, string name, string kind, string covers)
    {
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in Directory.GetFiles(dir).OrderBy(f => f, StringComparer.Ordinal))
            files[Path.GetFileName(f)] = GoldenManifest.Sha256(f);
        return new GoldenManifestCase(name, kind, covers, files);
    }

    private static GoldenManifestCase WriteLossCase(string outDir, LossCase c)
    {
        var rng = new GoldenRandom(c.Seed);
        var image = rng.Signed((long)c.N * c.D, c.EmbedScale);
        var text = rng.Signed((long)c.N * c.D, c.EmbedScale);
        // Correlation pulls each text towards its image, so the positive logits are large too.
        for (int i = 0; i < text.Length; i++) text[i] = c.Correlation * image[i] + (1 - c.Correlation) * text[i];
        var imageEmbeds = new Tensor([c.N, c.D], image);
        var textEmbeds = new Tensor([c.N, c.D], text);
        var options = new LossOptions(c.Kind, c.Chunks, c.NormEpsilon);
        var r = PairwiseLoss.Compute(imageEmbeds, textEmbeds, c.LogitScale, c.LogitBias, options);

        var dir = FreshFolder(outDir, c.Name);
        SafeTensorsWriter.Write(Path.Combine(dir, GoldenFormat.ExpectedFile),
        [
            SafeTensorEntry.Float("image_embeds", imageEmbeds),
            SafeTensorEntry.Float("text_embeds", textEmbeds),
            SafeTensorEntry.Float("logit_scale", Tensor.Scalar(c.LogitScale)),
            SafeTensorEntry.Float("logit_bias", Tensor.Scalar(c.LogitBias)),
            SafeTensorEntry.Float(OutputNames.Loss, Tensor.Scalar(r.Loss)),
            SafeTensorEntry.Float("grad.image_embeds", r.GradImageEmbeds),
            SafeTensorEntry.Float("grad.text_embeds", r.GradTextEmbeds),
            SafeTensorEntry.Float("grad.logit_scale", Tensor.Scalar(r.GradLogitScale)),
            SafeTensorEntry.Float("grad.logit_bias", Tensor.Scalar(r.GradLogitBias)),
        ], Metadata("loss", c.Covers, c.Seed, LockedTowers.None, options));
        return Entry(dir, c.Name, "loss", c.Covers);
    }

    private static GoldenManifestCase WriteModelCase(string outDir, ModelCase c)
    {
        c.Config.Validate();
        var parameters = GoldenRandom.Parameters(c.Config, c.Seed, c.LogitScale, c.LogitBias);
        var rng = new GoldenRandom(GoldenRandom.Stream(c.Seed, ulong.MaxValue));
        var v = c.Config.Vision;
        var t = c.Config.Text;
        var pixels = new Tensor([c.Batch, v.NumChannels, v.ImageSize, v.ImageSize], rng.Signed((long)c.Batch * v.NumChannels * v.ImageSize * v.ImageSize, 1.0));
        var ids = new int[c.Batch * t.MaxPositionEmbeddings];
        for (int i = 0; i < ids.Length; i++) ids[i] = rng.NextInt(t.VocabSize);
        var batch = new SiglipBatch(pixels, new TokenIds(c.Batch, t.MaxPositionEmbeddings, ids));
        var loss = new LossOptions(c.Kind);

        var model = new SiglipModel(c.Config, parameters);
        var pass = model.Forward(batch, loss, c.Locked);
        var grads = model.Backward(pass);

        var dir = FreshFolder(outDir, c.Name);
        var entries = new List<SafeTensorEntry>
        {
            SafeTensorEntry.TokenIds("input_ids", batch.InputIds),
            SafeTensorEntry.Float("pixel_values", pixels),
        };
        foreach (var (name, value) in pass.Outputs) entries.Add(SafeTensorEntry.Float(name, value));
        ulong gradIndex = 0;
        foreach (var (name, g) in grads)
        {
            gradIndex++;
            if (!c.SeededWeights || g.Size <= FullGradientLimit)
            {
                entries.Add(SafeTensorEntry.Float(OutputNames.GradPrefix + name, g));
                continue;
            }
            // Too large to keep: a fixed sample of its elements, indices drawn from the case's seed.
            var sampler = new GoldenRandom(GoldenRandom.Stream(c.Seed + 1, gradIndex));
            var indices = new SortedSet<long>();
            while (indices.Count < SampleCount) indices.Add((long)(sampler.NextUInt64() % (ulong)g.Size));
            var idx = indices.ToArray();
            entries.Add(SafeTensorEntry.Int64(GoldenFormat.GradSampleIndexPrefix + name, [idx.Length], idx));
            entries.Add(SafeTensorEntry.Float(GoldenFormat.GradSamplePrefix + name, new Tensor([idx.Length], idx.Select(i => g.Data[i]).ToArray())));
        }
        SafeTensorsWriter.Write(Path.Combine(dir, GoldenFormat.ExpectedFile), entries, Metadata("model", c.Covers, c.Seed, c.Locked, loss));
        HfConfig.Write(Path.Combine(dir, HfCheckpoint.ConfigFileName), c.Config);
        if (c.SeededWeights)
            AtomicFile.WriteAllText(Path.Combine(dir, GoldenFormat.WeightsSpecFile),
                SeededWeights.ToJson(c.Seed, c.LogitScale, c.LogitBias, "Parameters of GoldenRandom.Parameters(config, seed, logit_scale, logit_bias): too large (about 23M values) to keep in the repository."));
        else
            SafeTensorsWriter.Write(Path.Combine(dir, HfCheckpoint.WeightsFileName),
                parameters.Select(kv => SafeTensorEntry.Float(kv.Key, kv.Value)), new Dictionary<string, string> { ["format"] = "pt" });
        return Entry(dir, c.Name, "model", c.Covers);
    }

    /// <summary>With a fixture folder: its copy in the staging folder; without: the copy already in <paramref name="outDir"/>, kept as it is.</summary>
    private static GoldenManifestCase? CopyHfFixture(string outDir, string staging, string? hfFixtureDir, Action<string>? log)
    {
        const string covers = "outside referee: HF transformers 5.17.0 / PyTorch 2.11.0 float64 forward and backward of a tiny SiglipModel (copied unchanged from ../shared/fixtures/hf-siglip-tiny; see PROVENANCE.md)";
        var dir = Path.Combine(hfFixtureDir is not null ? staging : outDir, HfFixtureCase);
        string[] files = FixtureFiles;
        if (hfFixtureDir is not null)
        {
            log?.Invoke($"{HfFixtureCase} (copied from {hfFixtureDir})");
            Directory.CreateDirectory(dir);
            foreach (var f in files) AtomicFile.WriteAllBytes(Path.Combine(dir, f), File.ReadAllBytes(Path.Combine(hfFixtureDir, f)));
            AtomicFile.WriteAllText(Path.Combine(dir, "PROVENANCE.md"), Provenance(files.ToDictionary(f => f, f => GoldenManifest.Sha256(Path.Combine(dir, f)))));
        }
        else if (!GoldenCase.IsCase(dir))
        {
            log?.Invoke($"{HfFixtureCase}: no fixture folder given and no copy present; left out");
            return null;
        }
        return Entry(dir, HfFixtureCase, "model", covers);
    }

    private static readonly string[] FixtureFiles = [HfCheckpoint.ConfigFileName, HfCheckpoint.WeightsFileName, GoldenFormat.ExpectedFile];

    private static void CheckFixture(string hfFixtureDir)
    {
        foreach (var f in FixtureFiles)
        {
            var src = Path.Combine(hfFixtureDir, f);
            if (!File.Exists(src)) throw new FileNotFoundException($"{hfFixtureDir}: the HF fixture has no {f}; give the folder holding {string.Join(", ", FixtureFiles)}.", src);
        }
    }

    private static string Provenance(IReadOnlyDictionary<string, string> sha) =>
        "# hf-siglip-tiny: provenance\n\n" +
        "This case was not produced by this project. It is a copy, byte for byte, of\n" +
        "`../shared/fixtures/hf-siglip-tiny/` (see `../shared/fixtures/README.md`), made outside the project with\n" +
        "Hugging Face transformers 5.17.0 and PyTorch 2.11.0 (`SiglipModel`, CPU, `torch.float64`, seed 1):\n\n" +
        "- `config.json`, `model.safetensors`: written by `save_pretrained` (the HF layout and parameter names of the\n" +
        "  released google/siglip-* checkpoints). Text: vocab 256, width 32, 2 layers, 4 heads, MLP 64, 12 positions.\n" +
        "  Vision: 16x16 images, 4x4 patches, width 32, 2 layers, 4 heads, MLP 64. gelu_pytorch_tanh, LayerNorm eps 1e-6.\n" +
        "  Every parameter was perturbed after initialisation (p += 0.05 randn); logit_scale = ln(10) + 0.1, logit_bias = -9.5.\n" +
        "- `expected.safetensors`: one forward and backward pass on a batch of 6: the inputs (`input_ids`, `pixel_values`),\n" +
        "  HF's outputs and `grad.<parameter>` for all 88 parameters of HF's sigmoid loss (`return_loss=True`).\n\n" +
        "It is the outside referee: the reference must reproduce it within |a-e| <= 1e-11 + 1e-9 |e| in float64.\n" +
        "`siglip golden generate` copies it again from the fixture folder (or keeps this copy when the folder is absent).\n\n" +
        "sha256 of the copied files:\n\n" +
        string.Concat(sha.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"- `{kv.Key}`: `{kv.Value}`\n"));
}
