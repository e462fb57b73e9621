using System.CommandLine;
using Spectre.Console;

namespace SigLip.Cli.Commands;

/// <summary>`siglip backends`: every registered backend, whether it can start here, and why not.</summary>
internal static class BackendsCommand
{
    public static Command Create()
    {
        var command = new Command("backends", "List the backends, whether each can start on this machine, and why not.");
        command.SetAction(_ =>
        {
            var table = new Table().AddColumns("backend", "can start", "why / what it is");
            foreach (var provider in CliBackends.Registry().Providers)
            {
                var probe = provider.Probe();
                table.AddRow(
                    Markup.Escape(provider.Name),
                    probe.CanStart ? "[green]yes[/]" : "[red]no[/]",
                    Markup.Escape(probe.CanStart ? $"{provider.Description}. {probe.Reason}".Trim() : probe.Reason));
            }
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }
}
