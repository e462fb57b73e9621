using SigLip.Reference.Evaluation;
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SigLip.Data;
using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.IO;

namespace SigLip.Cli.Commands;

/// <summary>
/// `siglip embed --checkpoint DIR (--images PATH... | --texts TEXT...) [--out FILE.safetensors] [--backend managed]`:
/// L2-normalised embeddings, written as image_embeds or text_embeds [N, D] (float64) with the inputs in
/// the metadata, or printed one JSON array per line.
/// </summary>
internal static class EmbedCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "A SigLIP checkpoint folder: config.json, model.safetensors, spiece.model.", Required = true };
        var images = new Option<string[]>("--images") { Description = "Image files to embed.", AllowMultipleArgumentsPerToken = true };
        var texts = new Option<string[]>("--texts") { Description = "Texts to embed.", AllowMultipleArgumentsPerToken = true };
        var output = new Option<string?>("--out") { Description = "Write the embeddings here (.safetensors); without it they are printed." };
        var backendOptions = new BackendCliOptions();
        var command = new Command("embed", "Normalised image or text embeddings of a pretrained SigLIP checkpoint.");
        foreach (var o in new Option[] { checkpoint, images, texts, output }) command.Options.Add(o);
        backendOptions.AddTo(command);
        command.SetAction(parse =>
        {
            var imagePaths = parse.GetValue(images) ?? [];
            var textList = parse.GetValue(texts) ?? [];
            if ((imagePaths.Length > 0) == (textList.Length > 0))
                throw new ArgumentException("Give either --images PATH... or --texts TEXT... (one of them, not both).");
            if (parse.GetValue(output) is { } target) AtomicFile.CheckWritable(target); // refused before the model loads and runs, not after
            var pretrained = PretrainedFolder.Load(parse.GetValue(checkpoint)!);
            foreach (var w in pretrained.Warnings) Console.Error.WriteLine($"note: {w}");
            using var started = backendOptions.Start(parse);
            using var model = started.CreateModel(pretrained.Config, pretrained.Parameters);
            bool isImages = imagePaths.Length > 0;
            Tensor embeds = isImages
                ? new ImageLoader(pretrained.Config.Vision.ImageSize).Embed(model, imagePaths)
                : Embeddings.OfTexts(model, pretrained.Tokenizer, textList, pretrained.MaxLength);
            string name = isImages ? OutputNames.ImageEmbeds : OutputNames.TextEmbeds;
            var outPath = parse.GetValue(output);
            if (outPath is null)
            {
                int d = embeds.Shape[1];
                for (int i = 0; i < embeds.Shape[0]; i++)
                    Console.Out.WriteLine("[" + string.Join(",", embeds.Data.Skip(i * d).Take(d).Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "]");
                return 0;
            }
            var metadata = new Dictionary<string, string>
            {
                ["checkpoint"] = pretrained.Folder,
                ["backend"] = started.Name,
                [isImages ? "images" : "texts"] = JsonSerializer.Serialize(isImages ? imagePaths : textList),
                ["normalised"] = "L2",
            };
            SafeTensorsWriter.Write(outPath, [SafeTensorEntry.Float(name, embeds, SafeTensorDType.F64)], metadata);
            Console.Error.WriteLine($"wrote {name} {Tensor.ShapeToString(embeds.Shape)} to {outPath}");
            return 0;
        });
        return command;
    }
}
