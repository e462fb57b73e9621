using System.Numerics;
using SigLip.Reference.Distributed;

namespace SigLip.Reference.Loss;

// The chunked ("efficient") sigmoid loss of paper section 3.1, on D simulated devices.
// Dimension legend: n = batch, D = devices, c = n / D pairs per device, d = embedding width.
//
// The devices are the ranks of an in-process group (Distributed/InProcessGroup.cs): D threads, each
// with its own communicator, each running the ring of RingSigmoidLoss.ForwardBackward on its own
// rows. That is the same code that runs across processes and machines on MPI, so what the docs
// describe and the tests check here is what runs there.
//
// Device k holds images X_k [c, d] and texts Y_k [c, d] (rows k*c .. k*c + c - 1 of the batch).
//   step 0:        device k computes block (X_k, Y_k): the only block with positives (its diagonal).
//   steps 1..D-1:  every device passes the text chunk it holds to its right-hand neighbour
//                  (k -> k+1 mod D, a send-receive); device k now holds Y_(k-s mod D) and adds the
//                  negatives-only loss of X_k against it.
//   the D-th hop:  the texts' gradient buffers, which travelled with them, come home.
// No device ever holds more than c^2 = (n/D)^2 logits (RingSigmoidLoss's buffer).

/// <summary>The chunked sigmoid loss (paper section 3.1) on simulated devices: same L and gradients as the dense form.</summary>
public static class ChunkedSigmoidLoss
{
    /// <summary>What the ring computes: L, dL/dt', dL/db and the size of each device's logits buffer.</summary>
    public readonly record struct Outcome<T>(T Loss, LogitParameterGradients<T> Gradients, long LogitsHeldPerDevice)
        where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>The size of each device's logits buffer: (n / D)^2.</summary>
    public static long LogitsPerDevice(int n, int devices) => RingSigmoidLoss.LogitsPerRank(n, devices);

    /// <summary>
    /// Forward and backward together on D simulated devices (an in-process group of D ranks running
    /// <see cref="RingSigmoidLoss.ForwardBackward{T}"/>), on L2-normalised embeddings.
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

        var outcomes = InProcessGroup.Run(devices, device =>
        {
            // Scatter: device k gets its own rows.
            int rows = device.Rank * c * d;
            var images = imageNormed.AsSpan(rows, c * d).ToArray();
            var texts = textNormed.AsSpan(rows, c * d).ToArray();
            var dImages = new T[c * d];
            var dTexts = new T[c * d];
            var logitRows = logitsOut is null ? null : new T[c * n];
            var outcome = RingSigmoidLoss.ForwardBackward(device, dImages, dTexts, logitRows, images, texts, c, d, scale, bias);

            // Gather: each device writes back only its own rows (the devices' rows do not overlap).
            for (int e = 0; e < c * d; e++)
            {
                dImageNormed[rows + e] += dImages[e];
                dTextNormed[rows + e] += dTexts[e];
            }
            if (logitRows is not null) Array.Copy(logitRows, 0, logitsOut!, device.Rank * c * n, c * n);
            return outcome;
        });

        // L, dL/dt' and dL/db were all-reduced by the ring: every device holds the same.
        var first = outcomes[0];
        return new Outcome<T>(first.Loss, first.Gradients, outcomes.Max(o => o.LogitsHeld));
    }
}
