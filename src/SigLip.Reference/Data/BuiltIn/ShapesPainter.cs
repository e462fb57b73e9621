namespace SigLip.Reference.Data.BuiltIn;

/// <summary>
/// Draws one shape on a tinted grey background, with anti-aliased edges and Gaussian noise.
/// Shapes are regions of the square [-1, 1]^2 in shape coordinates (u right, v DOWN, both in
/// units of the radius), so every shape fits inside the circle's bounding box.
/// </summary>
internal static class ShapesPainter
{
    /// <summary>Sub-samples per pixel side: 3x3 points per pixel give the coverage of an edge pixel.</summary>
    private const int SubSamples = 3;

    /// <summary>Whether the point (u, v) of the shape's square lies inside the shape.</summary>
    public static bool Contains(string shape, double u, double v) => shape switch
    {
        "circle" => u * u + v * v <= 1.0,
        // Side 1.6 r, so a square's area (2.56 r^2) is not far above a circle's (3.14 r^2 is larger).
        "square" => Math.Abs(u) <= 0.8 && Math.Abs(v) <= 0.8,
        // Apex up at v = -1, base at v = 0.8 with half-width 1.
        "triangle" => v <= 0.8 && Math.Abs(u) <= (v + 1.0) / 1.8,
        "cross" => (Math.Abs(u) <= 0.3 && Math.Abs(v) <= 1.0) || (Math.Abs(v) <= 0.3 && Math.Abs(u) <= 1.0),
        "diamond" => Math.Abs(u) + Math.Abs(v) <= 1.0,
        "ring" => u * u + v * v <= 1.0 && u * u + v * v >= 0.5 * 0.5,
        _ => throw new ArgumentException($"Unknown shape '{shape}'; known shapes: {string.Join(", ", ShapesVocabulary.Shapes)}."),
    };

    /// <summary>
    /// Pixels [3, size, size] in [-1, 1]: background colour everywhere, blended toward the shape's
    /// colour by the fraction of each pixel the shape covers, then noise, then clipped.
    /// Colours are RGB in [0, 1].
    /// </summary>
    public static double[] Render(ShapeScene scene, int size, (double R, double G, double B) shapeRgb,
        (double R, double G, double B) backgroundRgb, ShapesRandom noise, double noiseStd)
    {
        var pixels = new double[3 * size * size]; // [C=3, H, W]
        int plane = size * size;
        for (int y = 0; y < size; y++)
        {
            for (int x = 0; x < size; x++)
            {
                int inside = 0;
                for (int sy = 0; sy < SubSamples; sy++)
                {
                    for (int sx = 0; sx < SubSamples; sx++)
                    {
                        // Pixel (x, y) covers [x, x+1) x [y, y+1); sample points at the centres of a 3x3 grid.
                        double px = x + (sx + 0.5) / SubSamples;
                        double py = y + (sy + 0.5) / SubSamples;
                        if (Contains(scene.Shape, (px - scene.CenterX) / scene.Radius, (py - scene.CenterY) / scene.Radius)) inside++;
                    }
                }
                double coverage = inside / (double)(SubSamples * SubSamples);
                int at = y * size + x;
                pixels[at] = Blend(backgroundRgb.R, shapeRgb.R, coverage);
                pixels[plane + at] = Blend(backgroundRgb.G, shapeRgb.G, coverage);
                pixels[2 * plane + at] = Blend(backgroundRgb.B, shapeRgb.B, coverage);
            }
        }
        for (int i = 0; i < pixels.Length; i++)
        {
            double value = pixels[i] * 2.0 - 1.0; // [0, 1] -> [-1, 1], as SigLIP's (x/255 - 0.5) / 0.5
            if (noiseStd > 0) value += noiseStd * noise.NextGaussian();
            pixels[i] = Math.Clamp(value, -1.0, 1.0);
        }
        return pixels;
    }

    private static double Blend(double background, double shape, double coverage) => background + (shape - background) * coverage;
}
