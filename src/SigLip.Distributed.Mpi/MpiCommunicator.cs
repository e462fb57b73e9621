using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using SigLip.Reference.Distributed;

namespace SigLip.Distributed.Mpi;

/// <summary>
/// <see cref="ICommunicator"/> on Open MPI's MPI_COMM_WORLD: one rank per process, started by
/// <c>mpirun -np W</c> (or Slurm's srun). Creating it calls MPI_Init_thread (asking for
/// MPI_THREAD_SERIALIZED: calls may come from any thread, one at a time, which a lock guarantees);
/// disposing it calls MPI_Finalize. A process holds at most one, once: MPI cannot be initialised again
/// after it is finalised. Buffers are float (MPI_FLOAT) or double (MPI_DOUBLE).
/// </summary>
/// <remarks>
/// A rank that fails must not leave the others waiting in a collective forever: run the work through
/// <see cref="RunOrAbort"/>, which prints the error once with the rank, then calls MPI_Abort so that
/// mpirun ends every rank.
/// </remarks>
public sealed class MpiCommunicator : ICommunicator
{
    private static int s_state; // 0: none yet, 1: one alive, 2: finalised (MPI cannot start again)

    private readonly MpiNative _mpi;
    private readonly object _gate = new();
    private readonly bool _ownsInit;
    private bool _disposed;

    private MpiCommunicator(MpiNative mpi, bool ownsInit, int threadLevel)
    {
        _mpi = mpi;
        _ownsInit = ownsInit;
        ThreadLevel = threadLevel;
        Rank = mpi.CommRank();
        Size = mpi.CommSize();
        Library = $"{ShortVersion(mpi.Version)} ({mpi.LoadedFrom})";
    }

    /// <summary>
    /// Loads Open MPI (<see cref="MpiNative.Open"/>: SIGLIP_MPI_LIBRARY, else libmpi.so.40 / libmpi.so)
    /// and initialises it. Throws <see cref="MpiNotAvailableException"/> saying what to install or set
    /// when Open MPI is missing or the library is another MPI.
    /// </summary>
    public static MpiCommunicator Create()
    {
        var mpi = MpiNative.Instance;
        switch (Interlocked.CompareExchange(ref s_state, 1, 0))
        {
            case 1: throw new InvalidOperationException("an MpiCommunicator is already open in this process; use that one (MPI_COMM_WORLD is one per process).");
            case 2: throw new InvalidOperationException("MPI was finalised when the MpiCommunicator was disposed; MPI cannot be initialised again in the same process.");
        }
        try
        {
            if (mpi.IsFinalized())
                throw new InvalidOperationException("MPI is already finalised in this process; it cannot be initialised again.");
            if (mpi.IsInitialized()) return new MpiCommunicator(mpi, ownsInit: false, threadLevel: -1);
            var provided = mpi.InitThread(MpiNative.ThreadSerialized);
            return new MpiCommunicator(mpi, ownsInit: true, provided);
        }
        catch
        {
            Interlocked.Exchange(ref s_state, 0);
            throw;
        }
    }

    /// <inheritdoc />
    public int Rank { get; }

    /// <inheritdoc />
    public int Size { get; }

    /// <summary>Which MPI was loaded and from where, e.g. "Open MPI v4.1.4 (libmpi.so.40)".</summary>
    public string Library { get; }

    /// <summary>The thread level MPI_Init_thread provided (0 single .. 3 multiple), or -1 when MPI was initialised by someone else.</summary>
    public int ThreadLevel { get; }

    /// <inheritdoc />
    public string Description => $"{Library}, {Size} {(Size == 1 ? "rank" : "ranks")}";

    /// <inheritdoc />
    public void SendReceive<T>(T[] send, int destination, T[] receive, int source, int count) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(send);
        ArgumentNullException.ThrowIfNull(receive);
        if (ReferenceEquals(send, receive)) throw new ArgumentException("SendReceive: send and receive must be different arrays.", nameof(receive));
        CheckCount(count, send.Length, "send");
        CheckCount(count, receive.Length, "receive");
        CheckRank(destination, nameof(destination));
        CheckRank(source, nameof(source));
        lock (_gate)
        {
            ThrowIfDisposed();
            _mpi.SendReceive(send, destination, receive, source, count);
        }
    }

    /// <inheritdoc />
    public void AllReduceSum<T>(T[] values, int count) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(values);
        CheckCount(count, values.Length, "values");
        lock (_gate)
        {
            ThrowIfDisposed();
            _mpi.AllReduceSum(values, count);
        }
    }

    /// <inheritdoc />
    public void Broadcast<T>(T[] values, int count, int root) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(values);
        CheckCount(count, values.Length, "values");
        CheckRank(root, nameof(root));
        lock (_gate)
        {
            ThrowIfDisposed();
            _mpi.Broadcast(values, count, root);
        }
    }

    /// <inheritdoc />
    public void Barrier()
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            _mpi.Barrier();
        }
    }

    /// <summary>Ends every rank of the job with exit code <paramref name="code"/> (MPI_Abort on MPI_COMM_WORLD). Does not return.</summary>
    [DoesNotReturn]
    public void Abort(int code)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        _mpi.Abort(code);
    }

    /// <summary>
    /// Runs <paramref name="body"/> as this rank's work and returns its exit code. When it throws, prints
    /// one line, <c>error: rank R of W: message</c> (and the stack trace when SIGLIP_DEBUG=1), to
    /// <paramref name="error"/> (standard error by default), then aborts the whole job (MPI_Abort with
    /// exit code 1) so that ranks waiting for this one in a collective end instead of hanging.
    /// </summary>
    public int RunOrAbort(Func<MpiCommunicator, int> body, TextWriter? error = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            return body(this);
        }
        catch (Exception ex)
        {
            error ??= Console.Error;
            error.WriteLine(FailureLine(Rank, Size, ex));
            if (Environment.GetEnvironmentVariable("SIGLIP_DEBUG") == "1") error.WriteLine(ex);
            error.Flush();
            Abort(1);
            return 1; // not reached: MPI_Abort ends the process
        }
    }

    /// <summary>The one line a failing rank prints: <c>error: rank R of W: message</c>.</summary>
    public static string FailureLine(int rank, int size, Exception ex)
    {
        var e = ex is AggregateException { InnerExceptions.Count: 1 } agg ? agg.InnerException! : ex;
        if (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) e = inner;
        return $"error: rank {rank} of {size}: {e.Message}";
    }

    /// <summary>Calls MPI_Finalize (when this communicator initialised MPI). Every rank must dispose, as with any collective.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            if (_ownsInit && !_mpi.IsFinalized()) _mpi.FinalizeMpi();
            Interlocked.Exchange(ref s_state, _ownsInit ? 2 : 0);
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    private static void CheckCount(int count, int length, string buffer)
    {
        if (count < 0 || count > length)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"count {count} is outside 0..{length} (the length of the {buffer} buffer).");
    }

    private void CheckRank(int rank, string name)
    {
        if (rank < 0 || rank >= Size)
            throw new ArgumentOutOfRangeException(name, rank, $"{name} rank {rank} is outside 0..{Size - 1} (the job has {Size} ranks).");
    }

    /// <summary>"Open MPI v4.1.4, package: Debian OpenMPI, ..." becomes "Open MPI v4.1.4".</summary>
    internal static string ShortVersion(string version)
    {
        var comma = version.IndexOf(',');
        var text = (comma < 0 ? version : version[..comma]).Trim();
        return text.Length > 0 ? text : "MPI (version unknown)";
    }
}
