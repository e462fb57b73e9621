using System.Reflection;
using SigLip.Reference.Models;
using SigLip.Reference.Training;
using Xunit;

namespace SigLip.SpecTests.Models;

/// <summary>
/// The F# copy-and-update methods (<c>.With(...)</c>) list every field of their record by hand. A field
/// added to the record later and forgotten there would silently be unreachable from F#: these tests
/// require one parameter per settable property, and that each parameter replaces exactly its property.
/// </summary>
public class WithCoverageTests
{
    private static readonly SiglipConfig Tiny = BuiltInRecipe.Config();

    // Source and target differ in as many fields as possible; each parameter is tried with the target's value.
    public static TheoryData<string> Records() => new() { nameof(VisionConfig), nameof(TextConfig), nameof(SiglipConfig), nameof(TrainingSettings) };

    private static (object Source, object Target, MethodInfo With) Case(string record) => record switch
    {
        nameof(VisionConfig) => (Tiny.Vision, SiglipConfig.Base16_224.Vision with { HiddenAct = "gelu", LayerNormEps = 1e-5, NumChannels = 1 }, WithFor(typeof(ConfigExtensions), typeof(VisionConfig))),
        nameof(TextConfig) => (Tiny.Text, SiglipConfig.Base16_224.Text with { ProjectionSize = 17, HiddenAct = "gelu", LayerNormEps = 1e-5, PadTokenId = 5, BosTokenId = 6, EosTokenId = 7 },
            WithFor(typeof(ConfigExtensions), typeof(TextConfig))),
        nameof(SiglipConfig) => (Tiny, SiglipConfig.Base16_224, WithFor(typeof(ConfigExtensions), typeof(SiglipConfig))),
        nameof(TrainingSettings) => (new TrainingSettings(), new TrainingSettings(Steps: 7, BatchSize: 4, LearningRate: 0.5, WarmupSteps: 2, MinLearningRate: 1e-6,
            Optimizer: new Reference.Backends.AdamWSettings(WeightDecay: 0.5), Loss: Reference.Backends.LossOptions.Default with { Chunks = 4 }, Seed: 11,
            CheckpointEvery: 3, Locked: Reference.Backends.LockedTowers.Image, InitialLogitScale: 1.5, InitialLogitBias: -3, KeepCheckpoints: 9),
            WithFor(typeof(TrainingSettingsExtensions), typeof(TrainingSettings))),
        _ => throw new ArgumentOutOfRangeException(nameof(record), record, null),
    };

    private static MethodInfo WithFor(Type extensions, Type record) =>
        extensions.GetMethods(BindingFlags.Public | BindingFlags.Static).Single(m => m.Name == "With" && m.GetParameters()[0].ParameterType == record);

    private static PropertyInfo[] Settable(Type record) =>
        record.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is { IsPublic: true }).ToArray();

    private static string CamelCase(string name) => char.ToLowerInvariant(name[0]) + name[1..];

    [Theory]
    [MemberData(nameof(Records))]
    public void With_has_a_parameter_for_every_settable_property(string record)
    {
        var (source, _, with) = Case(record);
        var parameters = with.GetParameters().Skip(1).Select(p => p.Name).ToHashSet();
        var missing = Settable(source.GetType()).Select(p => CamelCase(p.Name)).Where(n => !parameters.Contains(n)).ToArray();
        Assert.True(missing.Length == 0, $"{with.DeclaringType!.Name}.With({record}) has no parameter for: {string.Join(", ", missing)}");
    }

    [Theory]
    [MemberData(nameof(Records))]
    public void Each_parameter_replaces_its_property_and_keeps_the_others(string record)
    {
        var (source, target, with) = Case(record);
        var parameters = with.GetParameters();
        var properties = Settable(source.GetType());
        foreach (var property in properties)
        {
            var args = new object?[parameters.Length];
            args[0] = source;
            int index = Array.FindIndex(parameters, p => p.Name == CamelCase(property.Name));
            Assert.True(index > 0, $"no parameter for {property.Name}");
            object? wanted = property.GetValue(target);
            Assert.True(wanted is not null, $"{record}: the target's {property.Name} is null, so this case cannot show that With sets it");
            Assert.False(Equals(wanted, property.GetValue(source)), $"{record}: source and target share {property.Name} = {wanted}, so this case cannot show that With sets it");
            args[index] = wanted;
            object result = with.Invoke(null, args)!;
            foreach (var other in properties)
                Assert.True(Equals(other.GetValue(result), other == property ? wanted : other.GetValue(source)),
                    $"{record}.With({CamelCase(property.Name)}: {wanted}) gave {other.Name} = {other.GetValue(result)}");
        }
    }
}
