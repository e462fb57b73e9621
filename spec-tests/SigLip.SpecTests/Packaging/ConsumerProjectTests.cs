using System.Globalization;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;
using static SigLip.SpecTests.Packaging.PackagingFixture;

namespace SigLip.SpecTests.Packaging;

/// <summary>
/// A fresh console project outside the repository references the packed SigLip.Reference from the
/// local folder (nothing of the repository's build applies to it) and computes the sigmoid loss; the
/// test computes the same loss from the paper's formula on its own and compares.
/// </summary>
[Collection(PackagingCollection.Name)]
public sealed class ConsumerProjectTests(PackagingFixture packages, ITestOutputHelper output)
{
    // Two batches of n = 3 unnormalised embeddings, d = 4, row-major; t' and b away from the paper's start.
    private static readonly double[] Images = [0.8, -0.3, 1.7, 0.05, -1.2, 0.4, 0.9, 2.3, 0.33, 1.1, -0.75, -0.6];
    private static readonly double[] Texts = [1.0, -0.2, 1.5, 0.4, -0.9, 0.7, 0.2, 1.8, -0.1, 1.3, -1.1, 0.25];
    private const int N = 3, D = 4;
    private const double LogitScale = 1.3, LogitBias = -2.1;

    [Fact]
    public void A_console_project_referencing_the_local_package_computes_the_papers_sigmoid_loss()
    {
        var printed = BuildAndRun("consumer", LibraryId, """
            LossResult result = PairwiseLoss.Compute(images, texts, LOGIT_SCALE, LOGIT_BIAS, new LossOptions());
            """);
        AgreesWithThePaper(printed!);
    }

    /// <summary>
    /// The same through the backend package's "torch" backend in float64: the package's native
    /// dependencies restore, and its buildTransitive ELF patch lets libtorch load on this host.
    /// </summary>
    [Fact]
    public void A_console_project_referencing_the_backend_package_computes_the_loss_on_libtorch()
    {
        bool linuxX64 = OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64;
        var printed = BuildAndRun("consumer-torch", BackendId, """
            var registry = new BackendRegistry();
            foreach (var provider in SigLip.Backends.TorchSharp.TorchBackends.Providers()) registry.Register(provider);
            var probe = registry.Find("torch").Probe();
            Console.WriteLine("torch " + (probe.CanStart ? "yes" : "no") + ": " + probe.Reason);
            if (!probe.CanStart) return 3;
            using IBackend torch = registry.Start("torch", new BackendOptions(DType: "float64"));
            LossResult result = torch.Loss(images, texts, LOGIT_SCALE, LOGIT_BIAS, new LossOptions());
            """, allowExitCode3: !linuxX64);
        if (printed is null)
        {
            output.WriteLine("not Linux x64: the package's libtorch is Linux x64 only, so only the build is checked here");
            return;
        }
        AgreesWithThePaper(printed);
    }

    /// <summary>
    /// Creates a console project under the fixture's folder that references <paramref name="packageId"/>
    /// from the local feed, runs <paramref name="body"/> (which sets <c>result</c>) and returns the
    /// printed numbers; null when the program exited with 3 and <paramref name="allowExitCode3"/>.
    /// </summary>
    private Dictionary<string, double>? BuildAndRun(string name, string packageId, string body, bool allowExitCode3 = false)
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
        File.WriteAllText(Path.Combine(project, name + ".csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="{packageId}" Version="[{version}]" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(project, "Program.cs"), $$"""
            using System.Globalization;
            using SigLip.Reference;
            using SigLip.Reference.Backends;
            using SigLip.Reference.Loss;

            var images = new Tensor([{{N}}, {{D}}], [{{Literals(Images)}}]);
            var texts = new Tensor([{{N}}, {{D}}], [{{Literals(Texts)}}]);
            {{body.Replace("LOGIT_SCALE", Literal(LogitScale)).Replace("LOGIT_BIAS", Literal(LogitBias))}}
            Console.WriteLine("loss " + result.Loss.ToString("R", CultureInfo.InvariantCulture));
            Console.WriteLine("dloss/dbias " + result.GradLogitBias.ToString("R", CultureInfo.InvariantCulture));
            return 0;
            """);

        var run = Run("dotnet", ["run", "-c", "Release", "--disable-build-servers"], project, TimeSpan.FromMinutes(10));
        packages.Timings.Add(($"{name}: dotnet run", run.Elapsed));
        output.WriteLine(run.Describe());
        if (allowExitCode3 && run.ExitCode == 3) return null;
        Assert.True(run.ExitCode == 0, $"the console project referencing {packageId} did not build or run.\n{run.Describe()}");
        var printed = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith("loss ", StringComparison.Ordinal) || l.StartsWith("dloss/dbias ", StringComparison.Ordinal))
            .Select(l => l.Split(' '))
            .ToDictionary(f => f[0], f => double.Parse(f[1], CultureInfo.InvariantCulture));
        Assert.True(printed.ContainsKey("loss") && printed.ContainsKey("dloss/dbias"), $"unexpected output:\n{run.Stdout}");
        return printed;
    }

    private void AgreesWithThePaper(Dictionary<string, double> printed)
    {
        var (loss, dBias) = PaperFormula();
        output.WriteLine($"package: loss {printed["loss"]:R}, dL/db {printed["dloss/dbias"]:R}; formula: loss {loss:R}, dL/db {dBias:R}");
        // float64, the same sums in a different order: a few ulps.
        var tolerance = new Tolerance(1e-14, 1e-12);
        AssertClose.Scalar(printed["loss"], loss, tolerance, "loss");
        AssertClose.Scalar(printed["dloss/dbias"], dBias, tolerance, "dL/db");
    }

    /// <summary>
    /// The paper's loss written out here, not taken from the library: x = a/|a|, y = c/|c|,
    /// l_ij = exp(t') x_i.y_j + b, z_ij = +1 on the diagonal else -1,
    /// L = -(1/n) sum_ij log sigmoid(z_ij l_ij), and dL/db = -(1/n) sum_ij z_ij sigmoid(-z_ij l_ij).
    /// </summary>
    private static (double Loss, double DBias) PaperFormula()
    {
        double[] Row(double[] m, int i)
        {
            var r = m.Skip(i * D).Take(D).ToArray();
            double norm = Math.Sqrt(r.Sum(v => v * v));
            return r.Select(v => v / norm).ToArray();
        }
        double t = Math.Exp(LogitScale);
        double loss = 0, dBias = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
            {
                double logit = t * Row(Images, i).Zip(Row(Texts, j), (a, c) => a * c).Sum() + LogitBias;
                double z = i == j ? 1 : -1;
                double x = z * logit;
                double logSigmoid = -(Math.Max(-x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(x))));   // -softplus(-x), stable
                loss -= logSigmoid / N;
                dBias -= z / (1 + Math.Exp(x)) / N;
            }
        return (loss, dBias);
    }

    private static string Literal(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static string Literals(double[] values) => string.Join(", ", values.Select(Literal));
}
