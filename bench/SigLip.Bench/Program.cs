// BenchmarkDotNet suites of the managed backend (and the reference where it is a useful baseline):
//   dotnet run -c Release --project bench/SigLip.Bench -- --filter '*Layer*'
// `-- compare [--quick] [--only WORDS]` instead runs the managed-vs-libtorch comparison of `siglip bench`
// (bench/SigLip.Bench.Harness) and prints its table as markdown.
using SigLip.Bench.Harness;

if (args.Length > 0 && args[0] == "compare")
{
    bool quick = args.Contains("--quick");
    int only = Array.IndexOf(args, "--only");
    var words = only >= 0 && only + 1 < args.Length ? args[only + 1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : null;
    var report = BenchHarness.Run(new BenchOptions(quick, words), Console.Out);
    Console.Out.WriteLine();
    Console.Out.Write(BenchHarness.MarkdownTable(report));
    return;
}
BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

public partial class Program { }
