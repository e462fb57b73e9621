using System.Globalization;
using SigLip.Reference;
using SigLip.Reference.IO;

namespace SigLip.Cli.Plots;

/// <summary>
/// An image-by-text matrix [n, n] as a PNG heatmap (ScottPlot): row i = image i at the top, column
/// j = text j, each cell labelled with its value, a colour bar beside it.
/// </summary>
internal static class MatrixHeatmapPlot
{
    /// <summary>Writes the PNG atomically to <paramref name="path"/>.</summary>
    /// <param name="matrix">[n, n], row = image.</param>
    /// <param name="range">Fixed colour range (e.g. 0..1 for probabilities), or null for the data's own range.</param>
    public static void Save(string path, Tensor matrix, string title, (double Min, double Max)? range = null, int size = 640)
    {
        if (matrix.Rank != 2 || matrix.Shape[0] != matrix.Shape[1] || matrix.Shape[0] < 1)
            throw new ArgumentException($"A heatmap needs a square matrix [n, n] with n >= 1, got {Tensor.ShapeToString(matrix.Shape)}.");
        int n = matrix.Shape[0];
        var values = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                values[i, j] = matrix.Data[i * n + j];

        var plot = new ScottPlot.Plot();
        var heatmap = plot.Add.Heatmap(values);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        if (range is { } r) heatmap.ManualRange = new ScottPlot.Range(r.Min, r.Max);
        // Row 0 is drawn at the top (ScottPlot's default), so cell (i, j) is centred on x = j, y = n - 1 - i:
        // image 1 in the top row, as printed. Rectangle sets the outer edges of the cells.
        heatmap.Rectangle = new ScottPlot.CoordinateRect(-0.5, n - 0.5, -0.5, n - 0.5);
        plot.Add.ColorBar(heatmap);

        var (low, high) = range ?? (MinOf(matrix.Data), MaxOf(matrix.Data));
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double v = values[i, j];
                var label = plot.Add.Text(CellText(v), j, n - 1 - i);
                label.LabelAlignment = ScottPlot.Alignment.MiddleCenter;
                label.LabelFontSize = n <= 6 ? 16 : 11;
                // Viridis is dark at the low end: white text there, black at the bright end.
                bool dark = high > low ? (v - low) / (high - low) < 0.6 : true;
                label.LabelFontColor = dark ? ScottPlot.Colors.White : ScottPlot.Colors.Black;
            }
        }

        var positions = Enumerable.Range(0, n).Select(k => (double)k).ToArray();
        plot.Axes.Bottom.SetTicks(positions, Enumerable.Range(1, n).Select(j => $"text {j}").ToArray());
        plot.Axes.Left.SetTicks(positions, Enumerable.Range(0, n).Select(k => $"image {n - k}").ToArray());
        plot.Axes.SetLimits(-0.5, n - 0.5, -0.5, n - 0.5);
        plot.Title(title);
        plot.XLabel("text j");
        plot.YLabel("image i");
        var bytes = plot.GetImageBytes(size + 140, size, ScottPlot.ImageFormat.Png);
        AtomicFile.Write(path, stream => stream.Write(bytes));
    }

    // Small probabilities are common (b = -10 at initialisation): scientific notation keeps their digits.
    private static string CellText(double v) => Math.Abs(v) >= 0.01 || v == 0
        ? v.ToString("0.00", CultureInfo.InvariantCulture)
        : v.ToString("0.0E+0", CultureInfo.InvariantCulture);

    private static double MinOf(double[] a) => a.Length == 0 ? 0 : a.Min();

    private static double MaxOf(double[] a) => a.Length == 0 ? 0 : a.Max();
}
