using System.CommandLine;
using System.Text.Json;
using SigLip.Data;

namespace SigLip.Cli.Commands;

/// <summary>`siglip tokenize --model spiece.model --max-length N TEXT...`: one JSON array of ids per text, per line.</summary>
internal static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "The SentencePiece model (spiece.model of a SigLIP checkpoint).", Required = true };
        var maxLength = new Option<int>("--max-length") { Description = "Ids per text: the pieces, then </s>, padded with </s> (SigLIP checkpoints use 64).", DefaultValueFactory = _ => 64 };
        var raw = new Option<bool>("--sentencepiece") { Description = "Print plain SentencePiece ids instead (no SigLIP canonicalisation, no </s>, no padding)." };
        var maxMemory = SizeCliOptions.MaxMemory();
        var texts = new Argument<string[]>("text") { Description = "The texts to tokenize.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("tokenize", "Tokenize texts as SigLIP does (HF SiglipTokenizer with padding=max_length, truncation).");
        command.Options.Add(model);
        command.Options.Add(maxLength);
        command.Options.Add(raw);
        command.Options.Add(maxMemory);
        command.Arguments.Add(texts);
        command.SetAction(parse =>
        {
            int max = parse.GetValue(maxLength);
            if (max < 1) throw new ArgumentException($"--max-length must be at least 1 (room for </s>), got {max}.");
            // Checked before the model is read or a row allocated: one row of --max-length ids (and its mask) per text.
            SigLip.Reference.Models.ModelSize.CheckTokenIdsFit((parse.GetValue(texts) ?? []).Length, max, SizeCliOptions.Parse(parse, maxMemory));
            var tokenizer = SiglipTokenizer.Load(parse.GetValue(model)!);
            foreach (var text in parse.GetValue(texts) ?? [])
            {
                IReadOnlyList<int> ids = parse.GetValue(raw) ? tokenizer.EncodeSentencePiece(text) : tokenizer.EncodeRow(text, max);
                Console.Out.WriteLine(JsonSerializer.Serialize(ids));
            }
            return 0;
        });
        return command;
    }
}
