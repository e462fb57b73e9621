using SigLip.Reference.Evaluation;
using System.CommandLine;
using System.Globalization;
using SigLip.Data;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using Spectre.Console;

namespace SigLip.Cli.Commands;

/// <summary>
/// `siglip similarity --checkpoint DIR --images PATH... --texts TEXT...`: for each image and text, the
/// probability that they match, sigmoid(exp(t') * &lt;x, y&gt; + b) (SigLIP's own reading of its logits; each
/// pair on its own, rows need not sum to 1).
/// </summary>
internal static class SimilarityCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "A SigLIP checkpoint folder: config.json, model.safetensors, spiece.model.", Required = true };
        var images = new Option<string[]>("--images") { Description = "Image files.", Required = true, AllowMultipleArgumentsPerToken = true };
        var texts = new Option<string[]>("--texts") { Description = "Texts (e.g. \"a photo of a cat\").", Required = true, AllowMultipleArgumentsPerToken = true };
        var backendOptions = new BackendCliOptions();
        var command = new Command("similarity", "Match probabilities of images against texts with a pretrained SigLIP checkpoint.");
        foreach (var o in new Option[] { checkpoint, images, texts }) command.Options.Add(o);
        backendOptions.AddTo(command);
        command.SetAction(parse =>
        {
            var imagePaths = parse.GetValue(images)!;
            var textList = parse.GetValue(texts)!;
            var pretrained = PretrainedFolder.Load(parse.GetValue(checkpoint)!);
            foreach (var w in pretrained.Warnings) Console.Error.WriteLine($"note: {w}");
            using var started = backendOptions.Start(parse);
            using var model = started.CreateModel(pretrained.Config, pretrained.Parameters);
            var imageEmbeds = new ImageLoader(pretrained.Config.Vision.ImageSize).Embed(model, imagePaths);
            var textEmbeds = Embeddings.OfTexts(model, pretrained.Tokenizer, textList, pretrained.MaxLength);
            double scale = pretrained.Parameters[ParameterLayout.LogitScale].Data[0], bias = pretrained.Parameters[ParameterLayout.LogitBias].Data[0];
            var p = Embeddings.SigmoidProbabilities(imageEmbeds, textEmbeds, scale, bias);

            var table = new Table().Title($"P(match) = sigmoid({Math.Exp(scale).ToString("G5", CultureInfo.InvariantCulture)} * cos + ({bias.ToString("G5", CultureInfo.InvariantCulture)}))");
            table.AddColumn("image");
            foreach (var t in textList) table.AddColumn(new TableColumn(Markup.Escape(t)).RightAligned());
            for (int i = 0; i < imagePaths.Length; i++)
            {
                var row = new List<string> { Markup.Escape(Path.GetFileName(imagePaths[i])) };
                for (int j = 0; j < textList.Length; j++) row.Add(Format(p.Data[i * textList.Length + j]));
                table.AddRow(row.ToArray());
            }
            // A console bound to the current Console.Out (so redirected output gets the table too).
            AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) }).Write(table);
            return 0;
        });
        return command;
    }

    // Small probabilities are common (b = -10 at initialisation): keep them readable rather than 0.0000.
    private static string Format(double p) => p >= 1e-3 || p == 0
        ? p.ToString("0.0000", CultureInfo.InvariantCulture)
        : p.ToString("0.00E+0", CultureInfo.InvariantCulture);
}
