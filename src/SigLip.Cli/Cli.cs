using System.CommandLine;
using SigLip.Reference.Backends;

namespace SigLip.Cli;

/// <summary>
/// Runs the command line. Errors a user can cause arrive as exceptions with a message that says
/// what was wrong, where and what would be right: print that message (no stack trace), exit 1.
/// Set SIGLIP_DEBUG=1 to see the stack trace as well.
/// </summary>
public static class Cli
{
    /// <summary>The `siglip` command: every verb of <see cref="CommandCatalog"/> under one root.</summary>
    public static RootCommand CreateRoot()
    {
        var root = new RootCommand("SigLip.Reference: a readable SigLIP (sigmoid loss for language-image pre-training) with golden cases and pluggable backends.");
        foreach (var command in CommandCatalog.All()) root.Subcommands.Add(command);
        return root;
    }

    public static int Run(RootCommand root, string[] args)
    {
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        try
        {
            var parse = root.Parse(args);
            // A verb's bad option (e.g. --dtype float16) prints one line per problem, like every other
            // error, not the whole help after it; `siglip` alone, or an unknown verb, still shows the
            // help that lists the verbs.
            if (parse.Errors.Count > 0 && parse.CommandResult.Command != root && !parse.Tokens.Any(t => t.Value is "--help" or "-h" or "-?"))
            {
                foreach (var error in parse.Errors) Console.Error.WriteLine($"error: {error.Message}");
                return 1;
            }
            return parse.Invoke(config);
        }
        catch (Exception ex)
        {
            return ReportError(ex);
        }
    }

    public static int ReportError(Exception ex)
    {
        var e = ex is AggregateException { InnerExceptions.Count: 1 } agg ? agg.InnerException! : ex;
        if (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) e = inner;
        Console.Error.WriteLine($"error: {e.Message}");
        if (Environment.GetEnvironmentVariable("SIGLIP_DEBUG") == "1") Console.Error.WriteLine(e);
        return e is OperationCanceledException ? 130 : 1;
    }
}
