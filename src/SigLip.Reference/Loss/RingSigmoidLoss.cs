using System.Numerics;
using SigLip.Reference.Distributed;

namespace SigLip.Reference.Loss;

// The sigmoid loss across W ranks (paper section 3.1), written once against ICommunicator: the
// in-process group runs it in tests and in ChunkedSigmoidLoss, Open MPI across processes.
// Dimension legend: n = global batch, W = ranks, c = n / W pairs per rank, d = embedding width.
//
// Rank k holds images X_k [c, d] and texts Y_k [c, d]: rows k*c .. k*c + c - 1 of the global batch.
//   step 0:        rank k computes block (X_k, Y_k): the only block with positives (its diagonal).
//   steps 1..W-1:  every rank sends the text chunk it holds to its right neighbour (k -> k+1 mod W)
//                  and receives one from its left; rank k now holds Y_(k-s mod W) and adds the
//                  negatives-only loss of X_k against it.
// A rank works on one c x c block at a time, so it never holds more than c^2 = (n/W)^2 logits: its
// logits buffer has exactly that many elements and is reused for every block.
//
// Because dL/dl_ij depends on l_ij alone (no softmax over the batch), each block's backward runs
// right after its forward; nothing about the other blocks is needed.
//   - dL/dX_k accumulates on rank k (X_k never moves).
//   - dL/dY_m is spread over the W ranks that Y_m visits. The visiting chunk therefore travels with
//     a gradient buffer of its own [c, d], in the same message: every rank that holds Y_m adds its
//     block's dL/dY_m into it before passing both on. After step W-1 chunk m sits at rank m-1 mod W;
//     one more hop (the W-th) brings the finished gradient home to rank m.
//   - Each rank's share of L, dL/dt' and dL/db is summed across ranks at the end (an all-reduce).

/// <summary>What one rank's distributed loss computes: L, dL/dt', dL/db (all summed over the ranks) and the logits it held.</summary>
/// <param name="Loss">L of the whole global batch (the same on every rank).</param>
/// <param name="Gradients">dL/dt' and dL/db of the whole global batch (the same on every rank).</param>
/// <param name="LogitsHeld">The size of this rank's logits buffer: (n/W)^2 on the ring, (n/W) n with all-gather.</param>
public readonly record struct RankLossOutcome<T>(T Loss, LogitParameterGradients<T> Gradients, long LogitsHeld)
    where T : unmanaged, IFloatingPointIeee754<T>;

/// <summary>How the ranks exchange embeddings for the distributed sigmoid loss.</summary>
public enum SigmoidExchange
{
    /// <summary>The paper's ring (section 3.1): texts travel rank to rank; (n/W)^2 logits per rank.</summary>
    Ring,
    /// <summary>The baseline peers use: every rank gathers all texts; (n/W) n logits per rank.</summary>
    AllGather,
}

/// <summary>
/// The sigmoid loss over the ranks of an <see cref="ICommunicator"/> by the paper's ring (section 3.1),
/// and the front end both exchanges share. Same L and gradients as the dense form of the global batch.
/// </summary>
public static class RingSigmoidLoss
{
    /// <summary>The size of each rank's logits buffer on the ring: (n / W)^2.</summary>
    public static long LogitsPerRank(int n, int size) => (long)(n / size) * (n / size);

    /// <summary>
    /// The rows [Start, Start + Count) of a global batch of <paramref name="n"/> pairs that rank
    /// <paramref name="rank"/> of <paramref name="size"/> holds: Count = n / W, Start = rank * n / W.
    /// Throws an <see cref="ArgumentException"/> when W does not divide n, listing the sizes that do.
    /// </summary>
    public static (int Start, int Count) RowsOf(int n, int size, int rank)
    {
        if (size < 1) throw new ArgumentException($"The number of ranks W = {size} must be at least 1.");
        if (rank < 0 || rank >= size) throw new ArgumentException($"Rank {rank} is not one of 0 .. {size - 1}.");
        if (n < 1) throw new ArgumentException($"The global batch n = {n} must hold at least one pair.");
        if (n % size != 0)
            throw new ArgumentException(
                $"W = {size} ranks do not divide the global batch n = {n}: each rank must hold n / W whole pairs. " +
                $"Rank counts that divide {n}: {string.Join(", ", Enumerable.Range(1, n).Where(w => n % w == 0))}.");
        int c = n / size;
        return (rank * c, c);
    }

    /// <summary>
    /// Forward and backward on this rank, on its c rows of L2-normalised embeddings, by the ring.
    /// Accumulates dL/dx and dL/dy of ITS rows (w.r.t. the NORMALISED embeddings) and returns L,
    /// dL/dt', dL/db of the whole global batch (n = c W). Every rank must call it with the same
    /// c, d, scale and bias; callers validate first (<see cref="Compute{T}"/> does).
    /// </summary>
    /// <param name="dImages">[c, d] accumulated into: dL/dX_k.</param>
    /// <param name="dTexts">[c, d] accumulated into: dL/dY_k.</param>
    /// <param name="logitRows">[c, n] or null: when given, each block is also copied here, into this rank's rows of the logits matrix (an output, not working memory).</param>
    /// <param name="images">[c, d] X_k.</param>
    /// <param name="texts">[c, d] Y_k.</param>
    /// <param name="scale">t = exp(t').</param>
    public static RankLossOutcome<T> ForwardBackward<T>(
        ICommunicator communicator, T[] dImages, T[] dTexts, T[]? logitRows, T[] images, T[] texts,
        int c, int d, T scale, T bias)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(communicator);
        int ranks = communicator.Size, rank = communicator.Rank, n = c * ranks;
        T lossScale = T.One / T.CreateChecked(n);

        var logits = new T[c * c];                 // [c, c] the only logits this rank ever holds
        var visitingTexts = texts.AsSpan(0, c * d).ToArray();  // [c, d] Y_m, travels
        var dVisitingTexts = new T[c * d];         // [c, d] dL/dY_m so far, travels with it
        int visitingOwner = rank;                  // m
        var outgoing = new T[2 * c * d + 1];       // one message: Y_m, dL/dY_m, m
        var incoming = new T[2 * c * d + 1];
        T negativeLogLikelihood = T.Zero, dLogitScale = T.Zero, dBias = T.Zero;

        void AddBlock(bool diagonalIsPositive)
        {
            negativeLogLikelihood += SigmoidLoss.BlockForward(logits, images, visitingTexts, c, c, d, scale, bias, diagonalIsPositive);
            var grads = SigmoidLoss.BlockBackward(dImages, dVisitingTexts, logits, images, visitingTexts, c, c, d, scale, lossScale, diagonalIsPositive);
            dLogitScale += grads.LogitScale;
            dBias += grads.LogitBias;
            if (logitRows is not null)
                for (int i = 0; i < c; i++)
                    Array.Copy(logits, i * c, logitRows, i * n + visitingOwner * c, c);
        }

        // Send the visiting texts and their gradient buffer right, receive the left neighbour's.
        void PassTextsRight()
        {
            visitingTexts.CopyTo(outgoing, 0);
            dVisitingTexts.CopyTo(outgoing, c * d);
            outgoing[2 * c * d] = T.CreateChecked(visitingOwner);
            communicator.SendReceive(outgoing, communicator.Right(), incoming, communicator.Left(), outgoing.Length);
            Array.Copy(incoming, 0, visitingTexts, 0, c * d);
            Array.Copy(incoming, c * d, dVisitingTexts, 0, c * d);
            visitingOwner = int.CreateChecked(incoming[2 * c * d]);
        }

        // Step 0: own block, with positives on its diagonal.
        AddBlock(diagonalIsPositive: true);

        // Steps 1..W-1: pass texts (with their gradient buffers) to the right, negatives only.
        for (int step = 1; step < ranks; step++)
        {
            PassTextsRight();
            AddBlock(diagonalIsPositive: false);
        }

        // The W-th hop returns each text chunk's finished gradient to its owner.
        if (ranks > 1) PassTextsRight();
        if (visitingOwner != rank)
            throw new InvalidOperationException($"Ring bookkeeping error: rank {rank} ended holding text chunk {visitingOwner}.");
        for (int e = 0; e < c * d; e++) dTexts[e] += dVisitingTexts[e];

        // All-reduce this rank's shares of L, dL/dt' and dL/db.
        var totals = new[] { negativeLogLikelihood, dLogitScale, dBias };
        communicator.AllReduceSum(totals);
        return new RankLossOutcome<T>(totals[0] * lossScale, new LogitParameterGradients<T>(totals[1], totals[2]), logits.Length);
    }

    /// <summary>
    /// The loss of this rank's c rows of UNnormalised embeddings, over the whole global batch of the
    /// communicator's ranks: validates (on every rank, and that all ranks agree on c, d, t', b),
    /// L2-normalises its rows, runs the ring (or the all-gather baseline) and backpropagates through
    /// the normalisation. The result's embedding gradients are [c, d], this rank's rows; L, dL/dt' and
    /// dL/db are those of the global batch, the same on every rank. Bad input on any rank throws an
    /// <see cref="ArgumentException"/> on every rank, naming the rank(s).
    /// </summary>
    /// <param name="imageEmbeds">[c, d] this rank's rows, unnormalised.</param>
    /// <param name="textEmbeds">[c, d] this rank's rows, unnormalised.</param>
    /// <param name="logitScale">t' (t = exp(t')).</param>
    /// <param name="normEpsilon">Added to each L2 norm (0 = HF, big_vision 1e-8).</param>
    public static PairwiseLossResult<T> Compute<T>(
        ICommunicator communicator, T[] imageEmbeds, T[] textEmbeds, int c, int d, T logitScale, T logitBias,
        T normEpsilon = default, SigmoidExchange exchange = SigmoidExchange.Ring)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(communicator);
        CheckAgreedInput(communicator, imageEmbeds, textEmbeds, c, d, logitScale, logitBias, normEpsilon);

        // Normalisation is row-local: each rank normalises its own rows.
        var imageNormed = new T[c * d];  // [c, d]
        var textNormed = new T[c * d];   // [c, d]
        var imageNorms = new T[c];       // [c] ||x_i|| + eps
        var textNorms = new T[c];        // [c]
        Layers.L2Normalize.Forward(imageNormed, imageNorms, imageEmbeds, c, d, normEpsilon);
        Layers.L2Normalize.Forward(textNormed, textNorms, textEmbeds, c, d, normEpsilon);

        T scale = T.Exp(logitScale);
        var dImageNormed = new T[c * d];
        var dTextNormed = new T[c * d];
        var outcome = exchange switch
        {
            SigmoidExchange.Ring => ForwardBackward(communicator, dImageNormed, dTextNormed, null, imageNormed, textNormed, c, d, scale, logitBias),
            SigmoidExchange.AllGather => AllGatherSigmoidLoss.ForwardBackward(communicator, dImageNormed, dTextNormed, null, imageNormed, textNormed, c, d, scale, logitBias),
            _ => throw new ArgumentException($"Unknown exchange {exchange}; expected Ring or AllGather."),
        };

        var dImage = new T[c * d];
        var dText = new T[c * d];
        Layers.L2Normalize.Backward(dImage, dImageNormed, imageNormed, imageNorms, c, d);
        Layers.L2Normalize.Backward(dText, dTextNormed, textNormed, textNorms, c, d);
        return new PairwiseLossResult<T>(outcome.Loss, dImage, dText, outcome.Gradients.LogitScale, outcome.Gradients.LogitBias, null, outcome.LogitsHeld);
    }

    /// <summary>
    /// As <see cref="Compute{T}"/> on float64 tensors [c, d], as the model's training step passes them
    /// (<c>ISiglipModel.EncodeForTraining</c>): the sigmoid loss only (the softmax loss normalises over
    /// the whole batch and does not split this way), with <see cref="Backends.LossOptions.NormEpsilon"/>.
    /// </summary>
    public static Backends.LossResult Compute(
        ICommunicator communicator, Tensor imageEmbeds, Tensor textEmbeds, double logitScale, double logitBias,
        Backends.LossOptions? options = null, SigmoidExchange exchange = SigmoidExchange.Ring)
    {
        options ??= Backends.LossOptions.Default;
        if (options.Kind != Backends.LossKind.Sigmoid)
            throw new ArgumentException($"The distributed loss is the sigmoid loss; {options.Kind} normalises over the whole batch and has no ring form here.");
        var (c, d) = LossInputValidation.CheckShapes(imageEmbeds, textEmbeds);
        var r = Compute(communicator, imageEmbeds.Data, textEmbeds.Data, c, d, logitScale, logitBias, options.NormEpsilon, exchange);
        return new Backends.LossResult(r.Loss, new Tensor([c, d], r.GradImageEmbeds), new Tensor([c, d], r.GradTextEmbeds), r.GradLogitScale, r.GradLogitBias);
    }

    // Every rank checks its own input, and that it agrees with rank 0 on c, d, t', b and epsilon;
    // then all ranks learn which ranks had a problem (an all-reduce of one flag per rank), so that
    // they all throw together instead of some waiting forever in the ring.
    private static void CheckAgreedInput<T>(ICommunicator communicator, T[] imageEmbeds, T[] textEmbeds, int c, int d, T logitScale, T logitBias, T normEpsilon)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rank = communicator.Rank, ranks = communicator.Size;
        var header = new[] { T.CreateChecked(c), T.CreateChecked(d), logitScale, logitBias, normEpsilon };
        var rootHeader = (T[])header.Clone();
        communicator.Broadcast(rootHeader, 0);
        string? problem = null;
        try
        {
            LossInputValidation.Check(imageEmbeds, textEmbeds, c, d, logitScale, logitBias, normEpsilon, chunks: 1, softmax: false);
            string[] names = ["rows c", "width d", "logit_scale t'", "logit_bias b", "NormEpsilon"];
            for (int i = 0; i < header.Length; i++)
                if (!header[i].Equals(rootHeader[i]))
                    throw new ArgumentException($"{names[i]} = {header[i]} but rank 0 has {rootHeader[i]}; every rank must hold the same number of rows and the same t', b and epsilon.");
        }
        catch (ArgumentException e)
        {
            problem = e.Message;
        }
        var flags = new T[ranks];
        if (problem is not null) flags[rank] = T.One;
        communicator.AllReduceSum(flags);
        var bad = Enumerable.Range(0, ranks).Where(r => flags[r] != T.Zero).ToList();
        if (bad.Count == 0) return;
        throw new ArgumentException(problem is not null
            ? $"Distributed sigmoid loss, rank {rank} of {ranks}: {problem}"
            : $"Distributed sigmoid loss: bad input on rank(s) {string.Join(", ", bad)} of {ranks} (their errors name the problem); rank {rank} stops with them.");
    }
}

/// <summary>
/// The baseline exchange peers use (e.g. open_clip's gather of all features): every rank gathers all
/// n texts, computes its c x n block of logits against them, and the texts' gradients are summed back
/// to their owners. Built from the contract's operations only (W broadcasts to gather, an all-reduce
/// to return the text gradients: the contract has no reduce-scatter). Holds c n logits per rank.
/// </summary>
public static class AllGatherSigmoidLoss
{
    /// <summary>The size of each rank's logits buffer with all-gather: (n / W) n.</summary>
    public static long LogitsPerRank(int n, int size) => (long)(n / size) * n;

    /// <summary>
    /// As <see cref="RingSigmoidLoss.ForwardBackward{T}"/> (same arguments and result), by gathering
    /// every text instead of passing them round the ring.
    /// </summary>
    public static RankLossOutcome<T> ForwardBackward<T>(
        ICommunicator communicator, T[] dImages, T[] dTexts, T[]? logitRows, T[] images, T[] texts,
        int c, int d, T scale, T bias)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(communicator);
        int ranks = communicator.Size, rank = communicator.Rank, n = c * ranks;
        T lossScale = T.One / T.CreateChecked(n);

        // Gather: rank `root` broadcasts its texts, for every root. Columns are stored rotated so that
        // this rank's own chunk comes first: column block q holds chunk (rank + q) mod W. Then the
        // positives are the diagonal of the first c columns, as the block kernels expect.
        var allTexts = new T[n * d];     // [n, d] rotated
        var chunk = new T[c * d];        // [c, d]
        for (int root = 0; root < ranks; root++)
        {
            if (root == rank) Array.Copy(texts, chunk, c * d);
            communicator.Broadcast(chunk, root);
            int q = (root - rank + ranks) % ranks;
            Array.Copy(chunk, 0, allTexts, q * c * d, c * d);
        }

        var logits = new T[c * n];       // [c, n] this rank's rows of the logits matrix
        var dAllTexts = new T[n * d];    // [n, d] rotated
        T negativeLogLikelihood = SigmoidLoss.BlockForward(logits, images, allTexts, c, n, d, scale, bias, diagonalIsPositive: true);
        var grads = SigmoidLoss.BlockBackward(dImages, dAllTexts, logits, images, allTexts, c, n, d, scale, lossScale, diagonalIsPositive: true);

        // Reduce the text gradients back to their owners: un-rotate, sum over the ranks, keep own rows.
        var dTextsGlobal = new T[n * d]; // [n, d] in global row order
        for (int q = 0; q < ranks; q++)
            Array.Copy(dAllTexts, q * c * d, dTextsGlobal, (rank + q) % ranks * c * d, c * d);
        communicator.AllReduceSum(dTextsGlobal);
        for (int e = 0; e < c * d; e++) dTexts[e] += dTextsGlobal[rank * c * d + e];

        if (logitRows is not null)
            for (int i = 0; i < c; i++)
                for (int q = 0; q < ranks; q++)
                    Array.Copy(logits, i * n + q * c, logitRows, i * n + (rank + q) % ranks * c, c);

        var totals = new[] { negativeLogLikelihood, grads.LogitScale, grads.LogitBias };
        communicator.AllReduceSum(totals);
        return new RankLossOutcome<T>(totals[0] * lossScale, new LogitParameterGradients<T>(totals[1], totals[2]), logits.Length);
    }
}
