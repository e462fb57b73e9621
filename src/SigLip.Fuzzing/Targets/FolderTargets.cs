using System.Text;
using SigLip.Data;
using SigLip.Data.Text;
using SigLip.Reference;
using SigLip.Reference.IO;
using SigLip.Reference.Models;
using SigLip.Reference.Training;

namespace SigLip.Fuzzing.Targets;

/// <summary>
/// A caption folder's captions file (JSON lines or TSV) and its classes.txt: <see cref="ImageCaptionFolder"/>
/// and every entry of <see cref="ImageCaptionFolder.Entries"/>, as training and evaluation read them
/// (images are not decoded; the png and jpeg targets cover those). A bad line must be skipped and counted.
/// </summary>
public sealed class CaptionsTarget : FuzzTarget
{
    private readonly bool _tsv;
    private readonly string _fileName;

    public CaptionsTarget(bool tsv)
        : base(tsv ? "captions-tsv" : "captions-jsonl", $"a caption folder's {(tsv ? "captions.tsv" : "captions.jsonl")} and classes.txt: ImageCaptionFolder, Entries, SkipSummary")
    {
        _tsv = tsv;
        _fileName = tsv ? "captions.tsv" : "captions.jsonl";
    }

    protected override IReadOnlyList<FuzzCase> MakeSeeds()
    {
        string captions = _tsv
            ? "image\tcaption\tclass\na.png\ta cat on the mat\tcat\nsub/b.jpg\ta dog in the snow\tdog\n\nc.png\tÜnïcödé caption, no class\n"
            : "{\"image\": \"a.png\", \"caption\": \"a cat on the mat\", \"class\": \"cat\"}\n" +
              "{\"image\": \"sub/b.jpg\", \"caption\": \"a dog in the \\\"snow\\\"\", \"class\": \"dog\"}\n\n" +
              "{\"image\": \"c.png\", \"caption\": \"Ünïcödé caption, no class\"}\n";
        var classes = new FuzzFile("classes.txt", "cat\ndog\nbird\n"u8.ToArray());
        return [new FuzzCase([new FuzzFile(_fileName, Encoding.UTF8.GetBytes(captions)), classes])];
    }

    protected override byte[]? MutateStructure(string fileName, byte[] bytes, FuzzRandom rng)
    {
        if (fileName != _fileName) return null;
        // One line at a time: JSON changes for JSON lines, cell changes for TSV.
        var lines = Encoding.UTF8.GetString(bytes).Split('\n').ToList();
        int i = rng.Next(lines.Count);
        byte[] line = Encoding.UTF8.GetBytes(lines[i]);
        byte[]? changed = _tsv ? MutateTsvLine(lines[i], rng) : JsonMutations.Mutate(line, rng);
        if (changed is null) return null;
        var result = new List<byte>();
        for (int j = 0; j < lines.Count; j++)
        {
            result.AddRange(j == i ? changed : Encoding.UTF8.GetBytes(lines[j]));
            if (j < lines.Count - 1) result.Add((byte)'\n');
        }
        return [.. result];
    }

    private static byte[] MutateTsvLine(string line, FuzzRandom rng)
    {
        var cells = line.Split('\t').ToList();
        string[] odd = ["", " ", "/etc/passwd", "../outside.png", "a\0b.png", "\\\\server\\share.png", "C:\\x.png", "~/x.png", "a.png\r", "\ud800", "cat", "bird ", new string('x', 5000)];
        switch (rng.Next(3))
        {
            case 0: cells[rng.Next(cells.Count)] = rng.Pick(odd); break;
            case 1: cells.Insert(rng.Next(cells.Count + 1), rng.Pick(odd)); break;
            default: if (cells.Count > 0) cells.RemoveAt(rng.Next(cells.Count)); break;
        }
        // A lone surrogate written as UTF-8 by the lenient encoder becomes EF BF BD; write raw bytes instead half the time.
        var text = string.Join('\t', cells);
        return text.Contains('\ud800') && rng.OneIn(2)
            ? [.. Encoding.UTF8.GetBytes(text.Replace("\ud800", "")), 0xED, 0xA0, 0x80]
            : Encoding.UTF8.GetBytes(text);
    }

    protected override void Parse(string folder, FuzzCase input)
    {
        var data = new ImageCaptionFolder(folder, imageSize: 16, captionsFile: Path.Combine(folder, _fileName), shuffleBuffer: 4);
        foreach (var _ in data.Entries(seed: 7)) { }
        _ = data.SkipSummary();
    }
}

/// <summary>
/// spiece.model: <see cref="SiglipTokenizer.Load"/> (the protobuf reader, the checks, Microsoft.ML.Tokenizers'
/// load behind a guard) and a few texts encoded, as `siglip tokenize` does. The seeds are a tiny unigram
/// model built here, and the repository's fixture model when ../shared is there.
/// </summary>
public sealed class SentencePieceTarget(string? fixtureModel = null)
    : FuzzTarget("spiece", "a SentencePiece model: SiglipTokenizer.Load, then EncodeRow / EncodeSentencePiece / IdToPiece on a few texts")
{
    private const string FileName = "spiece.model";
    private static readonly string[] Texts = ["a cat on the mat", "Hello, World! 123", "", "  \t ", "\u00e9t\u00e9 \u3042 \ud83d\ude00 x\u0001y", "the the the the the the the the the the the the the the the the"];

    /// <summary>The fixture model used as a second seed, when found.</summary>
    public string? FixtureModel { get; } = fixtureModel is not null && File.Exists(fixtureModel) ? fixtureModel : null;

    protected override IReadOnlyList<FuzzCase> MakeSeeds()
    {
        var seeds = new List<FuzzCase> { new(FileName, TinyModel()) };
        if (FixtureModel is not null) seeds.Add(new FuzzCase(FileName, File.ReadAllBytes(FixtureModel)));
        return seeds;
    }

    /// <summary>
    /// A unigram model as SigLIP's is laid out (pad 0, &lt;/s&gt; 1, &lt;unk&gt; 2, no BOS), with a handful of
    /// pieces and no normalisation map, written field by field (sentencepiece_model.proto).
    /// </summary>
    public static byte[] TinyModel()
    {
        var model = new MemoryStream();
        void Piece(string text, float score, PieceType type)
        {
            var p = new MemoryStream();
            Bytes(p, 1, Encoding.UTF8.GetBytes(text));
            Tag(p, 2, 5); p.Write(BitConverter.GetBytes(score));
            Varint(p, 3, (ulong)type);
            Bytes(model, SentencePieceModelProto.ModelPiecesField, p.ToArray());
        }
        Piece("<pad>", 0, PieceType.Control);
        Piece("</s>", 0, PieceType.Control);
        Piece("<unk>", 0, PieceType.Unknown);
        string[] words = ["\u2581", "\u2581a", "\u2581cat", "\u2581on", "\u2581the", "\u2581mat", "\u2581hello", "\u2581world", "at", "th"];
        for (int i = 0; i < words.Length; i++) Piece(words[i], -1 - i * 0.5f, PieceType.Normal);
        for (char c = 'a'; c <= 'z'; c++) Piece(c.ToString(), -8 - (c - 'a') * 0.1f, PieceType.Normal);
        for (char c = '0'; c <= '9'; c++) Piece(c.ToString(), -12, PieceType.Normal);

        var trainer = new MemoryStream();
        Varint(trainer, SentencePieceModelProto.TrainerModelTypeField, 1);
        Varint(trainer, SentencePieceModelProto.TrainerUnkIdField, 2);
        Varint(trainer, SentencePieceModelProto.TrainerBosIdField, unchecked((ulong)-1L));
        Varint(trainer, SentencePieceModelProto.TrainerEosIdField, 1);
        Varint(trainer, SentencePieceModelProto.TrainerPadIdField, 0);
        Bytes(model, SentencePieceModelProto.ModelTrainerSpecField, trainer.ToArray());

        var normalizer = new MemoryStream();
        Bytes(normalizer, SentencePieceModelProto.NormalizerNameField, "identity"u8.ToArray());
        Varint(normalizer, SentencePieceModelProto.NormalizerAddDummyPrefixField, 1);
        Varint(normalizer, SentencePieceModelProto.NormalizerRemoveExtraWhitespacesField, 1);
        Varint(normalizer, SentencePieceModelProto.NormalizerEscapeWhitespacesField, 1);
        Bytes(model, SentencePieceModelProto.ModelNormalizerSpecField, normalizer.ToArray());
        return model.ToArray();
    }

    private static void Tag(Stream s, int field, int wire) => WriteVarint(s, ((ulong)field << 3) | (uint)wire);
    private static void Varint(Stream s, int field, ulong v) { Tag(s, field, 0); WriteVarint(s, v); }
    private static void Bytes(Stream s, int field, byte[] b) { Tag(s, field, 2); WriteVarint(s, (ulong)b.Length); s.Write(b); }
    private static void WriteVarint(Stream s, ulong v)
    {
        while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        s.WriteByte((byte)v);
    }

    protected override byte[]? MutateStructure(string fileName, byte[] bytes, FuzzRandom rng)
    {
        // Rewrite one varint field the tokenizer reads (model type, special ids, flags) to an extreme value.
        int[] trainerFields = [SentencePieceModelProto.TrainerModelTypeField, SentencePieceModelProto.TrainerUnkIdField, SentencePieceModelProto.TrainerBosIdField, SentencePieceModelProto.TrainerEosIdField, SentencePieceModelProto.TrainerPadIdField];
        int[] normalizerFields = [SentencePieceModelProto.NormalizerAddDummyPrefixField, SentencePieceModelProto.NormalizerRemoveExtraWhitespacesField, SentencePieceModelProto.NormalizerEscapeWhitespacesField];
        long value = rng.Pick<long>([-2, -1, 0, 1, 2, 3, 4, 5, 6, 40, 255, int.MaxValue, int.MinValue, long.MaxValue]);
        try
        {
            return rng.OneIn(3)
                ? SentencePieceModelProto.WithVarintField(bytes, SentencePieceModelProto.ModelNormalizerSpecField, rng.Pick(normalizerFields), value)
                : SentencePieceModelProto.WithVarintField(bytes, SentencePieceModelProto.ModelTrainerSpecField, rng.Pick(trainerFields), value);
        }
        catch (Exception ex) when (FuzzRunner.IsProjectError(ex))
        {
            return null; // already broken beyond field rewriting: byte mutations then
        }
    }

    protected override void Parse(string folder, FuzzCase input)
    {
        var tokenizer = SiglipTokenizer.Load(Path.Combine(folder, FileName));
        foreach (var text in Texts)
        {
            var row = tokenizer.EncodeRow(text, 16);
            foreach (int id in tokenizer.EncodeSentencePiece(text).Concat(row)) tokenizer.IdToPiece(id);
        }
    }
}

/// <summary>
/// trainer_state.json of a training checkpoint: <see cref="TrainingCheckpoint.Load"/> of a tiny, valid
/// checkpoint written once, where only trainer_state.json is the case (as `siglip train --resume` reads it).
/// </summary>
public sealed class TrainerStateTarget() : FuzzTarget("trainer-state", "trainer_state.json of a training checkpoint: TrainingCheckpoint.Load (the rest of the checkpoint is a valid tiny one)")
{
    private string? _template;

    private static SiglipConfig TinyConfig { get; } = new(
        new TextConfig(VocabSize: 16, HiddenSize: 8, IntermediateSize: 16, NumHiddenLayers: 1, NumAttentionHeads: 2, MaxPositionEmbeddings: 4, ProjectionSize: 8),
        new VisionConfig(HiddenSize: 8, IntermediateSize: 16, NumHiddenLayers: 1, NumAttentionHeads: 2, ImageSize: 4, PatchSize: 2));

    private static TrainingState SeedState { get; } = new(
        Step: 3,
        Settings: new TrainingSettings(Steps: 10, BatchSize: 4, CheckpointEvery: 3),
        Data: new DataPosition(1, 4),
        Losses: [0.75, 0.625, 0.5],
        Backend: "reference",
        DType: "float64",
        DataDescription: "built-in toy data");

    protected override void PrepareWork(string root)
    {
        var parameters = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        int k = 0;
        foreach (var spec in ParameterLayout.For(TinyConfig))
        {
            var t = Tensor.Zeros([.. spec.Shape]);
            for (int i = 0; i < t.Data.Length; i++) t.Data[i] = ((k++ % 17) - 8) / 64.0;
            parameters[spec.Name] = t;
        }
        var optimizer = new Dictionary<string, Tensor> { ["step"] = new Tensor([1], [3]) };
        _template = TrainingCheckpoint.Save(Path.Combine(root, "template-run"), TinyConfig, parameters, optimizer, SeedState, SafeTensorDType.F32);
    }

    protected override void InitializeCaseFolder(string folder)
    {
        foreach (var name in new[] { TrainingCheckpoint.ConfigFile, TrainingCheckpoint.ModelFile, TrainingCheckpoint.OptimizerFile })
            File.Copy(Path.Combine(_template!, name), Path.Combine(folder, name), overwrite: true);
    }

    protected override IReadOnlyList<FuzzCase> MakeSeeds() =>
        [new FuzzCase(TrainingCheckpoint.StateFile, File.ReadAllBytes(Path.Combine(_template ?? throw new InvalidOperationException("Prepare the trainer-state target first."), TrainingCheckpoint.StateFile)))];

    protected override byte[]? MutateStructure(string fileName, byte[] bytes, FuzzRandom rng) => JsonMutations.Mutate(bytes, rng);

    protected override void Parse(string folder, FuzzCase input) => TrainingCheckpoint.Load(folder);
}
