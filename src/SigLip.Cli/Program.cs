using SigLip.Cli;

// The `siglip` command. Each verb lives in Commands/<Verb>Command.cs and exposes `Create()`; Cli.CreateRoot gathers them.
return Cli.Run(Cli.CreateRoot(), args);
