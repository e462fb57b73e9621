using System.Numerics;

namespace SigLip.Reference.Distributed;

// An in-process group: W ranks are W threads of this process, each with its own communicator, all
// talking through one shared Hub. For tests and teaching: the ring loss runs on it exactly as it
// runs across processes on MPI.
//
// How the hub works (all state behind one lock, one condition: Monitor.Wait / PulseAll):
//   - SendReceive: the sender drops a COPY of its message into the mailbox (source -> destination),
//     a FIFO queue, and then waits for the first message in mailbox (source -> itself). Sends never
//     block, so a ring of send-receives cannot deadlock (as MPI_Sendrecv).
//   - Collectives (AllReduceSum, Broadcast, Barrier): the k-th collective call of every rank meets
//     in round k. Each rank deposits a copy of its buffer, waits until all W have, then computes the
//     result from the W deposits in rank order (so every rank gets the same bits), and the last
//     rank to read the round removes it.
//   - Failure: when a rank's body throws, the group is marked failed and every rank waiting (now or
//     later) throws CommunicatorAbortedException naming the failed rank, so nobody waits forever.
//     A rank whose body returns while others still wait for it, and a state in which every live
//     rank waits and none can proceed (a deadlock: e.g. ranks calling different collectives), fail
//     the group the same way, with what each rank was waiting for.

/// <summary>
/// Runs W ranks as W threads of this process, each with its own <see cref="ICommunicator"/>: the
/// in-process implementation of the contract, for tests and teaching. A failure of any rank is
/// rethrown by <see cref="Run"/> naming that rank, after every other rank has been released.
/// </summary>
public static class InProcessGroup
{
    /// <summary>
    /// Runs <paramref name="body"/> on <paramref name="size"/> ranks (threads) and waits for all of
    /// them. If any rank throws, the others' pending and later communication throws, and this method
    /// throws a <see cref="RankFailedException"/> for the first rank that failed, with its exception inside.
    /// </summary>
    public static void Run(int size, Action<ICommunicator> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        Run<object?>(size, communicator => { body(communicator); return null; });
    }

    /// <summary>As <see cref="Run(int, Action{ICommunicator})"/>; returns each rank's result, indexed by rank.</summary>
    public static TResult[] Run<TResult>(int size, Func<ICommunicator, TResult> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (size < 1)
            throw new ArgumentException($"An in-process group needs at least 1 rank; got size {size}.", nameof(size));
        var hub = new Hub(size);
        var results = new TResult[size];
        var workers = new Thread[size];
        for (int rank = 0; rank < size; rank++)
        {
            int r = rank;
            workers[r] = new Thread(() =>
            {
                using var communicator = new InProcessCommunicator(hub, r);
                try
                {
                    results[r] = body(communicator);
                    hub.Finished(r);
                }
                catch (Exception e)
                {
                    hub.Failed(r, e);
                }
            })
            {
                Name = $"siglip rank {r} of {size}",
                IsBackground = true,
            };
        }
        foreach (var worker in workers) worker.Start();
        foreach (var worker in workers) worker.Join();
        if ((hub.FirstFailure ?? hub.FirstAbort) is { } failure)
            throw new RankFailedException(failure.Rank, size, failure.Error);
        if (hub.AbortReason is { } reason)   // every rank caught its abort and returned
            throw new CommunicatorAbortedException($"The group of {size} ranks was aborted because {reason}.");
        return results;
    }
}

/// <summary>A rank of a group failed; <see cref="Exception.InnerException"/> is what it threw.</summary>
public sealed class RankFailedException(int rank, int size, Exception inner)
    : Exception($"Rank {rank} of {size} failed: {inner.GetType().Name}: {inner.Message}", inner)
{
    /// <summary>The rank that failed first.</summary>
    public int Rank { get; } = rank;
}

/// <summary>Thrown on a rank whose communication cannot complete because another rank failed, returned early, or the ranks deadlocked.</summary>
public sealed class CommunicatorAbortedException(string message) : Exception(message);

/// <summary>One rank's view of an in-process group.</summary>
internal sealed class InProcessCommunicator(Hub hub, int rank) : ICommunicator
{
    private bool _disposed;
    private long _collectives;   // how many collectives this rank has entered: the next one's round

    public int Rank { get; } = rank;
    public int Size => hub.Size;
    public string Description => $"in-process, {hub.Size} thread{(hub.Size == 1 ? "" : "s")}";

    public void SendReceive<T>(T[] send, int destination, T[] receive, int source, int count) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckUsable();
        ArgumentNullException.ThrowIfNull(send);
        ArgumentNullException.ThrowIfNull(receive);
        if (ReferenceEquals(send, receive)) throw new ArgumentException("SendReceive: send and receive must be different arrays.");
        CheckRank(destination, nameof(destination));
        CheckRank(source, nameof(source));
        CheckCount(count, send, nameof(send));
        CheckCount(count, receive, nameof(receive));
        hub.Send(Rank, destination, send.AsSpan(0, count).ToArray());
        var message = hub.Receive(source, Rank);
        if (message is not T[] typed)
            throw new InvalidOperationException($"Rank {Rank}: SendReceive expected {typeof(T).Name} elements from rank {source} but it sent {message.GetType().GetElementType()?.Name}.");
        if (typed.Length != count)
            throw new InvalidOperationException($"Rank {Rank}: SendReceive expected {count} elements from rank {source} but it sent {typed.Length}.");
        Array.Copy(typed, receive, count);
    }

    public void AllReduceSum<T>(T[] values, int count) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckUsable();
        ArgumentNullException.ThrowIfNull(values);
        CheckCount(count, values, nameof(values));
        var deposits = hub.Collective(Rank, _collectives++, new Call("AllReduceSum", typeof(T), count, -1), values.AsSpan(0, count).ToArray());
        // Sum in rank order, starting from rank 0's values: every rank computes the same bits.
        var first = (T[])deposits[0]!;
        Array.Copy(first, values, count);
        for (int r = 1; r < deposits.Length; r++)
        {
            var other = (T[])deposits[r]!;
            for (int i = 0; i < count; i++) values[i] += other[i];
        }
    }

    public void Broadcast<T>(T[] values, int count, int root) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckUsable();
        ArgumentNullException.ThrowIfNull(values);
        CheckCount(count, values, nameof(values));
        CheckRank(root, nameof(root));
        var deposit = Rank == root ? values.AsSpan(0, count).ToArray() : null;
        var deposits = hub.Collective(Rank, _collectives++, new Call("Broadcast", typeof(T), count, root), deposit);
        if (Rank != root) Array.Copy((T[])deposits[root]!, values, count);
    }

    public void Barrier()
    {
        CheckUsable();
        hub.Collective(Rank, _collectives++, new Call("Barrier", typeof(void), 0, -1), null);
    }

    public void Dispose() => _disposed = true;

    private void CheckUsable() => ObjectDisposedException.ThrowIf(_disposed, this);

    private void CheckRank(int rank, string name)
    {
        if (rank < 0 || rank >= Size)
            throw new ArgumentOutOfRangeException(name, rank, $"Rank {Rank}: {name} must be a rank 0 .. {Size - 1}.");
    }

    private static void CheckCount<T>(int count, T[] buffer, string name)
    {
        if (count < 0 || count > buffer.Length)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"count must be 0 .. {name}.Length = {buffer.Length}.");
    }
}

/// <summary>What a collective call was: every rank's k-th collective must be the same call.</summary>
internal sealed record Call(string Operation, Type Element, int Count, int Root)
{
    public override string ToString() =>
        Operation == "Barrier" ? "Barrier()" : $"{Operation}<{Element.Name}>(count {Count}{(Root >= 0 ? $", root {Root}" : "")})";
}

/// <summary>The state shared by the ranks of one in-process group. Every member runs under <c>_lock</c>.</summary>
internal sealed class Hub(int size)
{
    private readonly object _lock = new();
    private readonly Queue<Array>[,] _mailboxes = NewMailboxes(size);           // [source, destination]
    private readonly Dictionary<long, Round> _rounds = [];                      // collective number -> round
    private readonly bool[] _finished = new bool[size];
    private readonly string?[] _waitingFor = new string?[size];                 // what each blocked rank waits for
    private readonly Func<bool>?[] _canProceed = new Func<bool>?[size];
    private string? _abort;                                                     // why the group failed

    public int Size { get; } = size;

    /// <summary>The first rank that threw an error of its own, and what it threw.</summary>
    public (int Rank, Exception Error)? FirstFailure { get; private set; }

    /// <summary>The first rank whose communication was aborted (used when no rank failed on its own, e.g. a deadlock).</summary>
    public (int Rank, Exception Error)? FirstAbort { get; private set; }

    private sealed class Round(int size, Call call)
    {
        public Call Call { get; } = call;
        public object?[] Deposits { get; } = new object?[size];
        public bool[] Arrived { get; } = new bool[size];
        public int Count { get; set; }
        public int Read { get; set; }
    }

    private static Queue<Array>[,] NewMailboxes(int size)
    {
        var boxes = new Queue<Array>[size, size];
        for (int s = 0; s < size; s++)
        for (int d = 0; d < size; d++)
            boxes[s, d] = new Queue<Array>();
        return boxes;
    }

    public void Send(int source, int destination, Array message)
    {
        lock (_lock)
        {
            ThrowIfAborted(source);
            _mailboxes[source, destination].Enqueue(message);
            Monitor.PulseAll(_lock);
        }
    }

    public Array Receive(int source, int destination)
    {
        lock (_lock)
        {
            var box = _mailboxes[source, destination];
            WaitUntil(destination, () => box.Count > 0, $"SendReceive: a message from rank {source}",
                () => _finished[source] ? $"rank {source} returned without sending to rank {destination}" : null);
            return box.Dequeue();
        }
    }

    /// <summary>Deposits this rank's part of collective number <paramref name="number"/>, waits for all, returns every rank's deposit.</summary>
    public object?[] Collective(int rank, long number, Call call, object? deposit)
    {
        lock (_lock)
        {
            ThrowIfAborted(rank);
            if (!_rounds.TryGetValue(number, out var round))
                _rounds[number] = round = new Round(Size, call);
            if (round.Call != call)
                Abort($"collective #{number} differs between ranks: rank {rank} called {call}, another rank {round.Call}");
            ThrowIfAborted(rank);
            round.Deposits[rank] = deposit;
            round.Arrived[rank] = true;
            round.Count++;
            Monitor.PulseAll(_lock);
            WaitUntil(rank, () => round.Count == Size, $"{call} (collective #{number})",
                () => Enumerable.Range(0, Size).FirstOrDefault(r => !round.Arrived[r] && _finished[r], -1) is var gone and >= 0
                    ? $"rank {gone} returned without calling collective #{number}, {call}" : null);
            if (++round.Read == Size) _rounds.Remove(number);
            return round.Deposits;
        }
    }

    public void Finished(int rank)
    {
        lock (_lock)
        {
            _finished[rank] = true;
            Monitor.PulseAll(_lock);
        }
    }

    public void Failed(int rank, Exception error)
    {
        lock (_lock)
        {
            _finished[rank] = true;
            // An abort seen by a rank is a consequence; the first error of its own is the cause.
            if (error is CommunicatorAbortedException) FirstAbort ??= (rank, error);
            else FirstFailure ??= (rank, error);
            _abort ??= $"rank {rank} failed: {error.GetType().Name}: {error.Message}";
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Why the group failed (a rank's error, a deadlock, a rank gone), or null.</summary>
    public string? AbortReason
    {
        get { lock (_lock) return _abort; }
    }

    // Waits (under the lock) until ready(); throws if the group fails meanwhile, if the rank being
    // waited for has gone (gone() returns why), or if every live rank waits and none can proceed.
    private void WaitUntil(int rank, Func<bool> ready, string what, Func<string?> gone)
    {
        while (!ready())
        {
            ThrowIfAborted(rank);
            if (gone() is { } reason) Abort(reason);
            _waitingFor[rank] = what;
            _canProceed[rank] = ready;
            if (IsDeadlocked())
                Abort("deadlock: " + string.Join("; ", Enumerable.Range(0, Size).Where(r => !_finished[r]).Select(r => $"rank {r} waits for {_waitingFor[r]}")));
            try { ThrowIfAborted(rank); Monitor.Wait(_lock); }
            finally { _waitingFor[rank] = null; _canProceed[rank] = null; }
        }
        // Ready: what this rank waited for has happened, so it completes even if another rank has
        // failed since (that rank's failure surfaces at this rank's next call).
    }

    // Every live rank is waiting and no waiting rank's condition holds.
    private bool IsDeadlocked()
    {
        for (int r = 0; r < Size; r++)
        {
            if (_finished[r]) continue;
            if (_canProceed[r] is not { } canProceed || canProceed()) return false;
        }
        return true;
    }

    private void Abort(string reason)
    {
        _abort ??= reason;
        Monitor.PulseAll(_lock);
    }

    private void ThrowIfAborted(int rank)
    {
        if (_abort is not null)
            throw new CommunicatorAbortedException($"Rank {rank}: communication aborted because {_abort}.");
    }
}
