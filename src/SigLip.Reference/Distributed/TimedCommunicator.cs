using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace SigLip.Reference.Distributed;

/// <summary>
/// An <see cref="ICommunicator"/> that passes every call to another one and measures it: the wall
/// time spent inside calls (waiting for slower ranks included) and the bytes this rank sent. The
/// trainer wraps its communicator in one to report the communication time per step.
/// </summary>
/// <remarks>
/// Bytes sent count what this rank hands to the transport: a send-receive's send buffer, and for an
/// all-reduce or a broadcast the buffer once (what a ring all-reduce sends per rank is about twice
/// that; the docs' byte counts give the algorithm's figures). Not thread-safe, like the calls it wraps.
/// </remarks>
public sealed class TimedCommunicator(ICommunicator inner) : ICommunicator
{
    private readonly ICommunicator _inner = inner ?? throw new ArgumentNullException(nameof(inner));
    private long _ticks;

    /// <summary>The communicator measured.</summary>
    public ICommunicator Inner => _inner;

    /// <summary>Seconds spent inside communicator calls so far.</summary>
    public double Seconds => (double)_ticks / Stopwatch.Frequency;

    /// <summary>Bytes this rank has handed to the transport so far (see the remarks).</summary>
    public long BytesSent { get; private set; }

    /// <summary>Calls made so far.</summary>
    public long Calls { get; private set; }

    /// <inheritdoc/>
    public int Rank => _inner.Rank;

    /// <inheritdoc/>
    public int Size => _inner.Size;

    /// <inheritdoc/>
    public string Description => _inner.Description;

    /// <inheritdoc/>
    public void SendReceive<T>(T[] send, int destination, T[] receive, int source, int count) where T : unmanaged, IFloatingPointIeee754<T>
    {
        long start = Stopwatch.GetTimestamp();
        try { _inner.SendReceive(send, destination, receive, source, count); }
        finally { Count(start, count * (long)Unsafe.SizeOf<T>()); }
    }

    /// <inheritdoc/>
    public void AllReduceSum<T>(T[] values, int count) where T : unmanaged, IFloatingPointIeee754<T>
    {
        long start = Stopwatch.GetTimestamp();
        try { _inner.AllReduceSum(values, count); }
        finally { Count(start, count * (long)Unsafe.SizeOf<T>()); }
    }

    /// <inheritdoc/>
    public void Broadcast<T>(T[] values, int count, int root) where T : unmanaged, IFloatingPointIeee754<T>
    {
        long start = Stopwatch.GetTimestamp();
        try { _inner.Broadcast(values, count, root); }
        finally { Count(start, _inner.Rank == root ? count * (long)Unsafe.SizeOf<T>() : 0); }
    }

    /// <inheritdoc/>
    public void Barrier()
    {
        long start = Stopwatch.GetTimestamp();
        try { _inner.Barrier(); }
        finally { Count(start, 0); }
    }

    private void Count(long start, long bytes)
    {
        _ticks += Stopwatch.GetTimestamp() - start;
        BytesSent += bytes;
        Calls++;
    }

    /// <summary>Does not dispose the inner communicator: whoever created it owns it.</summary>
    public void Dispose() { }
}
