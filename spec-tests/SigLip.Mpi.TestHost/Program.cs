using System.Text.Json;
using SigLip.Distributed.Mpi;
using SigLip.Reference.Distributed;

// One rank of the MPI tests, started as `mpirun -np W dotnet SigLip.Mpi.TestHost.dll SCENARIO ...`.
//   collectives OUTDIR   every operation of ICommunicator in float and double; each rank writes
//                        OUTDIR/rank<R>.json with what it received, and the test checks it.
//   throw K              rank K throws after a first barrier while the others wait in a second one:
//                        the job must end (MPI_Abort) with one message naming rank K.
// The inputs are the formulas in Inputs below; the test (MpiRankTests) repeats them and computes the
// expected results (who sends what to whom, sums, broadcasts) on its own.

if (args.Length == 0)
{
    Console.Error.WriteLine("usage: SigLip.Mpi.TestHost collectives OUTDIR | throw RANK");
    return 2;
}

MpiCommunicator communicator;
try
{
    communicator = MpiCommunicator.Create();
}
catch (Exception e) when (e is MpiNotAvailableException or InvalidOperationException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

using (communicator)
{
    return communicator.RunOrAbort(c => args[0] switch
    {
        "collectives" when args.Length == 2 => Scenarios.Collectives(c, args[1]),
        "throw" when args.Length == 2 && int.TryParse(args[1], out var k) => Scenarios.Throw(c, k),
        _ => throw new ArgumentException($"unknown scenario: {string.Join(' ', args)}"),
    });
}

internal static class Inputs
{
    public const int N = 1001;

    /// <summary>Rank r's vector: r + i/3 (not a float, so a double that travels as float would show).</summary>
    public static double X(int rank, int i) => rank + i / 3.0;

    /// <summary>Rank r's float vector: exact in float, so sums are exact whatever the order.</summary>
    public static float XFloat(int rank, int i) => (rank + 1) * 0.5f + i * 0.25f;

    /// <summary>The broadcast root's values.</summary>
    public static double Y(int i) => 7 + i / 7.0;
}

internal static class Scenarios
{
    public static int Collectives(MpiCommunicator c, string outDir)
    {
        int r = c.Rank, w = c.Size;
        var arrays = new Dictionary<string, double[]>();
        var messages = new Dictionary<string, string>();
        double[] Own() => Enumerable.Range(0, Inputs.N).Select(i => Inputs.X(r, i)).ToArray();
        float[] OwnFloat() => Enumerable.Range(0, Inputs.N).Select(i => Inputs.XFloat(r, i)).ToArray();

        // Send-receive to the right (receive from the left), double.
        var received = new double[Inputs.N];
        c.SendReceive(Own(), c.Right(), received, c.Left());
        arrays["sendrecv_right_double"] = received;

        // To the left (receive from the right), float.
        var receivedFloat = new float[Inputs.N];
        c.SendReceive(OwnFloat(), c.Left(), receivedFloat, c.Right());
        arrays["sendrecv_left_float"] = ToDouble(receivedFloat);

        // Around the whole ring: W hops bring every rank's vector home; record hop 1's source too.
        var travelling = Own();
        var next = new double[Inputs.N];
        for (var hop = 0; hop < w; hop++)
        {
            c.SendReceive(travelling, c.Right(), next, c.Left());
            (travelling, next) = (next, travelling);
        }
        arrays["ring_home_double"] = travelling;

        // Part of a buffer: 7 elements travel; the rest of the receive buffer keeps its -1.
        var partial = Enumerable.Repeat(-1.0, 10).ToArray();
        c.SendReceive(Own(), c.Right(), partial, c.Left(), 7);
        arrays["sendrecv_partial_double"] = partial;

        // All-reduce (sum), both types, and the first 5 of 10 only.
        var sum = Own();
        c.AllReduceSum(sum);
        arrays["allreduce_double"] = sum;
        var sumFloat = OwnFloat();
        c.AllReduceSum(sumFloat);
        arrays["allreduce_float"] = ToDouble(sumFloat);
        var sumPartial = Own()[..10];
        c.AllReduceSum(sumPartial, 5);
        arrays["allreduce_partial_double"] = sumPartial;

        // Broadcast from the last rank (double), from rank 0 (float); the others start from NaN.
        var root = w - 1;
        var broadcast = r == root ? Enumerable.Range(0, Inputs.N).Select(Inputs.Y).ToArray() : Enumerable.Repeat(double.NaN, Inputs.N).ToArray();
        c.Broadcast(broadcast, root);
        arrays["broadcast_double"] = broadcast;
        var broadcastFloat = r == 0 ? OwnFloat() : Enumerable.Repeat(float.NaN, Inputs.N).ToArray();
        c.Broadcast(broadcastFloat, 0);
        arrays["broadcast_float"] = ToDouble(broadcastFloat);
        var broadcastPartial = r == 0 ? Own()[..10] : Enumerable.Repeat(-1.0, 10).ToArray();
        c.Broadcast(broadcastPartial, 3, 0);
        arrays["broadcast_partial_double"] = broadcastPartial;

        c.Barrier();

        // Bad arguments fail on the calling rank before any message is sent (so no rank is left waiting).
        messages["bad_destination"] = Message(() => c.SendReceive(new double[3], w, new double[3], 0, 3));
        messages["same_array"] = Message(() => { var a = new double[3]; c.SendReceive(a, 0, a, 0, 3); });
        messages["count_too_big"] = Message(() => c.AllReduceSum(new float[3], 4));
        messages["bad_root"] = Message(() => c.Broadcast(new double[3], 3, -1));

        var launch = MpiLaunch.Detect();
        var result = new RankResult(r, w, c.Description, c.ThreadLevel, launch?.Size, launch?.Rank, launch?.Launcher, arrays, messages);
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, $"rank{r}.json"), JsonSerializer.Serialize(result, new JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
        Console.WriteLine($"rank {r} of {w}: ok ({c.Description})");
        return 0;
    }

    public static int Throw(MpiCommunicator c, int failing)
    {
        c.Barrier();
        if (c.Rank == failing) throw new InvalidOperationException("deliberate failure for the test");
        c.Barrier(); // waits for the failed rank forever, unless the job is aborted
        Console.WriteLine($"rank {c.Rank}: passed the second barrier, which should be impossible");
        return 0;
    }

    private static double[] ToDouble(float[] values) => values.Select(v => (double)v).ToArray();

    private static string Message(Action action)
    {
        try { action(); return "(no exception)"; }
        catch (Exception e) { return $"{e.GetType().Name}: {e.Message}"; }
    }
}

internal sealed record RankResult(
    int Rank, int Size, string Description, int ThreadLevel, int? LaunchSize, int? LaunchRank, string? Launcher,
    Dictionary<string, double[]> Arrays, Dictionary<string, string> Messages);
