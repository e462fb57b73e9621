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
            // An argument that looks like an option (a misspelt --out after --texts, say) is never a value of
            // another option: System.CommandLine would take it as one of --texts' values and run.
            if (parse.CommandResult.Command != root && OptionLikeValues(parse).ToList() is { Count: > 0 } swallowed)
            {
                foreach (var message in swallowed) Console.Error.WriteLine($"error: {message}");
                return 1;
            }
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

    /// <summary>
    /// "'--ouT' looks like an option ..." for every value of an option that looks like an option
    /// (-x or --word; negative numbers do not), with the option it was taken by and a close option name.
    /// </summary>
    public static IEnumerable<string> OptionLikeValues(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var command = parse.CommandResult.Command;
        foreach (var option in parse.CommandResult.Children.OfType<System.CommandLine.Parsing.OptionResult>())
            foreach (var token in option.Tokens)
                if (token.Type == System.CommandLine.Parsing.TokenType.Argument && LooksLikeOption(token.Value))
                {
                    var close = CloseOption(command, token.Value);
                    yield return $"'{token.Value}' looks like an option, not a value of {option.Option.Name}: " +
                                 (close is not null ? $"did you mean {close.Name}?" : $"it is not an option of '{command.Name}' (see --help).");
                }
        // A verb's own arguments (tokenize's texts) too, up to a `--`, after which every token is a value.
        var afterDoubleDash = parse.Tokens.SkipWhile(t => t.Type != System.CommandLine.Parsing.TokenType.DoubleDash).ToList();
        foreach (var argument in parse.CommandResult.Children.OfType<System.CommandLine.Parsing.ArgumentResult>())
            foreach (var token in argument.Tokens)
                if (LooksLikeOption(token.Value) && !afterDoubleDash.Any(t => ReferenceEquals(t, token)))
                {
                    var close = CloseOption(command, token.Value);
                    yield return $"'{token.Value}' looks like an option, not a value of the argument <{argument.Argument.Name}>: " +
                                 (close is not null ? $"did you mean {close.Name}?" : $"it is not an option of '{command.Name}' (see --help; put values that start with '-' after --).");
                }
    }

    private static Option? CloseOption(Command command, string value) =>
        command.Options.FirstOrDefault(o => string.Equals(o.Name, value, StringComparison.OrdinalIgnoreCase)
                                            || o.Aliases.Any(a => string.Equals(a, value, StringComparison.OrdinalIgnoreCase)));

    private static bool LooksLikeOption(string value) =>
        value.Length >= 2 && value[0] == '-' && (char.IsAsciiLetter(value[1]) || value[1] == '-' && value.Length > 2 && char.IsAsciiLetter(value[2]))
        && !value.Any(char.IsWhiteSpace);

    public static int ReportError(Exception ex)
    {
        // Parallel work (experiment runs, data loading) wraps the user's error in an AggregateException whose
        // message lists it once per worker: print the distinct inner messages, one line each, and nothing else.
        if (ex is AggregateException agg)
        {
            var inner = agg.Flatten().InnerExceptions.Select(Unwrap).ToList();
            if (inner.Count > 0)
            {
                foreach (var message in inner.Select(e => e.Message).Distinct()) Console.Error.WriteLine($"error: {message}");
                if (Environment.GetEnvironmentVariable("SIGLIP_DEBUG") == "1") Console.Error.WriteLine(ex);
                return inner.All(e => e is OperationCanceledException) ? 130 : 1;
            }
        }
        var e = Unwrap(ex);
        Console.Error.WriteLine($"error: {e.Message}");
        if (Environment.GetEnvironmentVariable("SIGLIP_DEBUG") == "1") Console.Error.WriteLine(e);
        return e is OperationCanceledException ? 130 : 1;
    }

    private static Exception Unwrap(Exception e) =>
        e is System.Reflection.TargetInvocationException { InnerException: { } inner } ? Unwrap(inner)
        : e is AggregateException { InnerExceptions.Count: 1 } one ? Unwrap(one.InnerException!) : e;
}
