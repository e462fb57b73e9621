using System.CommandLine;
using SigLip.Cli;

// The `siglip` command. Each verb lives in Commands/<Verb>Command.cs and exposes `Create()`.
var root = new RootCommand("SigLip.Reference: a readable SigLIP (sigmoid loss for language-image pre-training) with golden cases and pluggable backends.");
foreach (var command in CommandCatalog.All()) root.Subcommands.Add(command);
return Cli.Run(root, args);
