using System.Reflection;
using Spectre.Console;

namespace SigLip.SpecTests.Data;

/// <summary>Runs the `siglip` program in-process (its entry point) and captures what it prints.</summary>
internal static class CliRunner
{
    internal static readonly object ConsoleLock = new();

    public static (int ExitCode, string Out, string Err) Run(params string[] args)
    {
        var entry = typeof(SigLip.Cli.Cli).Assembly.EntryPoint ?? throw new InvalidOperationException("siglip has no entry point");
        lock (ConsoleLock)
        {
            var (oldOut, oldErr, oldAnsi) = (Console.Out, Console.Error, AnsiConsole.Console);
            var (sout, serr) = (new StringWriter(), new StringWriter());
            Console.SetOut(sout);
            Console.SetError(serr);
            // Spectre's console keeps the writer it was first created with: point it at this run's standard output too.
            AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(sout), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
            });
            try
            {
                var result = entry.Invoke(null, [args]);
                int code = result switch { int i => i, Task<int> t => t.GetAwaiter().GetResult(), _ => 0 };
                return (code, sout.ToString(), serr.ToString());
            }
            catch (TargetInvocationException ex) when (ex.InnerException is not null)
            {
                throw ex.InnerException;
            }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
                AnsiConsole.Console = oldAnsi;
            }
        }
    }
}
