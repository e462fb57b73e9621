using System.CommandLine;
using SigLip.Reference.IO.Golden;

namespace SigLip.Cli;

/// <summary>`--max-memory`: the most memory a verb may plan to use; the memory available to the process is always checked too (<see cref="SigLip.Reference.Models.ModelSize"/>).</summary>
internal static class SizeCliOptions
{
    public static Option<string?> MaxMemory() => new("--max-memory")
    {
        Description = "Refuse to start when the estimated memory exceeds this (e.g. 8G, 512M); the memory available to the process is always checked.",
    };

    public static long? Parse(ParseResult parse, Option<string?> option) =>
        parse.GetValue(option) is { } text ? CheckpointCase.ParseBytes(text, "--max-memory") : null;
}
