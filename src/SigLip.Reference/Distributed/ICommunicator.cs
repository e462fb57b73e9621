using System.Numerics;

namespace SigLip.Reference.Distributed;

/// <summary>
/// The ranks of one job and the collective operations the sigmoid loss's ring (paper section 3.1)
/// and data-parallel training need: rank and size, send-receive with a neighbour, all-reduce (sum),
/// broadcast and barrier. The core knows this contract only; an in-process group of threads
/// implements it for tests and teaching, and an Open MPI binding (its own project) across
/// processes and machines. Every rank calls every collective in the same order (as in MPI).
/// </summary>
/// <remarks>
/// Buffers are float or double arrays; a call uses <c>count</c> elements from the start (or the whole
/// array when count is omitted). A failure on any rank surfaces as an exception on the calling rank.
/// </remarks>
public interface ICommunicator : IDisposable
{
    /// <summary>This rank, 0 .. <see cref="Size"/> - 1.</summary>
    int Rank { get; }

    /// <summary>W, the number of ranks.</summary>
    int Size { get; }

    /// <summary>What carries the messages, in words (e.g. "in-process, 3 threads", "Open MPI 4.1.4").</summary>
    string Description { get; }

    /// <summary>
    /// Sends <paramref name="send"/>[0..count) to rank <paramref name="destination"/> and receives count
    /// elements from rank <paramref name="source"/> into <paramref name="receive"/>, as one operation
    /// (MPI_Sendrecv), so that a ring of these never deadlocks. <paramref name="send"/> and
    /// <paramref name="receive"/> must be different arrays.
    /// </summary>
    void SendReceive<T>(T[] send, int destination, T[] receive, int source, int count) where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>Replaces <paramref name="values"/>[0..count) on every rank by its sum over the ranks (MPI_Allreduce, MPI_SUM).</summary>
    void AllReduceSum<T>(T[] values, int count) where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>Copies <paramref name="values"/>[0..count) of rank <paramref name="root"/> to every rank (MPI_Bcast).</summary>
    void Broadcast<T>(T[] values, int count, int root) where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>Returns when every rank has called it (MPI_Barrier).</summary>
    void Barrier();
}

/// <summary>Whole-array forms of the <see cref="ICommunicator"/> operations.</summary>
public static class CommunicatorExtensions
{
    /// <summary>Sends all of <paramref name="send"/>, receives as many elements into <paramref name="receive"/>.</summary>
    public static void SendReceive<T>(this ICommunicator communicator, T[] send, int destination, T[] receive, int source)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        communicator.SendReceive(send, destination, receive, source, send.Length);

    /// <summary>All-reduces (sums) the whole array.</summary>
    public static void AllReduceSum<T>(this ICommunicator communicator, T[] values) where T : unmanaged, IFloatingPointIeee754<T> =>
        communicator.AllReduceSum(values, values.Length);

    /// <summary>Broadcasts the whole array from <paramref name="root"/>.</summary>
    public static void Broadcast<T>(this ICommunicator communicator, T[] values, int root) where T : unmanaged, IFloatingPointIeee754<T> =>
        communicator.Broadcast(values, values.Length, root);

    /// <summary>The rank to the right in the ring: (rank + 1) mod W.</summary>
    public static int Right(this ICommunicator communicator) => (communicator.Rank + 1) % communicator.Size;

    /// <summary>The rank to the left in the ring: (rank - 1) mod W.</summary>
    public static int Left(this ICommunicator communicator) => (communicator.Rank + communicator.Size - 1) % communicator.Size;
}
