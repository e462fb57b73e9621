using System.CommandLine;
using SigLip.Cli;
using SigLip.SpecTests.Data;

namespace SigLip.SpecTests.Cli;

/// <summary>
/// The four backend options (--backend, --dtype, --libtorch, --threads) are declared once
/// (<see cref="BackendCliOptions"/>) and every verb that starts a backend has all four, with the
/// same descriptions and defaults, read from the real command tree of `siglip`.
/// </summary>
public sealed class BackendCliOptionsTests
{
    /// <summary>Every verb that starts a backend, with the arguments it requires (so that only the option under test can fail to parse).</summary>
    public static readonly (string[] Verb, string[] Required)[] BackendVerbs =
    [
        (["train"], []),
        (["eval"], ["--checkpoint", "no-such-checkpoint"]),
        (["golden", "verify"], []),
        (["embed"], ["--checkpoint", "no-such-checkpoint", "--texts", "a cat"]),
        (["similarity"], ["--checkpoint", "no-such-checkpoint", "--images", "a.png", "--texts", "a cat"]),
        (["experiment", "batch-size"], []),
        (["throughput"], []),
    ];

    public static TheoryData<string> VerbNames()
    {
        var data = new TheoryData<string>();
        foreach (var (verb, _) in BackendVerbs) data.Add(string.Join(' ', verb));
        return data;
    }

    private static readonly string[] OptionNames = ["--backend", "--dtype", "--libtorch", "--threads"];

    private static (string[] Verb, string[] Required) Verb(string name) => BackendVerbs.Single(v => string.Join(' ', v.Verb) == name);

    private static IEnumerable<(string Path, Command Command)> AllCommands(Command command, string path)
    {
        yield return (path, command);
        foreach (var sub in command.Subcommands)
            foreach (var c in AllCommands(sub, path.Length == 0 ? sub.Name : path + " " + sub.Name))
                yield return c;
    }

    private static Command Find(RootCommand root, string[] verb)
    {
        Command command = root;
        foreach (var name in verb) command = command.Subcommands.Single(c => c.Name == name);
        return command;
    }

    [Fact]
    public void ExactlyTheVerbsThatStartABackendTakeTheBackendOptions()
    {
        var root = SigLip.Cli.Cli.CreateRoot();
        var withAnyOption = AllCommands(root, "")
            // `bench` starts no backend through these options: its --threads sets both sides of its comparison
            // (the managed kernels and libtorch). `golden compare` starts no backend either: its --dtype names the
            // dtype a port's dump was computed in (float16 included), which picks the tolerance.
            .Where(c => c.Path is not ("bench" or "golden compare"))
            .Where(c => c.Command.Options.Any(o => OptionNames.Contains(o.Name)))
            .Select(c => c.Path).OrderBy(p => p, StringComparer.Ordinal).ToList();
        var expected = BackendVerbs.Select(v => string.Join(' ', v.Verb)).OrderBy(p => p, StringComparer.Ordinal).ToList();
        Assert.Equal(expected, withAnyOption);
    }

    [Fact]
    public void EveryBackendVerbHasTheSameFourOptionsWithTheSameDescriptionsAndDefaults()
    {
        var root = SigLip.Cli.Cli.CreateRoot();
        var shared = new BackendCliOptions();
        foreach (var (verb, _) in BackendVerbs)
        {
            var command = Find(root, verb);
            string name = string.Join(' ', verb);
            foreach (var expected in shared.All)
            {
                var option = command.Options.SingleOrDefault(o => o.Name == expected.Name);
                Assert.True(option is not null, $"`siglip {name}` lacks {expected.Name}");
                Assert.Equal(expected.GetType(), option!.GetType());
                Assert.Equal(expected.Description, option.Description);
                Assert.Equal(expected.HasDefaultValue, option.HasDefaultValue);
                if (expected.HasDefaultValue) Assert.Equal(expected.GetDefaultValue(), option.GetDefaultValue());
            }
        }
        Assert.Equal("managed", shared.Backend.GetDefaultValue());
        Assert.False(shared.DType.HasDefaultValue);
        Assert.False(shared.LibTorch.HasDefaultValue);
        Assert.False(shared.Threads.HasDefaultValue);
    }

    [Theory]
    [MemberData(nameof(VerbNames))]
    public void LeftOutTheOptionsGiveManagedTheBackendsDTypeAndEveryCore(string verbName)
    {
        var (verb, required) = Verb(verbName);
        var parse = SigLip.Cli.Cli.CreateRoot().Parse([.. verb, .. required]);
        Assert.Empty(parse.Errors);
        var options = new BackendCliOptions();
        Assert.Equal("managed", parse.GetValue<string>("--backend"));
        Assert.Null(parse.GetValue<SigLip.Reference.Backends.DType?>("--dtype"));
        Assert.Null(parse.GetValue<string?>("--libtorch"));
        Assert.Null(parse.GetValue<int?>("--threads"));
        Assert.Equal(Environment.ProcessorCount, new SigLip.Reference.Backends.BackendOptions(Threads: parse.GetValue<int?>("--threads")).ThreadsOrAllCores());
    }

    [Theory]
    [MemberData(nameof(VerbNames))]
    public void GivenTheOptionsReachTheBackendOptions(string verbName)
    {
        var (verb, required) = Verb(verbName);
        var parse = SigLip.Cli.Cli.CreateRoot().Parse([.. verb, .. required, "--backend", "reference", "--dtype", "BF16", "--libtorch", "/opt/libtorch", "--threads", "3"]);
        Assert.Empty(parse.Errors);
        Assert.Equal("reference", parse.GetValue<string>("--backend"));
        Assert.Equal(SigLip.Reference.Backends.DType.BFloat16, parse.GetValue<SigLip.Reference.Backends.DType?>("--dtype"));
        Assert.Equal("/opt/libtorch", parse.GetValue<string?>("--libtorch"));
        Assert.Equal(3, parse.GetValue<int?>("--threads"));
    }

    [Theory]
    [MemberData(nameof(VerbNames))]
    public void AnUnknownDTypeIsOneLineThatListsTheDTypes(string verbName)
    {
        var (verb, required) = Verb(verbName);
        var (code, stdout, stderr) = CliRunner.Run([.. verb, .. required, "--dtype", "float16"]);
        Assert.Equal(1, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(["error: " + BackendCliOptions.DTypeError("float16")], lines);
        Assert.Contains("float64, float32 or bfloat16", lines[0]);
        Assert.DoesNotContain("Usage:", stdout);   // no help dump after the error
        Assert.DoesNotContain("   at ", stdout + stderr); // no stack trace
    }

    [Fact]
    public void ThreadsBelowOneIsOneLine()
    {
        var (code, _, stderr) = CliRunner.Run("golden", "verify", "--threads", "0");
        Assert.Equal(1, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: --threads 0: a backend needs at least 1 thread", lines[0]);
    }

    [Fact]
    public void EvalAcceptsLibTorch()
    {
        var parse = SigLip.Cli.Cli.CreateRoot().Parse(["eval", "--checkpoint", "x", "--libtorch", "/opt/libtorch"]);
        Assert.Empty(parse.Errors);
        Assert.Equal("/opt/libtorch", parse.GetValue<string?>("--libtorch"));

        // Run for real: the option is taken, and the run stops at the missing checkpoint, not at --libtorch.
        var (code, _, stderr) = CliRunner.Run("eval", "--checkpoint", "/nonexistent/checkpoint", "--libtorch", "/opt/libtorch");
        Assert.Equal(1, code);
        Assert.Contains("Checkpoint folder '/nonexistent/checkpoint' does not exist", stderr);
        Assert.DoesNotContain("--libtorch", stderr);
    }

    [Fact]
    public void ThroughputOnANonTorchBackendSaysWhichBackendsItTimes()
    {
        foreach (var args in new[] { new[] { "throughput" }, ["throughput", "--backend", "reference", "--config", "tiny"] })
        {
            var (code, _, stderr) = CliRunner.Run(args);
            Assert.Equal(1, code);
            var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Assert.Single(lines);
            Assert.Contains("--backend cuda", lines[0]);
            Assert.Contains("--backend torch", lines[0]);
        }
    }

    [Fact]
    public void GoldenVerifyHelpSaysItChecksManagedByDefault()
    {
        var (code, stdout, _) = CliRunner.Run("golden", "verify", "--help");
        Assert.Equal(0, code);
        Assert.Contains("managed when not given", stdout);
        Assert.Contains("[default: managed]", stdout);
    }
}
