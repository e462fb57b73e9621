using System.Diagnostics;
using SigLip.Reference.Distributed;

namespace SigLip.SpecTests.Distributed;

/// <summary>The in-process group keeps the communicator contract, and a failing rank never leaves the others waiting.</summary>
public sealed class InProcessGroupTests
{
    // A hang would block the test run; every group here must finish well within this.
    private static readonly TimeSpan NoHang = TimeSpan.FromSeconds(30);

    private static T WithinTime<T>(Func<T> run)
    {
        var task = Task.Run(run);
        Assert.True(task.Wait(NoHang), $"the group did not finish within {NoHang.TotalSeconds} s: a rank hangs");
        return task.Result;
    }

    private static Exception ThrowsWithinTime(Action run)
    {
        var task = Task.Run(run);
        try { Assert.True(task.Wait(NoHang), $"the group did not finish within {NoHang.TotalSeconds} s: a rank hangs"); }
        catch (AggregateException e) { return e.InnerException!; }
        throw new Xunit.Sdk.XunitException("expected the group to throw, but it returned");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    public void Collectives_and_the_ring_send_receive_give_what_the_contract_says(int size)
    {
        var results = WithinTime(() => InProcessGroup.Run(size, c =>
        {
            Assert.Equal(size, c.Size);
            Assert.Contains($"{size} thread", c.Description);
            // All-reduce: rank r contributes [r, 1, 2^r]; the sums are known in closed form.
            var values = new double[] { c.Rank, 1, Math.Pow(2, c.Rank), 99 };
            c.AllReduceSum(values, 3);
            // Broadcast from the last rank.
            var fromLast = new float[] { c.Rank, c.Rank };
            c.Broadcast(fromLast, size - 1);
            // Ring: send my rank right, receive the left neighbour's, W times round.
            var token = new double[] { c.Rank };
            var incoming = new double[1];
            for (int hop = 0; hop < size; hop++)
            {
                c.SendReceive(token, c.Right(), incoming, c.Left());
                (token, incoming) = (incoming, token);
            }
            c.Barrier();
            return (values, fromLast, token[0], left: c.Left(), right: c.Right());
        }));
        for (int r = 0; r < size; r++)
        {
            var (values, fromLast, token, left, right) = results[r];
            Assert.Equal(new double[] { size * (size - 1) / 2.0, size, Math.Pow(2, size) - 1, 99 }, values);
            Assert.Equal(new float[] { size - 1, size - 1 }, fromLast);
            Assert.Equal(r, token);  // after W hops every token is home
            Assert.Equal((r + size - 1) % size, left);
            Assert.Equal((r + 1) % size, right);
        }
    }

    [Fact]
    public void A_rank_that_throws_is_named_and_the_others_pending_collectives_throw_instead_of_waiting()
    {
        var watch = Stopwatch.StartNew();
        var aborted = new bool[3];
        var e = ThrowsWithinTime(() => InProcessGroup.Run(3, c =>
        {
            if (c.Rank == 1) throw new InvalidOperationException("the data of rank 1 is bad");
            try { c.AllReduceSum(new double[4]); }
            catch (CommunicatorAbortedException) { aborted[c.Rank] = true; throw; }
        }));
        var failed = Assert.IsType<RankFailedException>(e);
        Assert.Equal(1, failed.Rank);
        Assert.Contains("Rank 1 of 3", failed.Message);
        Assert.Contains("the data of rank 1 is bad", failed.Message);
        Assert.IsType<InvalidOperationException>(failed.InnerException);
        Assert.True(aborted[0] && aborted[2], "ranks 0 and 2 must have been released by an abort");
        Assert.True(watch.Elapsed < NoHang);
    }

    [Fact]
    public void A_rank_that_throws_releases_a_neighbour_waiting_in_send_receive()
    {
        var e = ThrowsWithinTime(() => InProcessGroup.Run(2, c =>
        {
            if (c.Rank == 0) { Thread.Sleep(50); throw new ArgumentException("rank 0 gives up"); }
            c.SendReceive(new float[3], c.Right(), new float[3], c.Left());
        }));
        var failed = Assert.IsType<RankFailedException>(e);
        Assert.Equal(0, failed.Rank);
        Assert.Contains("rank 0 gives up", failed.Message);
    }

    [Fact]
    public void A_rank_that_returns_early_or_ranks_that_call_different_collectives_fail_with_what_each_waited_for()
    {
        var early = ThrowsWithinTime(() => InProcessGroup.Run(3, c =>
        {
            if (c.Rank == 2) return;
            c.Barrier();
        }));
        Assert.Contains("rank 2 returned without calling collective #0", early.ToString());

        var mismatch = ThrowsWithinTime(() => InProcessGroup.Run(2, c =>
        {
            if (c.Rank == 0) c.AllReduceSum(new double[2]);
            else c.Broadcast(new double[2], 0);
        }));
        Assert.Contains("collective #0 differs between ranks", mismatch.ToString());

        // Both ranks wait to receive and nobody sends: a deadlock, reported, not a hang.
        var deadlock = ThrowsWithinTime(() => InProcessGroup.Run(2, c =>
        {
            if (c.Rank == 0) c.Barrier();
            else c.SendReceive(new double[1], 0, new double[1], 0); // sends to 0, waits for 0, which waits in Barrier
        }));
        Assert.Contains("deadlock", deadlock.ToString());
    }

    [Fact]
    public void Bad_arguments_give_clear_messages()
    {
        Assert.Contains("at least 1 rank", Assert.Throws<ArgumentException>(() => InProcessGroup.Run(0, _ => { })).Message);
        var e = ThrowsWithinTime(() => InProcessGroup.Run(2, c => c.SendReceive(new double[2], 5, new double[2], 0)));
        Assert.Contains("destination must be a rank 0 .. 1", e.ToString());
    }
}
