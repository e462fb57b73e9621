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
    public static int Run(RootCommand root, string[] args)
    {
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        try
        {
            return root.Parse(args).Invoke(config);
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
