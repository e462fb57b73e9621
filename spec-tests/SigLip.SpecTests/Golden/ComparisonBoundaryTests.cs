using SigLip.Reference;
using SigLip.Reference.IO;
using SigLip.Reference.IO.Golden;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Golden;

/// <summary>
/// The comparison at its boundary (issue 16). Two loosenings once passed the whole suite: the allowance
/// taken as rtol |actual| instead of rtol |expected|, and atol multiplied by 10; each fails a test here.
/// Every verdict below is a literal worked out by hand, never computed by the code under test.
/// </summary>
public sealed class ComparisonBoundaryTests
{
    private static bool Verdict(double actual, double expected, Tolerance t) =>
        Comparison.Of("x", new Tensor([1], [actual]), new Tensor([1], [expected]), t).Passed;

    // atol 0, rtol 0.1, expected 1: the allowance is exactly 0.1.
    private static readonly Tolerance Relative = new(0, 0.1);

    [Fact]
    public void Actual_1_099_passes_against_1_with_rtol_0_1() => Assert.True(Verdict(1.099, 1, Relative));

    [Fact]
    public void Actual_1_105_fails_against_1_with_rtol_0_1()
    {
        // Under the loosening rtol |actual|, the allowance would be 0.1105 >= 0.105 and this would pass.
        Assert.False(Verdict(1.105, 1, Relative));
        Assert.False(Relative.Accepts(1.105, 1));
    }

    [Fact]
    public void Below_the_expected_value_the_allowance_is_still_rtol_times_expected()
    {
        Assert.True(Verdict(0.901, 1, Relative));
        Assert.False(Verdict(0.895, 1, Relative));
    }

    [Fact]
    public void An_error_of_twice_atol_fails_and_half_of_it_passes()
    {
        var absolute = new Tolerance(1e-3, 0);
        Assert.False(Verdict(0.502, 0.5, absolute)); // error 2e-3 = 2 atol: fails (it would pass with atol x 10)
        Assert.True(Verdict(0.5005, 0.5, absolute));
        Assert.False(absolute.Accepts(0.502, 0.5));
    }

    [Fact]
    public void The_float32_row_scales_atol_by_the_tensors_largest_value_exactly()
    {
        // float32: atol 1e-5 times max |e| = 2, so 2e-5; an error of twice that (4e-5) on an element whose expected value is 0 fails.
        var expected = new Tensor([2], [2, 0]);
        var t = GoldenTolerance.Defaults["float32"].For(expected);
        Assert.Equal(2e-5, t.Atol);
        Assert.Equal(1e-4, t.Rtol);
        Assert.False(Comparison.Of("x", new Tensor([2], [2, 4e-5]), expected, t).Passed);
        Assert.True(Comparison.Of("x", new Tensor([2], [2, 1e-5]), expected, t).Passed);
    }

    [SkippableFact]
    public void The_comparer_applies_the_boundary_end_to_end_and_names_the_failing_tensor()
    {
        Skip.IfNot(Directory.Exists(RepoPaths.Fixture("hf-siglip-tiny")), "no fixture");
        using var tmp = new TempFolder();
        var fixture = RepoPaths.Fixture("hf-siglip-tiny");
        using var f = SafeTensorsFile.Open(Path.Combine(fixture, "expected.safetensors"));
        var batch = new SiglipBatch(f.ReadTensor("pixel_values"), f.ReadTokenIds("input_ids"));
        var caseDir = tmp.File("case");
        var tensors = CheckpointCase.Write(fixture, batch, caseDir, gradients: false, covers: "test");

        CompareReport Run(double factor)
        {
            var dump = new List<SafeTensorEntry>();
            foreach (var (name, value) in tensors)
            {
                var copy = value.Clone();
                if (name == "text_pooler_output") copy.Data[7] *= factor; // the element's expected value times factor
                dump.Add(SafeTensorEntry.Float(name, copy));
            }
            var path = tmp.File($"dump-{factor}.safetensors");
            SafeTensorsWriter.Write(path, dump);
            return GoldenComparer.Compare(caseDir, path, "float64", overrideTolerance: Relative);
        }
        Assert.True(Run(1.099).Passed);
        var failing = Run(1.105);
        Assert.False(failing.Passed);
        Assert.Equal("text_pooler_output", failing.FirstDivergence!.Name);
        Assert.Equal([0, 7], failing.FirstDivergence.Comparison.WorstIndex);
    }

    [Fact]
    public void Compare_tolerances_are_the_verify_rows_and_float16_is_8_half_ulps()
    {
        foreach (var name in new[] { "float64", "float32", "bfloat16" })
            Assert.Same(GoldenTolerance.Defaults[name], GoldenComparer.Tolerances[name]);
        Assert.Equal(8.0 / 2048, GoldenComparer.Tolerances["float16"].Rtol);
        Assert.Equal(8.0 / 2048, GoldenComparer.Tolerances["float16"].Atol);
        Assert.True(GoldenComparer.Tolerances["float16"].AtolRelativeToMaxAbs);
        var ex = Assert.Throws<ArgumentException>(() => GoldenComparer.ToleranceFor("int8"));
        Assert.Contains("float16", ex.Message, StringComparison.Ordinal);
    }
}
