using System.Reflection;
using SigLip.Reference.Numerics.Kernels;
using SigLip.SpecTests.Layers;
using SigLip.SpecTests.Loss;
using SigLip.SpecTests.Models;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Docs;

/// <summary>Runs alone (CPU-heavy). Its naive mode is a scope of its own flow (KernelSettings.UseMode), invisible to other tests.</summary>
[CollectionDefinition(nameof(NaiveLoopsGradientTests), DisableParallelization = true)]
public sealed class NaiveLoopsCollection;

/// <summary>
/// docs/derivations.md quotes the readable loops of the layers and losses, but by default those
/// dispatch to the fast kernels (KernelSettings.UseFastPath), so the ordinary gradient tests check the
/// fast kernels. These run the same finite-difference tests with the fast path off
/// (KernelMode.Naive), so the quoted lines themselves are the ones proven.
/// </summary>
[Collection(nameof(NaiveLoopsGradientTests))]
public sealed class NaiveLoopsGradientTests(ITestOutputHelper output)
{
    public static TheoryData<string, string, string?> GradientTests => new()
    {
        { nameof(LayerGradientTests), nameof(LayerGradientTests.LinearBackwardMatchesFiniteDifferences), null },
        { nameof(LayerGradientTests), nameof(LayerGradientTests.LayerNormBackwardMatchesFiniteDifferences), null },
        { nameof(LayerGradientTests), nameof(LayerGradientTests.GeluBackwardMatchesFiniteDifferences), null },
        { nameof(LayerGradientTests), nameof(LayerGradientTests.AttentionCoreBackwardMatchesFiniteDifferences), null },
        { nameof(LayerGradientTests), nameof(LayerGradientTests.AttentionForwardMatchesAPerHeadComputation), null },
        { nameof(LayerGradientTests), nameof(LayerGradientTests.SelfAttentionBackwardMatchesFiniteDifferences), null },
        { nameof(LayerGradientTests), nameof(LayerGradientTests.MlpBackwardMatchesFiniteDifferences), null },
        { nameof(LayerGradientTests), nameof(LayerGradientTests.PatchEmbeddingBackwardMatchesFiniteDifferences), null },
        { nameof(LayerGradientTests), nameof(LayerGradientTests.EmbeddingsAndPoolingBackwardMatchFiniteDifferences), null },
        { nameof(LayerGradientTests), nameof(LayerGradientTests.EncoderLayerBackwardMatchesFiniteDifferences), null },
        { nameof(LayerGradientTests), nameof(LayerGradientTests.MapHeadBackwardMatchesFiniteDifferences), null },
        { nameof(LossGradientTests), nameof(LossGradientTests.GradientsMatchFiniteDifferences), "sigmoid" },
        { nameof(LossGradientTests), nameof(LossGradientTests.GradientsMatchFiniteDifferences), "chunked" },
        { nameof(LossGradientTests), nameof(LossGradientTests.GradientsMatchFiniteDifferences), "softmax" },
        { nameof(SiglipModelGradientTests), nameof(SiglipModelGradientTests.TowersAloneBackpropagateBothOutputs), null },
    };

    [Theory]
    [MemberData(nameof(GradientTests))]
    public void Gradient_test_passes_on_the_quoted_naive_loops(string testClass, string testMethod, string? argument)
    {
        var type = typeof(NaiveLoopsGradientTests).Assembly.GetTypes().Single(t => t.Name == testClass);
        var instance = type.GetConstructor([typeof(ITestOutputHelper)]) is { } withOutput
            ? withOutput.Invoke([output])
            : Activator.CreateInstance(type)!;
        var method = type.GetMethod(testMethod) ?? throw new InvalidOperationException($"{testClass}.{testMethod} does not exist.");
        // The naive loops for this test's flow only (its Parallel.For workers included), not for the tests beside it.
        using var naive = KernelSettings.UseMode(KernelMode.Naive);
        try
        {
            Assert.False(KernelSettings.UseFastPath);
            method.Invoke(instance, argument is null ? [] : [argument]);
        }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            throw ex.InnerException;
        }
    }
}
