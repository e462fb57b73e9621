using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;

namespace SigLip.Reference.IO.Golden;

/// <summary>One tensor of a compare: its comparison, what it is, and for a shape mismatch the explanation.</summary>
/// <param name="Comparison">Errors, worst element and tolerance (a shape mismatch fails, with <see cref="Comparison.Problem"/> set).</param>
/// <param name="Description">What the tensor is (from <see cref="Intermediates"/>).</param>
/// <param name="Note">A remark that does not change the verdict (e.g. an extra dimension of size 1 ignored).</param>
public sealed record ComparedTensor(Comparison Comparison, string Description, string? Note = null)
{
    /// <summary>The tensor's name.</summary>
    public string Name => Comparison.Name;
    /// <summary>Whether it is within its tolerance.</summary>
    public bool Passed => Comparison.Passed;
}

/// <summary>The result of <see cref="GoldenComparer.Compare"/>: every tensor in forward order, the first divergence, what was missing.</summary>
public sealed record CompareReport(
    string CaseDir,
    string ActualFile,
    string DType,
    GoldenTolerance Tolerance,
    IReadOnlyList<ComparedTensor> Tensors,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Extra)
{
    /// <summary>At least one tensor was compared and every compared tensor passed (missing tensors do not fail).</summary>
    public bool Passed => Tensors.Count > 0 && Tensors.All(t => t.Passed);

    /// <summary>The first tensor in forward order that is outside its tolerance: where the port goes wrong (null when all pass).</summary>
    public ComparedTensor? FirstDivergence => Tensors.FirstOrDefault(t => !t.Passed);

    /// <summary>One line naming the first divergence and its worst element, or saying all passed.</summary>
    public string Summary()
    {
        if (Tensors.Count == 0) return $"nothing compared: none of the case's tensors is in {ActualFile} (missing {Missing.Count})";
        if (FirstDivergence is not { } f)
            return $"all {Tensors.Count} compared tensors pass in {DType}" + (Missing.Count > 0 ? $" ({Missing.Count} not in the dump)" : "");
        return $"first divergence: {f.Name} ({f.Description}): {f.Comparison}";
    }

    /// <summary>The report as indented JSON (what <c>siglip golden compare --report</c> writes).</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            static void Number(Utf8JsonWriter w, string name, double v) => ComparisonJson.Number(w, name, v);
            w.WriteStartObject();
            w.WriteString("case", CaseDir);
            w.WriteString("actual", ActualFile);
            w.WriteString("dtype", DType);
            w.WriteStartObject("tolerance");
            Number(w, "atol", Tolerance.Atol);
            Number(w, "rtol", Tolerance.Rtol);
            w.WriteBoolean("atol_relative_to_max_abs", Tolerance.AtolRelativeToMaxAbs);
            w.WriteString("why", Tolerance.Why);
            w.WriteEndObject();
            w.WriteBoolean("passed", Passed);
            if (FirstDivergence is { } f) w.WriteString("first_divergence", f.Name); else w.WriteNull("first_divergence");
            w.WriteString("summary", Summary());
            w.WriteStartArray("tensors");
            foreach (var t in Tensors)
            {
                w.WriteStartObject();
                ComparisonJson.Fields(w, t.Comparison, w => w.WriteString("description", t.Description));
                if (t.Note is not null) w.WriteString("note", t.Note);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("missing");
            foreach (var m in Missing) w.WriteStringValue(m);
            w.WriteEndArray();
            w.WriteStartArray("extra");
            foreach (var m in Extra) w.WriteStringValue(m);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }
}

/// <summary>
/// Compares the tensors a port dumped (any framework, a safetensors file under the case's names) with
/// a golden case, in forward order (<see cref="Intermediates"/>), against the tolerance of the dtype
/// the port computed in; names the first tensor that diverges.
/// </summary>
public static class GoldenComparer
{
    /// <summary>The dtypes compare accepts.</summary>
    public static IReadOnlyList<string> DTypeNames { get; } = ["float64", "float32", "bfloat16", "float16"];

    /// <summary>float16 (IEEE half: 11 significant bits, u = 2^-11): the bfloat16 count with half's unit roundoff.</summary>
    public const double Float16RoundingBound = (2 * 3 + 2) / 2048.0;

    /// <summary>
    /// The tolerance per dtype: float64, float32 and bfloat16 are golden verify's rows
    /// (<see cref="GoldenTolerance.Defaults"/>, reasoning in their "why"); float16 is derived the same way.
    /// </summary>
    public static IReadOnlyDictionary<string, GoldenTolerance> Tolerances { get; } = new Dictionary<string, GoldenTolerance>(GoldenTolerance.Defaults)
    {
        ["float16"] = new(Float16RoundingBound, Float16RoundingBound, true,
            "Mixed precision as for bfloat16, with IEEE half's 11 significant bits: unit roundoff u = 2^-11 = 4.9e-4. A tensor L layers deep carries at most 2L + 2 " +
            "successive relative roundings of its matmul operands; for L = 3 that is 8 u = 2^-8 = 3.9e-3 of the tensor's scale, as atol (times the tensor's largest |e|) and rtol. " +
            "float16's small range (max 65504) is not modelled: an overflow shows as inf and fails."),
    };

    /// <summary>The tolerance row for a dtype name; an unknown name throws a one-line message listing the accepted ones.</summary>
    public static GoldenTolerance ToleranceFor(string dtype) =>
        Tolerances.TryGetValue(dtype.Trim().ToLowerInvariant(), out var t)
            ? t
            : throw new ArgumentException($"--dtype '{dtype}' is not one of {string.Join(", ", DTypeNames)}: name the dtype your framework computed in.");

    /// <summary>
    /// Compares <paramref name="actualFile"/> with the case in <paramref name="caseDir"/>. Tensors of the
    /// case absent from the file are listed in <see cref="CompareReport.Missing"/> (not a failure); tensors
    /// of the file the case does not hold in <see cref="CompareReport.Extra"/>.
    /// </summary>
    /// <param name="overrideTolerance">Tests only: one fixed tolerance for every tensor instead of the dtype's row.</param>
    public static CompareReport Compare(string caseDir, string actualFile, string dtype, Tolerance? overrideTolerance = null)
    {
        if (!Directory.Exists(caseDir)) throw new DirectoryNotFoundException($"--case {caseDir}: no such folder; give a golden case folder (one holding {GoldenFormat.ExpectedFile}).");
        if (!GoldenCase.IsCase(caseDir)) throw new FileNotFoundException($"--case {caseDir}: no {GoldenFormat.ExpectedFile} there; give a case folder written by 'siglip golden generate'.");
        if (!File.Exists(actualFile)) throw new FileNotFoundException($"--actual {actualFile}: no such file; give the safetensors file your framework dumped its tensors into.");
        var row = ToleranceFor(dtype);
        var golden = GoldenCase.Load(caseDir);
        using var actual = SafeTensorsFile.Open(actualFile);

        var config = golden.Config;
        int batch = golden.Batch?.Size ?? 1, len = golden.Batch?.InputIds.Length ?? 1;
        static bool IsGradient(GoldenExpected e) => e.Target.StartsWith(OutputNames.GradPrefix, StringComparison.Ordinal);
        double gradScale = golden.Expected.Where(IsGradient).Select(e => GoldenTolerance.MaxAbs(e.Values)).DefaultIfEmpty(0).Max();
        double outputScale = golden.Expected.Where(e => !IsGradient(e)).Select(e => GoldenTolerance.MaxAbs(e.Values)).DefaultIfEmpty(0).Max();

        var tensors = new List<ComparedTensor>();
        var missing = new List<string>();
        foreach (var e in Intermediates.Sort(golden.Expected, e => e.Name, config, batch, len))
        {
            string description = Intermediates.Describe(e.Target, config);
            // A dump holds whole gradients; a sampled one is compared on its sample.
            string name = e.SampleIndices is null ? e.Name : e.Target;
            if (!actual.Contains(name)) { missing.Add(name); continue; }
            var info = actual.Info(name);
            if (!info.DType.IsFloat())
            {
                tensors.Add(new(Failed(name, row, $"is {info.DType} in the dump; compare reads floating-point tensors (F64, F32, F16, BF16)"), description));
                continue;
            }
            var got = actual.ReadTensor(name);
            var tolerance = overrideTolerance ?? row.For(e.Values, IsGradient(e) ? gradScale : outputScale);
            tensors.Add(CompareOne(name, description, got, e, tolerance));
        }
        var known = new HashSet<string>(golden.Expected.Select(e => e.SampleIndices is null ? e.Name : e.Target), StringComparer.Ordinal) { "pixel_values", "input_ids" };
        var extra = actual.Entries.Select(x => x.Name).Where(n => !known.Contains(n)).Order(StringComparer.Ordinal).ToList();
        return new CompareReport(caseDir, actualFile, dtype.Trim().ToLowerInvariant(), row, tensors, missing, extra);
    }

    private static Comparison Failed(string name, GoldenTolerance row, string problem) =>
        new(name, false, double.NaN, double.NaN, [], double.NaN, double.NaN, new Tolerance(row.Atol, row.Rtol), problem);

    private static ComparedTensor CompareOne(string name, string description, Tensor got, GoldenExpected e, Tolerance tolerance)
    {
        var expected = e.Values;
        if (e.SampleIndices is not null)
        {
            if (got.Size < e.SampleIndices.Max() + 1)
                return new(Comparison.Of(name, got, expected, tolerance) with { Problem = $"has {got.Size} elements but the case samples indices up to {e.SampleIndices.Max()}" , Passed = false }, description);
            var sampled = new Tensor([e.SampleIndices.Length], e.SampleIndices.Select(i => got.Data[i]).ToArray());
            var c = Comparison.Of(name, sampled, expected, tolerance);
            return new(c.WorstIndex.Count == 1 ? c with { WorstIndex = Tensor.Unravel(got.Shape, e.SampleIndices[c.WorstIndex[0]]) } : c, description,
                $"checked on the case's {e.SampleIndices.Length} sampled elements");
        }
        if (got.Shape.SequenceEqual(expected.Shape)) return new(Comparison.Of(name, got, expected, tolerance), description);
        // Same elements in the same order, only dimensions of size 1 differ: compare as the case's shape.
        if (got.Shape.Where(d => d != 1).SequenceEqual(expected.Shape.Where(d => d != 1)))
            return new(Comparison.Of(name, got.Reshape([.. expected.Shape]), expected, tolerance), description,
                $"shape {Tensor.ShapeToString(got.Shape)} read as {Tensor.ShapeToString(expected.Shape)} (they differ only in dimensions of size 1)");
        string explanation = ShapeExplainer.Explain(got, expected, tolerance);
        return new(new Comparison(name, false, double.NaN, double.NaN, [], double.NaN, double.NaN, tolerance, explanation), description);
    }
}

/// <summary>Says why a dumped tensor's shape differs from the case's, trying the layouts ports commonly use.</summary>
public static class ShapeExplainer
{
    /// <summary>
    /// One line: both shapes, the layout the actual shape looks like (channels last, a transposed weight,
    /// heads split out, sequence first), the fix, and whether the values agree once rearranged.
    /// </summary>
    public static string Explain(Tensor actual, Tensor expected, Tolerance tolerance)
    {
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(expected);
        var a = actual.Shape;
        var e = expected.Shape;
        string head = $"shape {Tensor.ShapeToString(a)} but the case has {Tensor.ShapeToString(e)}";
        if (actual.Size != expected.Size)
            return $"{head}: {actual.Size} elements against {expected.Size}, so not a layout difference: a different batch, length, width or a missing/extra token (e.g. a class token; SigLIP has none)";
        foreach (var (perm, what, fix) in Candidates(a, e))
        {
            var rearranged = Permute(actual, perm);
            if (!rearranged.Shape.SequenceEqual(e)) continue;
            var c = Comparison.Of("", rearranged, expected, tolerance);
            return $"{head}: looks like {what}; {fix}. " + (c.Passed
                ? "Rearranged so, the values pass: fix the layout of the dump."
                : $"Rearranged so, the values still differ (max abs {c.MaxAbsError:E3} at {Tensor.ShapeToString(c.WorstIndex)}).");
        }
        return $"{head}: same number of elements but no common layout matches (tried channels last, transposed, heads split, sequence first); dump it as {Tensor.ShapeToString(e)} in row-major order";
    }

    // Each candidate: how to bring the actual tensor into the case's order (a permutation of a reshape of it).
    private static IEnumerable<(Func<Tensor, Tensor> Perm, string What, string Fix)> Candidates(IReadOnlyList<int> a, IReadOnlyList<int> e)
    {
        if (a.Count == 4 && e.Count == 4 && a[0] == e[0] && a[3] == e[1] && a[1] == e[2] && a[2] == e[3])
            yield return (t => Transpose(t, [0, 3, 1, 2]), "channels last (NHWC) where the case is channels first (NCHW)", "permute it with (0, 3, 1, 2)");
        if (a.Count == 2 && e.Count == 2 && a[0] == e[1] && a[1] == e[0])
            yield return (t => Transpose(t, [1, 0]), "a transposed matrix ([in, out], as JAX/Flax kernels and x @ W store it, where HF/PyTorch Linear stores [out, in])", "transpose it");
        if (a.Count == 3 && e.Count == 3 && a[0] == e[1] && a[1] == e[0] && a[2] == e[2])
            yield return (t => Transpose(t, [1, 0, 2]), "sequence first ([tokens, batch, width], nn.MultiheadAttention without batch_first) where the case is batch first", "transpose dimensions 0 and 1");
        if (a.Count == 4 && e.Count == 3 && a[0] == e[0] && a[1] * a[3] == e[2] && a[2] == e[1])
            yield return (t => Transpose(t, [0, 2, 1, 3]).Reshape(e[0], e[1], e[2]), "heads split out as [batch, heads, tokens, head_dim]", "merge them: transpose(1, 2) then reshape to [batch, tokens, heads * head_dim]");
        if (a.Count == 4 && e.Count == 3 && a[0] == e[0] && a[1] == e[1] && a[2] * a[3] == e[2])
            yield return (t => t.Reshape(e[0], e[1], e[2]), "heads split out as [batch, tokens, heads, head_dim]", "reshape to [batch, tokens, heads * head_dim]");
        if (a.Count == 3 && e.Count == 2 && a[0] * a[1] == e[0] && a[2] == e[1])
            yield return (t => Transpose(t, [1, 0, 2]).Reshape(e[0], e[1]), "heads stacked differently (a projection weight as [head_dim, heads, width] or similar)", "check the order of the heads in the rows");
        if (a.Count == 3 && e.Count == 2 && a[0] * a[1] == e[1] && a[2] == e[0])
            yield return (t => Transpose(t.Reshape(e[1], e[0]), [1, 0]), "a weight in [width, heads, head_dim] layout (Flax DenseGeneral) where the case has [out, in]", "reshape to [width, heads * head_dim] and transpose");
    }

    private static Tensor Permute(Tensor t, Func<Tensor, Tensor> f) => f(t);

    /// <summary>A copy of <paramref name="t"/> with its dimensions permuted (output dimension i is input dimension perm[i]).</summary>
    public static Tensor Transpose(Tensor t, int[] perm)
    {
        ArgumentNullException.ThrowIfNull(t);
        int rank = t.Rank;
        var shape = perm.Select(p => t.Shape[p]).ToArray();
        var inStrides = new long[rank];
        long s = 1;
        for (int i = rank - 1; i >= 0; i--) { inStrides[i] = s; s *= t.Shape[i]; }
        var result = new double[t.Size];
        var index = new int[rank];
        for (long flat = 0; flat < result.Length; flat++)
        {
            long src = 0;
            for (int i = 0; i < rank; i++) src += index[i] * inStrides[perm[i]];
            result[flat] = t.Data[src];
            for (int i = rank - 1; i >= 0; i--)
            {
                if (++index[i] < shape[i]) break;
                index[i] = 0;
            }
        }
        return new Tensor(shape, result);
    }
}
