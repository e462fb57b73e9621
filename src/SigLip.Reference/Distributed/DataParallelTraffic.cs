using SigLip.Reference.Models;

namespace SigLip.Reference.Distributed;

/// <summary>
/// What one data-parallel training step sends per rank, computed from the shapes (W ranks, global
/// batch n, c = n / W pairs per rank, embedding width d, P tower parameters, s bytes per element):
/// <list type="bullet">
/// <item>the ring (<see cref="Loss.RingSigmoidLoss"/>): W hops, each a message of c d texts, their
/// c d gradient buffer and the chunk's owner: W (2 c d + 1) s;</item>
/// <item>the gradient all-reduce of the P tower parameters (t' and b are summed inside the loss):
/// a ring all-reduce sends 2 (W - 1) / W P s per rank (MPI's usual algorithm for large buffers;
/// what <see cref="TimedCommunicator"/> counts is the buffer handed over, P s);</item>
/// <item>the loss's small collectives (the agreement check, the W flags, the three totals): a few
/// dozen elements, listed apart.</item>
/// </list>
/// </summary>
public sealed record DataParallelTraffic(int Ranks, int GlobalBatch, int EmbeddingWidth, long TowerParameters, int ElementBytes)
{
    /// <summary>The traffic of a step of <paramref name="config"/> over <paramref name="ranks"/> ranks (W must divide n).</summary>
    public static DataParallelTraffic For(SiglipConfig config, int globalBatch, int ranks, int elementBytes)
    {
        ArgumentNullException.ThrowIfNull(config);
        Loss.RingSigmoidLoss.RowsOf(globalBatch, ranks, 0); // checks that W divides n
        if (elementBytes is not (2 or 4 or 8)) throw new ArgumentException($"An element is 2, 4 or 8 bytes, not {elementBytes}.");
        return new DataParallelTraffic(ranks, globalBatch, config.Vision.HiddenSize, ParameterLayout.Count(config) - 2, elementBytes);
    }

    /// <summary>c = n / W, the pairs per rank.</summary>
    public int PairsPerRank => GlobalBatch / Ranks;

    /// <summary>Bytes one rank sends around the ring in one step: W hops of (2 c d + 1) elements; 0 when W = 1 (no hop).</summary>
    public long RingBytes => Ranks == 1 ? 0 : (long)Ranks * (2L * PairsPerRank * EmbeddingWidth + 1) * ElementBytes;

    /// <summary>Bytes one rank sends in a ring all-reduce of the tower gradients: 2 (W - 1) / W P s.</summary>
    public long GradientAllReduceBytes => 2L * (Ranks - 1) * TowerParameters * ElementBytes / Ranks;

    /// <summary>Elements of the loss's small collectives: the header broadcast (5), the W flags, the 3 totals.</summary>
    public int SmallCollectiveElements => 5 + Ranks + 3;

    /// <summary>The step's bytes per rank: ring plus gradient all-reduce (the small collectives left out).</summary>
    public long TotalBytes => RingBytes + GradientAllReduceBytes;
}
