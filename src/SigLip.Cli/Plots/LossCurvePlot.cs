using SigLip.Reference.IO;

namespace SigLip.Cli.Plots;

/// <summary>The training loss per step as a PNG (ScottPlot): raw losses and a moving average.</summary>
internal static class LossCurvePlot
{
    /// <summary>Writes the PNG atomically to <paramref name="path"/>.</summary>
    public static void Save(string path, IReadOnlyList<double> losses, string title, int width = 900, int height = 500)
    {
        if (losses.Count == 0) throw new ArgumentException("No losses to plot.");
        var steps = Enumerable.Range(1, losses.Count).Select(i => (double)i).ToArray();
        var raw = losses.ToArray();
        int window = Math.Max(1, losses.Count / 40);
        var smooth = MovingAverage(raw, window);

        var plot = new ScottPlot.Plot();
        var rawLine = plot.Add.ScatterLine(steps, raw);
        rawLine.LegendText = "loss per step";
        rawLine.LineWidth = 1;
        rawLine.Color = window > 1 ? ScottPlot.Colors.SteelBlue.WithAlpha(0.45) : ScottPlot.Colors.SteelBlue;
        if (window > 1)
        {
            var smoothLine = plot.Add.ScatterLine(steps, smooth);
            smoothLine.LegendText = $"moving average ({window} steps)";
            smoothLine.LineWidth = 2.5f;
            smoothLine.Color = ScottPlot.Colors.DarkOrange;
        }
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("loss");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        var bytes = plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
        AtomicFile.Write(path, stream => stream.Write(bytes));
    }

    /// <summary>Trailing mean over up to <paramref name="window"/> values.</summary>
    public static double[] MovingAverage(double[] values, int window)
    {
        var result = new double[values.Length];
        double sum = 0;
        for (int i = 0; i < values.Length; i++)
        {
            sum += values[i];
            if (i >= window) sum -= values[i - window];
            result[i] = sum / Math.Min(i + 1, window);
        }
        return result;
    }
}
