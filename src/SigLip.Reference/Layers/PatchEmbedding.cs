namespace SigLip.Reference.Layers;

// Patch embedding: HF's Conv2d(C, H, kernel = stride = P, no padding), then flatten(2).transpose(1, 2).
// With kernel = stride the convolution is a Linear map of each non-overlapping patch, so it is
// written as "gather patches" (im2col) followed by Linear:
//   patches[b, n, (c, py, px)] = pixels[b, c, gy*P + py, gx*P + px],   n = gy*G + gx (row-major grid)
//   out[b, n, h] = bias[h] + sum_(c,py,px) patches[b, n, (c, py, px)] * weight[h, c, py, px]
// Dimensions: B = batch, C = channels, S = image side, P = patch side, G = S / P patches per side,
// N = G*G tokens, K = C*P*P values per patch, H = width.

/// <summary>Conv2d with kernel = stride = patch, as patch gathering plus Linear.</summary>
public static class PatchEmbedding
{
    /// <param name="output">[B, N, H], overwritten.</param>
    /// <param name="patches">[B, N, K] saved for backward: each patch flattened in (c, py, px) order.</param>
    /// <param name="pixels">[B, C, S, S].</param>
    /// <param name="weight">[H, C, P, P] (HF layout; read as [H, K]).</param>
    /// <param name="bias">[H].</param>
    public static void Forward(double[] output, double[] patches, double[] pixels, double[] weight, double[] bias, int batch, int channels, int imageSize, int patchSize, int width, ILayerOps? ops = null)
    {
        ops ??= ReferenceOps.Instance;
        GatherPatches(patches, pixels, batch, channels, imageSize, patchSize);
        int grid = imageSize / patchSize;
        ops.LinearForward(output, patches, weight, bias, batch * grid * grid, channels * patchSize * patchSize, width);
    }

    // forward: out = patches W^T + b,  patches = gather(pixels)
    // backward: Linear backward into dpatches, then scatter each patch value back to its pixel
    // (patches do not overlap, so every pixel receives exactly one contribution).
    /// <param name="dpixels">[B, C, S, S] accumulated, or null (pixels need no gradient in training).</param>
    /// <param name="dweight">[H, C, P, P] accumulated, or null.</param>
    /// <param name="dbias">[H] accumulated, or null.</param>
    /// <param name="doutput">[B, N, H].</param>
    /// <param name="patches">[B, N, K] from forward.</param>
    public static void Backward(double[]? dpixels, double[]? dweight, double[]? dbias, double[] doutput, double[] patches, double[] weight, int batch, int channels, int imageSize, int patchSize, int width, ILayerOps? ops = null)
    {
        ops ??= ReferenceOps.Instance;
        int grid = imageSize / patchSize;
        int tokens = grid * grid;
        int patchValues = channels * patchSize * patchSize;
        double[]? dpatches = dpixels is null ? null : new double[batch * tokens * patchValues]; // [B, N, K]
        ops.LinearBackward(dpatches, dweight, dbias, doutput, patches, weight, batch * tokens, patchValues, width);
        if (dpixels is not null) ScatterPatches(dpixels, dpatches!, batch, channels, imageSize, patchSize);
    }

    /// <summary>patches[b, gy*G + gx, (c, py, px)] = pixels[b, c, gy*P + py, gx*P + px].</summary>
    public static void GatherPatches(double[] patches, double[] pixels, int batch, int channels, int imageSize, int patchSize)
    {
        int grid = imageSize / patchSize;
        int patchValues = channels * patchSize * patchSize;
        for (int b = 0; b < batch; b++)
        for (int gy = 0; gy < grid; gy++)
        for (int gx = 0; gx < grid; gx++)
        {
            int dst = (b * grid * grid + gy * grid + gx) * patchValues;
            for (int c = 0; c < channels; c++)
            for (int py = 0; py < patchSize; py++)
            {
                int src = ((b * channels + c) * imageSize + gy * patchSize + py) * imageSize + gx * patchSize;
                for (int px = 0; px < patchSize; px++) patches[dst++] = pixels[src + px];
            }
        }
    }

    /// <summary>The adjoint of <see cref="GatherPatches"/>: dpixels[b, c, y, x] += dpatches[...] (accumulates).</summary>
    public static void ScatterPatches(double[] dpixels, double[] dpatches, int batch, int channels, int imageSize, int patchSize)
    {
        int grid = imageSize / patchSize;
        int patchValues = channels * patchSize * patchSize;
        for (int b = 0; b < batch; b++)
        for (int gy = 0; gy < grid; gy++)
        for (int gx = 0; gx < grid; gx++)
        {
            int src = (b * grid * grid + gy * grid + gx) * patchValues;
            for (int c = 0; c < channels; c++)
            for (int py = 0; py < patchSize; py++)
            {
                int dst = ((b * channels + c) * imageSize + gy * patchSize + py) * imageSize + gx * patchSize;
                for (int px = 0; px < patchSize; px++) dpixels[dst + px] += dpatches[src++];
            }
        }
    }
}
