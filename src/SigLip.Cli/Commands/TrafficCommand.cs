using System.CommandLine;
using System.Globalization;
using SigLip.Reference.Distributed;
using SigLip.Reference.Models;
using Spectre.Console;

namespace SigLip.Cli.Commands;

/// <summary>
/// `siglip traffic`: the bytes one data-parallel training step sends per rank (ring hops plus the
/// gradient all-reduce), computed from the shapes of a config (<see cref="DataParallelTraffic"/>).
/// </summary>
internal static class TrafficCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "Model: b16, s16 or tiny (as `siglip throughput`).", DefaultValueFactory = _ => "b16" };
        var batch = new Option<int>("--batch-size") { Description = "The global batch n.", DefaultValueFactory = _ => 4096 };
        var ranks = new Option<string>("--ranks") { Description = "Rank counts W, comma-separated; each must divide n.", DefaultValueFactory = _ => "2,4,8,16" };
        var bytes = new Option<int>("--element-bytes") { Description = "Bytes per element sent: 4 (float32) or 8 (float64).", DefaultValueFactory = _ => 4 };
        var command = new Command("traffic", "Bytes one data-parallel step sends per rank: the ring's hops plus the gradient all-reduce, from the shapes.");
        foreach (var o in new Option[] { config, batch, ranks, bytes }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var model = ThroughputCommand.ConfigByName(parse.GetValue(config)!);
            int n = parse.GetValue(batch), s = parse.GetValue(bytes);
            var counts = parse.GetValue(ranks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(w => int.TryParse(w, NumberStyles.None, CultureInfo.InvariantCulture, out var k) && k >= 1 ? k
                    : throw new ArgumentException($"--ranks: '{w}' is not a rank count (a whole number, at least 1).")).ToList();
            var table = new Table().AddColumn("W").AddColumn(new TableColumn("pairs per rank").RightAligned())
                .AddColumn(new TableColumn("ring hops").RightAligned()).AddColumn(new TableColumn("gradient all-reduce").RightAligned())
                .AddColumn(new TableColumn("total per rank").RightAligned());
            foreach (int w in counts)
            {
                var t = DataParallelTraffic.For(model, n, w, s);
                table.AddRow(w.ToString(CultureInfo.InvariantCulture), t.PairsPerRank.ToString(CultureInfo.InvariantCulture),
                    Size(t.RingBytes), Size(t.GradientAllReduceBytes), Size(t.TotalBytes));
            }
            AnsiConsole.MarkupLine($"Per rank per step: {Markup.Escape(parse.GetValue(config)!)} ({ParameterLayout.Count(model):N0} parameters, embedding width {model.Vision.HiddenSize}), global batch {n}, {s}-byte elements.");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine("Ring: W hops of (2 c d + 1) elements. All-reduce: 2 (W - 1) / W of the tower gradients (ring algorithm).");
            return 0;
        });
        return command;
    }

    private static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => (bytes / (double)(1L << 30)).ToString("F2", CultureInfo.InvariantCulture) + " GiB",
        >= 1L << 20 => (bytes / (double)(1L << 20)).ToString("F2", CultureInfo.InvariantCulture) + " MiB",
        >= 1L << 10 => (bytes / (double)(1L << 10)).ToString("F1", CultureInfo.InvariantCulture) + " KiB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + " B",
    };
}
