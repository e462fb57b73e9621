using System.Numerics;

namespace SigLip.Reference.Loss;

// The chunked ("efficient") sigmoid loss of paper section 3.1, on D simulated devices.
// Dimension legend: n = batch, D = devices, c = n / D pairs per device, d = embedding width.
//
// Device k holds images X_k [c, d] and texts Y_k [c, d] (rows k*c .. k*c + c - 1 of the batch).
//   step 0:        device k computes block (X_k, Y_k): the only block with positives (its diagonal).
//   steps 1..D-1:  every device passes the text chunk it holds to its right-hand neighbour
//                  (k -> k+1 mod D, a "collective permute"); device k now holds Y_(k-s mod D) and
//                  adds the negatives-only loss of X_k against it.
// Each device works on one c x c block at a time, so no device ever holds more than c^2 = (n/D)^2
// logits: its Logits buffer has exactly that many elements and is reused for every block.
//
// Because dL/dl_ij depends on l_ij alone (no softmax over the batch), each block's backward can
// run right after its forward; nothing about the other blocks is needed.
//   - dL/dX_k accumulates on device k (X_k never moves).
//   - dL/dY_j is spread over the D devices that Y_j visits. The visiting chunk therefore travels
//     with a gradient buffer of its own [c, d]: every device that holds Y_j adds its block's
//     dL/dY_j into it before passing both on. After step D-1 chunk j sits at device j-1 mod D;
//     one more hop (the D-th) brings the finished gradient home to device j. (In an autodiff
//     framework the same sum arrives by running the permutes backwards; here it is explicit.)
//   - Each device's share of L, dL/dt' and dL/db is summed across devices at the end (an all-reduce).

/// <summary>The chunked sigmoid loss (paper section 3.1) on simulated devices: same L and gradients as the dense form.</summary>
public static class ChunkedSigmoidLoss
{
    /// <summary>What the ring computes: L, dL/dt', dL/db and the size of each device's logits buffer.</summary>
    public readonly record struct Outcome<T>(T Loss, LogitParameterGradients<T> Gradients, long LogitsHeldPerDevice)
        where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>The size of each device's logits buffer: (n / D)^2.</summary>
    public static long LogitsPerDevice(int n, int devices) => (long)(n / devices) * (n / devices);

    /// <summary>
    /// Forward and backward together on D simulated devices, on L2-normalised embeddings.
    /// Accumulates dL/dx and dL/dy (w.r.t. the NORMALISED embeddings) and returns L, dL/dt', dL/db.
    /// Callers validate first (D must divide n).
    /// </summary>
    /// <param name="dImageNormed">[n, d] accumulated into.</param>
    /// <param name="dTextNormed">[n, d] accumulated into.</param>
    /// <param name="logitsOut">[n, n] or null: when given, each block is also copied here (an output, not device memory).</param>
    /// <param name="imageNormed">[n, d].</param>
    /// <param name="textNormed">[n, d].</param>
    /// <param name="scale">t = exp(t').</param>
    /// <param name="devices">D.</param>
    public static Outcome<T> ForwardBackward<T>(
        T[] dImageNormed, T[] dTextNormed, T[]? logitsOut, T[] imageNormed, T[] textNormed,
        int n, int d, T scale, T bias, int devices)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (devices < 1 || n % devices != 0)
            throw new ArgumentException($"Chunks D = {devices} must be at least 1 and divide the batch n = {n}.");
        int c = n / devices;
        T lossScale = T.One / T.CreateChecked(n);

        // Scatter: device k gets its own rows.
        var ring = new Device<T>[devices];
        for (int k = 0; k < devices; k++) ring[k] = new Device<T>(k, c, d, imageNormed, textNormed);

        // Step 0: own block, with positives on its diagonal.
        foreach (var device in ring) device.AddBlock(scale, bias, lossScale, diagonalIsPositive: true, logitsOut, n);

        // Steps 1..D-1: pass texts (with their gradient buffers) to the right, negatives only.
        for (int step = 1; step < devices; step++)
        {
            PassTextsRight(ring);
            foreach (var device in ring) device.AddBlock(scale, bias, lossScale, diagonalIsPositive: false, logitsOut, n);
        }

        // The D-th hop returns each text chunk's finished gradient to its owner.
        if (devices > 1) PassTextsRight(ring);

        // Gather and all-reduce.
        T negativeLogLikelihood = T.Zero, dLogitScale = T.Zero, dBias = T.Zero;
        foreach (var device in ring)
        {
            if (device.VisitingTextOwner != device.Index)
                throw new InvalidOperationException($"Ring bookkeeping error: device {device.Index} ended holding text chunk {device.VisitingTextOwner}.");
            int rows = device.Index * c * d;
            for (int e = 0; e < c * d; e++)
            {
                dImageNormed[rows + e] += device.DImages[e];
                dTextNormed[rows + e] += device.DVisitingTexts[e];
            }
            negativeLogLikelihood += device.NegativeLogLikelihood;
            dLogitScale += device.DLogitScale;
            dBias += device.DBias;
        }
        long held = ring.Max(device => (long)device.Logits.Length);
        return new Outcome<T>(negativeLogLikelihood * lossScale, new LogitParameterGradients<T>(dLogitScale, dBias), held);
    }

    // Collective permute k -> k+1 (mod D) of the visiting text chunk and its gradient buffer.
    private static void PassTextsRight<T>(Device<T>[] ring) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int last = ring.Length - 1;
        var (texts, dtexts, owner) = (ring[last].VisitingTexts, ring[last].DVisitingTexts, ring[last].VisitingTextOwner);
        for (int k = last; k > 0; k--)
        {
            ring[k].VisitingTexts = ring[k - 1].VisitingTexts;
            ring[k].DVisitingTexts = ring[k - 1].DVisitingTexts;
            ring[k].VisitingTextOwner = ring[k - 1].VisitingTextOwner;
        }
        (ring[0].VisitingTexts, ring[0].DVisitingTexts, ring[0].VisitingTextOwner) = (texts, dtexts, owner);
    }

    /// <summary>One simulated device's memory.</summary>
    private sealed class Device<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public Device(int index, int c, int d, T[] imageNormed, T[] textNormed)
        {
            Index = index;
            ChunkSize = c;
            Width = d;
            Images = imageNormed.AsSpan(index * c * d, c * d).ToArray();
            VisitingTexts = textNormed.AsSpan(index * c * d, c * d).ToArray();
            DImages = new T[c * d];
            DVisitingTexts = new T[c * d];
            VisitingTextOwner = index;
            Logits = new T[c * c];
        }

        public int Index { get; }
        public int ChunkSize { get; }
        public int Width { get; }
        public T[] Images { get; }              // [c, d] X_k, never moves
        public T[] DImages { get; }             // [c, d] dL/dX_k
        public T[] VisitingTexts { get; set; }  // [c, d] Y_owner, travels
        public T[] DVisitingTexts { get; set; } // [c, d] dL/dY_owner so far, travels with it
        public int VisitingTextOwner { get; set; }
        public T[] Logits { get; }              // [c, c] the only logits this device ever holds
        public T NegativeLogLikelihood { get; private set; } = T.Zero;
        public T DLogitScale { get; private set; } = T.Zero;
        public T DBias { get; private set; } = T.Zero;

        public void AddBlock(T scale, T bias, T lossScale, bool diagonalIsPositive, T[]? logitsOut, int n)
        {
            int c = ChunkSize, d = Width;
            NegativeLogLikelihood += SigmoidLoss.BlockForward(Logits, Images, VisitingTexts, c, c, d, scale, bias, diagonalIsPositive);
            var grads = SigmoidLoss.BlockBackward(DImages, DVisitingTexts, Logits, Images, VisitingTexts, c, c, d, scale, lossScale, diagonalIsPositive);
            DLogitScale += grads.LogitScale;
            DBias += grads.LogitBias;
            if (logitsOut is not null)
                for (int i = 0; i < c; i++)
                    Array.Copy(Logits, i * c, logitsOut, (Index * c + i) * n + VisitingTextOwner * c, c);
        }
    }
}
