using System.Globalization;
using System.Text.RegularExpressions;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;
using static SigLip.SpecTests.Packaging.PackagingFixture;

namespace SigLip.SpecTests.Packaging;

/// <summary>
/// A fresh console project outside the repository references a packed package from the local folder
/// (nothing of the repository's build applies to it). Its Program.cs is the package README's C# sample,
/// verbatim (so the README cannot rot), followed by the test's own lines: the README sample must
/// compile and run, and both its printed numbers and the test's are compared with the paper's formula,
/// computed here on its own.
/// </summary>
[Collection(PackagingCollection.Name)]
public sealed class ConsumerProjectTests(PackagingFixture packages, ITestOutputHelper output)
{
    // Two batches of n = 3 unnormalised embeddings, d = 4, row-major; t' and b away from the paper's start.
    private static readonly double[] Images = [0.8, -0.3, 1.7, 0.05, -1.2, 0.4, 0.9, 2.3, 0.33, 1.1, -0.75, -0.6];
    private static readonly double[] Texts = [1.0, -0.2, 1.5, 0.4, -0.9, 0.7, 0.2, 1.8, -0.1, 1.3, -1.1, 0.25];
    private const int N = 3, D = 4;
    private const double LogitScale = 1.3, LogitBias = -2.1;

    /// <summary>Printed by the test's lines after the README sample: what the sample printed comes before it.</summary>
    private const string Marker = "--- after the README sample ---";

    [Fact]
    public void The_library_README_sample_runs_against_the_package_and_prints_the_papers_loss()
    {
        var readme = Path.Combine(RepoPaths.Root, "src", "SigLip.Reference", "README.md");
        var sample = CSharpSample(readme);
        var (sampleOutput, printed) = BuildAndRun("consumer", LibraryId, sample, """
            SigLip.Reference.Backends.LossResult result = SigLip.Reference.Loss.PairwiseLoss.Compute(
                testImages, testTexts, LOGIT_SCALE, LOGIT_BIAS, new SigLip.Reference.Backends.LossOptions());
            """);
        AgreesWithThePaper(printed!);

        // The README's own example: t' = ln 10, b = -10 (the paper's start), its two inputs; it prints L, then dL/dt'.
        var (readmeImages, n, d) = TensorLiteral(sample, "images", readme);
        var (readmeTexts, nTexts, dTexts) = TensorLiteral(sample, "texts", readme);
        Assert.True((n, d) == (nTexts, dTexts), $"{readme}: the sample's images are [{n}, {d}] but its texts [{nTexts}, {dTexts}]");
        var formula = PaperFormula(readmeImages, readmeTexts, n, d, Math.Log(10), -10);
        Assert.True(sampleOutput.Count == 2, $"{readme}: the sample should print two lines (the loss, then dL/dt'); it printed:\n{string.Join("\n", sampleOutput)}");
        output.WriteLine($"README sample: printed {sampleOutput[0]}, {sampleOutput[1]}; formula: loss {formula.Loss:R}, dL/dt' {formula.DLogitScale:R}");
        var tolerance = new Tolerance(1e-14, 1e-12);
        AssertClose.Scalar(double.Parse(sampleOutput[0], CultureInfo.InvariantCulture), formula.Loss, tolerance, "README sample: loss");
        AssertClose.Scalar(double.Parse(sampleOutput[1], CultureInfo.InvariantCulture), formula.DLogitScale, tolerance, "README sample: dL/dt'");
    }

    /// <summary>
    /// The same through the backend package's README sample and its "torch" backend in float64: the
    /// package's native dependencies restore, and its buildTransitive ELF patch lets libtorch load here.
    /// </summary>
    [SkippableFact]
    public void The_backend_README_sample_runs_against_the_package_and_its_torch_backend_computes_the_loss()
    {
        bool linuxX64 = OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64;
        var sample = CSharpSample(Path.Combine(RepoPaths.Root, "backends", "SigLip.Backends.TorchSharp", "README.md"));
        // The sample starts `torch`; the test's lines use the same backend.
        var (_, printed) = BuildAndRun("consumer-torch", BackendId, sample, """
            SigLip.Reference.Backends.LossResult result = torch.Loss(testImages, testTexts, LOGIT_SCALE, LOGIT_BIAS, new SigLip.Reference.Backends.LossOptions());
            """, allowExitCode3: !linuxX64);
        // Reported as Skipped (with the reason), never as a pass, where the loss could not run.
        Skip.If(printed is null, $"{System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier}: the project built against the package, " +
                                 "but the package's libtorch is Linux x64 only, so the torch backend could not start and the loss was not computed");
        AgreesWithThePaper(printed!);
    }

    /// <summary>
    /// The same through the managed backend package's README sample, in float64 on its own kernels:
    /// pure managed code, so it runs on any machine.
    /// </summary>
    [Fact]
    public void The_managed_backend_README_sample_runs_against_the_package_and_computes_the_loss()
    {
        var sample = CSharpSample(Path.Combine(RepoPaths.Root, "backends", "SigLip.Backends.Managed", "README.md"));
        // The sample starts `managed` in float64; the test's lines use it.
        var (sampleOutput, printed) = BuildAndRun("consumer-managed", ManagedId, sample, """
            SigLip.Reference.Backends.LossResult result = backend.Loss(testImages, testTexts, LOGIT_SCALE, LOGIT_BIAS, new SigLip.Reference.Backends.LossOptions());
            """);
        Assert.True(sampleOutput.Count == 1 && sampleOutput[0].StartsWith("managed: float64 on cpu", StringComparison.Ordinal),
            $"the sample should print one line naming the backend, its dtype and its device; it printed:\n{string.Join("\n", sampleOutput)}");
        AgreesWithThePaper(printed!);
    }

    /// <summary>The one ```csharp block of a README, verbatim.</summary>
    private static string CSharpSample(string readme)
    {
        var blocks = Regex.Matches(File.ReadAllText(readme).ReplaceLineEndings("\n"), @"^```csharp\n(.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline);
        Assert.True(blocks.Count == 1, $"{readme} should hold one ```csharp code block (compiled by this test), it holds {blocks.Count}");
        return blocks[0].Groups[1].Value;
    }

    /// <summary>The numbers of `var name = new Tensor([rows, cols], [v, ...]);` in the sample.</summary>
    private static (double[] Values, int Rows, int Cols) TensorLiteral(string sample, string name, string readme)
    {
        var m = Regex.Match(sample, @"var\s+" + name + @"\s*=\s*new\s+Tensor\(\[(\d+),\s*(\d+)\],\s*\[([^\]]*)\]\)");
        Assert.True(m.Success, $"{readme}: the sample declares no `var {name} = new Tensor([rows, cols], [values])` this test can read");
        var values = m.Groups[3].Value.Split(',').Select(v => double.Parse(v.Trim(), CultureInfo.InvariantCulture)).ToArray();
        int rows = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), cols = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.True(values.Length == rows * cols, $"{readme}: `{name}` is [{rows}, {cols}] but lists {values.Length} values");
        return (values, rows, cols);
    }

    /// <summary>
    /// Creates a console project under the fixture's folder that references <paramref name="packageId"/>
    /// from the local feed; its Program.cs is <paramref name="sample"/> verbatim, then <paramref name="body"/>
    /// (which sets <c>result</c> from <c>testImages</c>, <c>testTexts</c>). Returns what the sample printed
    /// (lines before <see cref="Marker"/>) and the test's numbers; the numbers are null when the program
    /// exited with 3 (a <c>BackendUnavailableException</c>) and <paramref name="allowExitCode3"/>.
    /// </summary>
    private (List<string> SampleOutput, Dictionary<string, double>? Printed) BuildAndRun(string name, string packageId, string sample, string body, bool allowExitCode3 = false)
    {
        var project = Directory.CreateDirectory(Path.Combine(packages.Root, name)).FullName;
        var version = packages.Version(packageId);
        var machineCache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p
            ? p : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        // Its own packages folder (a re-packed 0.1.0 is never served stale from the machine's cache);
        // the machine's cache as a read-only fallback for the package's dependencies; SigLip.* only
        // from the local folder.
        File.WriteAllText(Path.Combine(project, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config>
                <add key="globalPackagesFolder" value="{Path.Combine(packages.Root, name + "-packages")}" />
              </config>
              <packageSources>
                <clear />
                <add key="local" value="{packages.Feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
              </packageSources>
              <packageSourceMapping>
                <packageSource key="local"><package pattern="SigLip.*" /></packageSource>
                <packageSource key="nuget.org"><package pattern="*" /></packageSource>
              </packageSourceMapping>
              <fallbackPackageFolders>
                <clear />
                <add key="machine" value="{machineCache}" />
              </fallbackPackageFolders>
            </configuration>
            """);
        // InvariantGlobalization: the sample's Console.WriteLine(double) prints "0.5", not "0,5", whatever the machine's culture.
        File.WriteAllText(Path.Combine(project, name + ".csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <InvariantGlobalization>true</InvariantGlobalization>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="{packageId}" Version="[{version}]" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(project, "Program.cs"), sample + $$"""

            // ---- the README's sample ends here; the lines below are the test's ----
            System.Console.WriteLine("{{Marker}}");
            var testImages = new SigLip.Reference.Tensor([{{N}}, {{D}}], [{{Literals(Images)}}]);
            var testTexts = new SigLip.Reference.Tensor([{{N}}, {{D}}], [{{Literals(Texts)}}]);
            {{body.Replace("LOGIT_SCALE", Literal(LogitScale)).Replace("LOGIT_BIAS", Literal(LogitBias))}}
            System.Console.WriteLine("loss " + result.Loss.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
            System.Console.WriteLine("dloss/dbias " + result.GradLogitBias.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
            return 0;
            """);
        // A backend that cannot start (the sample calls registry.Start) ends the program with exit code 3, not a crash.
        File.WriteAllText(Path.Combine(project, "ExitCodeWhenABackendCannotStart.cs"), """
            internal static class ExitCodeWhenABackendCannotStart
            {
                [System.Runtime.CompilerServices.ModuleInitializer]
                internal static void Install() => System.AppDomain.CurrentDomain.UnhandledException += (_, e) =>
                {
                    if (e.ExceptionObject is not SigLip.Reference.Backends.BackendUnavailableException unavailable) return;
                    System.Console.WriteLine("backend unavailable: " + unavailable.Message);
                    System.Environment.Exit(3);
                };
            }
            """);

        var run = Run("dotnet", ["run", "-c", "Release", "--disable-build-servers"], project, TimeSpan.FromMinutes(10));
        packages.Timings.Add(($"{name}: dotnet run", run.Elapsed));
        output.WriteLine(run.Describe());
        var lines = run.Stdout.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        var sampleOutput = lines.TakeWhile(l => l != Marker).Where(l => l.Length > 0).ToList();
        if (allowExitCode3 && run.ExitCode == 3) return (sampleOutput, null);
        Assert.True(run.ExitCode == 0, $"the console project (the README sample of {packageId}, then the test's lines) did not build or run.\n{run.Describe()}");
        Assert.True(lines.Contains(Marker), $"the README sample of {packageId} did not run to its end:\n{run.Stdout}");
        var printed = lines.SkipWhile(l => l != Marker)
            .Where(l => l.StartsWith("loss ", StringComparison.Ordinal) || l.StartsWith("dloss/dbias ", StringComparison.Ordinal))
            .Select(l => l.Split(' '))
            .ToDictionary(f => f[0], f => double.Parse(f[1], CultureInfo.InvariantCulture));
        Assert.True(printed.ContainsKey("loss") && printed.ContainsKey("dloss/dbias"), $"unexpected output:\n{run.Stdout}");
        return (sampleOutput, printed);
    }

    private void AgreesWithThePaper(Dictionary<string, double> printed)
    {
        var (loss, _, dBias) = PaperFormula(Images, Texts, N, D, LogitScale, LogitBias);
        output.WriteLine($"package: loss {printed["loss"]:R}, dL/db {printed["dloss/dbias"]:R}; formula: loss {loss:R}, dL/db {dBias:R}");
        // float64, the same sums in a different order: a few ulps.
        var tolerance = new Tolerance(1e-14, 1e-12);
        AssertClose.Scalar(printed["loss"], loss, tolerance, "loss");
        AssertClose.Scalar(printed["dloss/dbias"], dBias, tolerance, "dL/db");
    }

    /// <summary>
    /// The paper's loss written out here, not taken from the library: x = a/|a|, y = c/|c|, t = exp(t'),
    /// l_ij = t x_i.y_j + b, z_ij = +1 on the diagonal else -1, L = -(1/n) sum_ij log sigmoid(z_ij l_ij);
    /// with g_ij = dL/dl_ij = -(1/n) z_ij sigmoid(-z_ij l_ij): dL/db = sum_ij g_ij, dL/dt' = sum_ij g_ij t x_i.y_j.
    /// </summary>
    private static (double Loss, double DLogitScale, double DBias) PaperFormula(double[] images, double[] texts, int n, int d, double logitScale, double logitBias)
    {
        double[] Row(double[] m, int i)
        {
            var r = m.Skip(i * d).Take(d).ToArray();
            double norm = Math.Sqrt(r.Sum(v => v * v));
            return r.Select(v => v / norm).ToArray();
        }
        double t = Math.Exp(logitScale);
        double loss = 0, dScale = 0, dBias = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double cosine = Row(images, i).Zip(Row(texts, j), (a, c) => a * c).Sum();
                double logit = t * cosine + logitBias;
                double z = i == j ? 1 : -1;
                double x = z * logit;
                double logSigmoid = -(Math.Max(-x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(x))));   // -softplus(-x), stable
                loss -= logSigmoid / n;
                double g = -z / (1 + Math.Exp(x)) / n;
                dBias += g;
                dScale += g * t * cosine;
            }
        return (loss, dScale, dBias);
    }

    private static string Literal(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static string Literals(double[] values) => string.Join(", ", values.Select(Literal));
}
