using System.CommandLine;

namespace SigLip.Cli;

/// <summary>Every verb of the `siglip` command. Add a verb here with one line.</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return Commands.TokenizeCommand.Create();
        yield return Commands.EmbedCommand.Create();
        yield return Commands.SimilarityCommand.Create();
        yield return Commands.BenchCommand.Create();
        yield return Commands.GoldenCommand.Create();
        yield return Commands.BackendsCommand.Create();
        yield return Commands.ThroughputCommand.Create();
        yield return Commands.TrainCommand.Create();
        yield return Commands.TrafficCommand.Create();
        yield return Commands.EvalCommand.Create();
        yield return Commands.ExperimentCommand.Create();
        yield return Commands.ExplainCommand.Create();
        yield return Commands.FuzzCommand.Create();
        yield break;
    }
}
