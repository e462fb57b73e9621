using System.Diagnostics;
using System.Text.Encodings.Web;
using System.Text.Json;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using SigLip.Reference.Numerics;

namespace SigLip.Reference.IO.Golden;

/// <summary>The verdict on one golden case.</summary>
public enum GoldenCaseStatus
{
    /// <summary>Every expected tensor is within its tolerance.</summary>
    Passed,
    /// <summary>The backend ran, and some tensor is outside its tolerance (or missing from its results).</summary>
    Failed,
    /// <summary>A file of the case is damaged (sha256 mismatch, truncated, malformed): not a numerical verdict.</summary>
    Corrupted,
    /// <summary>The backend threw while running the case.</summary>
    Error,
}

/// <summary>One case's verdict, with every tensor's comparison.</summary>
/// <param name="Name">The case's name.</param>
/// <param name="Kind">"model" or "loss".</param>
/// <param name="Status">The verdict.</param>
/// <param name="Covers">What the case is there to catch.</param>
/// <param name="Tensors">Every compared tensor with its errors and worst element.</param>
/// <param name="Problem">What went wrong when the case could not be judged numerically (corrupted file, backend error); else null.</param>
/// <param name="Seconds">How long the backend took.</param>
/// <param name="NotProduced">Intermediates the case holds (hidden states, MAP head attention: <see cref="Intermediates"/>) that the backend does not return; listed, not compared, not a failure.</param>
public sealed record GoldenCaseResult(
    string Name,
    string Kind,
    GoldenCaseStatus Status,
    string? Covers,
    IReadOnlyList<Comparison> Tensors,
    string? Problem,
    double Seconds,
    IReadOnlyList<string>? NotProduced = null)
{
    /// <summary>Whether the case passed.</summary>
    public bool Passed => Status == GoldenCaseStatus.Passed;

    /// <summary>The first tensor, in forward order (<see cref="Tensors"/> are in that order), outside its tolerance: where the backend goes wrong; null when none.</summary>
    public Comparison? FirstDivergence => Tensors.FirstOrDefault(t => !t.Passed);
}

/// <summary>The verdict of a backend on a folder of golden cases.</summary>
/// <param name="Backend">The backend's name.</param>
/// <param name="Device">Where it computed.</param>
/// <param name="DType">Its working dtype, which chose the tolerances.</param>
/// <param name="CasesDir">The folder of cases.</param>
/// <param name="ManifestFound">Whether manifest.json was there (sha256 checks and tolerances from it).</param>
/// <param name="Tolerances">The tolerances by dtype (from manifest.json, or the defaults); the backend's dtype picks one.</param>
/// <param name="Notes">Remarks on the run (e.g. no manifest: default tolerances).</param>
/// <param name="Cases">Every case's result.</param>
public sealed record GoldenReport(
    string Backend,
    string Device,
    DType DType,
    string CasesDir,
    bool ManifestFound,
    IReadOnlyDictionary<string, GoldenTolerance> Tolerances,
    IReadOnlyList<string> Notes,
    IReadOnlyList<GoldenCaseResult> Cases)
{
    /// <summary>At least one case ran, and every case passed.</summary>
    public bool Passed => Cases.Count > 0 && Cases.All(c => c.Passed);

    /// <summary>One line per failed, corrupted or erroneous case and per failing tensor.</summary>
    public IReadOnlyList<string> Failures
    {
        get
        {
            var lines = new List<string>();
            if (Cases.Count == 0) lines.Add($"no golden cases found under {CasesDir}");
            foreach (var c in Cases.Where(c => !c.Passed))
            {
                if (c.Problem is not null) lines.Add($"{c.Name}: {c.Status.ToString().ToUpperInvariant()}: {c.Problem}");
                if (c.FirstDivergence is { } first) lines.Add($"{c.Name}: first divergence (forward order): {first.Name}");
                foreach (var t in c.Tensors.Where(t => !t.Passed)) lines.Add($"{c.Name}: {t}");
            }
            return lines;
        }
    }

    /// <summary>The report as indented JSON (what <c>siglip golden verify --report</c> writes): backend, tolerances, and per case every tensor's errors and worst element.</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            static void Number(Utf8JsonWriter w, string name, double v) => ComparisonJson.Number(w, name, v);
            w.WriteStartObject();
            w.WriteString("backend", Backend);
            w.WriteString("device", Device);
            w.WriteString("dtype", DType.Name());
            w.WriteString("cases_dir", CasesDir);
            w.WriteBoolean("manifest_found", ManifestFound);
            w.WriteBoolean("passed", Passed);
            w.WriteStartArray("notes");
            foreach (var n in Notes) w.WriteStringValue(n);
            w.WriteEndArray();
            w.WriteStartArray("failures");
            foreach (var f in Failures) w.WriteStringValue(f);
            w.WriteEndArray();
            w.WriteStartArray("cases");
            foreach (var c in Cases)
            {
                w.WriteStartObject();
                w.WriteString("name", c.Name);
                w.WriteString("kind", c.Kind);
                w.WriteString("status", c.Status.ToString().ToLowerInvariant());
                if (c.Covers is not null) w.WriteString("covers", c.Covers);
                if (c.Problem is not null) w.WriteString("problem", c.Problem);
                Number(w, "seconds", Math.Round(c.Seconds, 3));
                if (c.FirstDivergence is { } first) w.WriteString("first_divergence", first.Name); else w.WriteNull("first_divergence");
                w.WriteStartArray("not_produced");
                foreach (var n in c.NotProduced ?? []) w.WriteStringValue(n);
                w.WriteEndArray();
                w.WriteStartArray("tensors");
                foreach (var t in c.Tensors)
                {
                    w.WriteStartObject();
                    ComparisonJson.Fields(w, t);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }
}

/// <summary>
/// Runs golden cases on a backend and compares every expected tensor. Works on any folder of cases
/// in the golden layout (<see cref="GoldenFormat"/>), with or without a manifest.json: with one,
/// its tolerances apply (but never looser than the built-in <see cref="GoldenTolerance.Defaults"/>
/// for the dtype: a looser one is replaced by the built-in one, with a note) and every file's
/// sha256 is checked first; without one, the default tolerances apply (and the report says so). A folder that is itself a case is run as one case.
/// </summary>
public static class GoldenVerifier
{
    /// <summary>
    /// Runs every golden case under <paramref name="casesDir"/> (a folder of cases, or one case folder)
    /// on <paramref name="backend"/> in its working dtype and compares each output and gradient with the
    /// tolerance of that dtype from manifest.json. A damaged file is reported as corrupted, not as a
    /// numerical failure; the report says per tensor the max abs and rel error and the worst element.
    /// </summary>
    public static GoldenReport Verify(IBackend backend, string casesDir) => Verify(backend, casesDir, null, null);

    /// <param name="caseFilter">Runs only the cases whose name it accepts (null: all).</param>
    /// <param name="progress">Called with each case's name before it runs.</param>
    public static GoldenReport Verify(IBackend backend, string casesDir, Func<string, bool>? caseFilter, Action<string>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (!Directory.Exists(casesDir)) throw new DirectoryNotFoundException($"{casesDir}: no such folder of golden cases.");
        var notes = new List<string>();
        var manifestPath = Path.Combine(casesDir, GoldenFormat.ManifestFile);
        GoldenManifest? manifest = File.Exists(manifestPath) ? GoldenManifest.Read(manifestPath) : null;
        if (manifest is null) notes.Add($"no {GoldenFormat.ManifestFile} in {casesDir}: default tolerances apply and file checksums are not checked");

        var tolerances = manifest?.Tolerances is { Count: > 0 } t ? t : GoldenTolerance.Defaults;
        string dtype = backend.DType.Name();
        if (!tolerances.TryGetValue(dtype, out var tolerance))
        {
            tolerance = GoldenTolerance.Defaults.TryGetValue(dtype, out var d) ? d : GoldenTolerance.Defaults[DType.Float32.Name()];
            notes.Add($"no tolerance for dtype '{dtype}' in the manifest; using atol {tolerance.Atol:G3}, rtol {tolerance.Rtol:G3}");
        }
        else if (GoldenTolerance.Defaults.TryGetValue(dtype, out var builtIn) && tolerance.IsLooserThan(builtIn))
        {
            // A manifest may tighten the built-in bounds, never loosen them: a folder of cases cannot
            // vouch for its own leniency. Verification goes on with the built-in bound, and says so.
            notes.Add($"the manifest's {dtype} tolerance ({Describe(tolerance)}) is looser than the built-in one ({Describe(builtIn)}); " +
                      "using the built-in one. Regenerate the manifest with 'siglip golden generate' or tighten it.");
            tolerance = builtIn;
        }

        // Case folders: the folder itself, or every folder below it holding an expected.safetensors.
        var folders = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (GoldenCase.IsCase(casesDir)) folders[Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(casesDir)))] = casesDir;
        else
            foreach (var dir in Directory.EnumerateDirectories(casesDir, "*", SearchOption.AllDirectories))
                if (GoldenCase.IsCase(dir)) folders[Path.GetRelativePath(casesDir, dir).Replace('\\', '/')] = dir;
        var listed = manifest?.Cases.ToDictionary(c => c.Name, StringComparer.Ordinal) ?? [];

        var results = new List<GoldenCaseResult>();
        foreach (var missing in listed.Keys.Where(n => !folders.ContainsKey(n) && (caseFilter?.Invoke(n) ?? true)))
            results.Add(new GoldenCaseResult(missing, listed[missing].Kind, GoldenCaseStatus.Corrupted, listed[missing].Covers, [],
                $"listed in {GoldenFormat.ManifestFile} but {Path.Combine(casesDir, missing)} has no {GoldenFormat.ExpectedFile}", 0));
        foreach (var (name, dir) in folders)
        {
            if (caseFilter is not null && !caseFilter(name)) continue;
            progress?.Invoke(name);
            if (manifest is not null && !listed.ContainsKey(name)) notes.Add($"case {name} is not in {GoldenFormat.ManifestFile}: its files are not checksummed");
            results.Add(RunCase(backend, name, dir, listed.GetValueOrDefault(name), tolerance));
        }
        return new GoldenReport(backend.Name, backend.Device, backend.DType, casesDir, manifest is not null, tolerances, notes, results);
    }

    private static string Describe(GoldenTolerance t) =>
        $"atol {t.Atol:G3}{(t.AtolRelativeToMaxAbs ? " of the tensor's largest |e|" : "")}, rtol {t.Rtol:G3}";

    private static GoldenCaseResult RunCase(IBackend backend, string name, string dir, GoldenManifestCase? listed, GoldenTolerance tolerance)
    {
        var clock = Stopwatch.StartNew();
        string kind = listed?.Kind ?? "?";
        // 1. Integrity: the files are what the manifest says they are.
        if (listed is not null)
        {
            foreach (var (file, sha) in listed.Files)
            {
                // A manifest entry is read from a file: it must name a regular file inside the case folder.
                if (!ContainedPath.TryResolve(dir, file, FileKind.RegularFile, allowMissing: true, out var path, out var refused))
                    return new(name, kind, GoldenCaseStatus.Corrupted, listed.Covers, [],
                        $"{GoldenFormat.ManifestFile} lists '{file}' for case {name}, refused and not read: {refused}", clock.Elapsed.TotalSeconds);
                if (!File.Exists(path))
                    return new(name, kind, GoldenCaseStatus.Corrupted, listed.Covers, [], $"{path} is missing (listed in {GoldenFormat.ManifestFile})", clock.Elapsed.TotalSeconds);
                var actual = GoldenManifest.Sha256(path);
                if (!string.Equals(actual, sha, StringComparison.OrdinalIgnoreCase))
                    return new(name, kind, GoldenCaseStatus.Corrupted, listed.Covers, [],
                        $"{path}: sha256 is {actual} but {GoldenFormat.ManifestFile} says {sha}; the file is damaged or was changed by hand (regenerate with 'siglip golden generate')", clock.Elapsed.TotalSeconds);
            }
        }
        // 2. The case reads and is well formed.
        GoldenCase golden;
        try
        {
            golden = GoldenCase.Load(dir, name);
        }
        catch (Exception ex) when (ex is SafeTensorsFormatException or InputFormatException or FileNotFoundException or ArgumentException or IOException)
        {
            return new(name, kind, GoldenCaseStatus.Corrupted, listed?.Covers, [], ex.Message, clock.Elapsed.TotalSeconds);
        }
        kind = golden.Kind == GoldenCaseKind.Model ? "model" : "loss";
        // 3. The backend runs it.
        IReadOnlyDictionary<string, Tensor> actuals;
        var problems = new List<Comparison>();
        try
        {
            actuals = golden.Kind == GoldenCaseKind.Model ? RunModel(backend, golden, problems) : RunLoss(backend, golden);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return new(name, kind, GoldenCaseStatus.Error, golden.Covers ?? listed?.Covers, [], $"backend '{backend.Name}' failed: {ex.GetType().Name}: {ex.Message}", clock.Elapsed.TotalSeconds);
        }
        // 4. Every expected tensor against the backend's.
        // Group scales: the largest |e| among the case's gradients, and among its outputs.
        static bool IsGradient(GoldenExpected e) => e.Target.StartsWith(OutputNames.GradPrefix, StringComparison.Ordinal);
        double gradScale = golden.Expected.Where(IsGradient).Select(e => GoldenTolerance.MaxAbs(e.Values)).DefaultIfEmpty(0).Max();
        double outputScale = golden.Expected.Where(e => !IsGradient(e)).Select(e => GoldenTolerance.MaxAbs(e.Values)).DefaultIfEmpty(0).Max();
        var comparisons = new List<Comparison>();
        var notProduced = new List<string>();
        // Forward order (Intermediates: the one list), so the first failing row is where the backend goes wrong.
        foreach (var e in Intermediates.Sort(golden.Expected, e => e.Name, golden.Config, golden.Batch?.Size ?? 1, golden.Batch?.InputIds.Length ?? 1))
        {
            // Hidden states and the MAP head's attention are for bisecting a port; a backend's contract returns only the outputs and gradients.
            if (Intermediates.IsIntermediate(e.Target) && !actuals.ContainsKey(e.Target)) { notProduced.Add(e.Name); continue; }
            comparisons.Add(Compare(e, actuals, tolerance.For(e.Values, IsGradient(e) ? gradScale : outputScale)));
        }
        comparisons.AddRange(problems);
        var status = comparisons.All(c => c.Passed) ? GoldenCaseStatus.Passed : GoldenCaseStatus.Failed;
        return new(name, kind, status, golden.Covers ?? listed?.Covers, comparisons, null, clock.Elapsed.TotalSeconds, notProduced);
    }

    private static IReadOnlyDictionary<string, Tensor> RunModel(IBackend backend, GoldenCase golden, List<Comparison> problems)
    {
        using var model = backend.CreateModel(golden.Config!, golden.Parameters!, golden.Locked);
        var step = model.ForwardBackward(golden.Batch!, golden.Loss, collectOutputs: true);
        var grads = model.Gradients();
        var actuals = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (n, t) in step.Outputs) actuals[n] = t;
        if (!actuals.ContainsKey(OutputNames.Loss)) actuals[OutputNames.Loss] = Tensor.Scalar(step.Loss);
        foreach (var (n, g) in grads) actuals[OutputNames.GradPrefix + n] = g;
        // The contract: a locked tower gets no gradients at all.
        if (golden.Locked != LockedTowers.None)
        {
            var lockedNames = ParameterLayout.For(golden.Config!)
                .Where(p => (p.Tower == Tower.Image && golden.Locked.HasFlag(LockedTowers.Image)) || (p.Tower == Tower.Text && golden.Locked.HasFlag(LockedTowers.Text)))
                .Select(p => p.Name).Where(grads.ContainsKey).ToList();
            if (lockedNames.Count > 0)
                problems.Add(Problem($"locked {GoldenFormat.LockedName(golden.Locked)} tower", $"the backend returned gradients for {lockedNames.Count} locked parameter(s) (e.g. {lockedNames[0]}); a locked tower must get none"));
        }
        return actuals;
    }

    private static IReadOnlyDictionary<string, Tensor> RunLoss(IBackend backend, GoldenCase golden)
    {
        var r = backend.Loss(golden.ImageEmbeds!, golden.TextEmbeds!, golden.LogitScale, golden.LogitBias, golden.Loss);
        return new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            [OutputNames.Loss] = Tensor.Scalar(r.Loss),
            ["grad.image_embeds"] = r.GradImageEmbeds,
            ["grad.text_embeds"] = r.GradTextEmbeds,
            ["grad.logit_scale"] = Tensor.Scalar(r.GradLogitScale),
            ["grad.logit_bias"] = Tensor.Scalar(r.GradLogitBias),
        };
    }

    private static Comparison Problem(string name, string problem) =>
        new(name, false, double.NaN, double.NaN, [], double.NaN, double.NaN, new Tolerance(0, 0), problem);

    private static Comparison Compare(GoldenExpected e, IReadOnlyDictionary<string, Tensor> actuals, Tolerance tol)
    {
        if (!actuals.TryGetValue(e.Target, out var actual))
            return Problem(e.Name, $"the backend returned no '{e.Target}'") with { Tolerance = tol };
        if (e.SampleIndices is null) return Comparison.Of(e.Name, actual, e.Values, tol);
        var sampled = new double[e.SampleIndices.Length];
        for (int i = 0; i < sampled.Length; i++)
        {
            long index = e.SampleIndices[i];
            if (index < 0 || index >= actual.Size)
                return Problem(e.Name, $"sample index {index} is outside '{e.Target}' of shape {Tensor.ShapeToString(actual.Shape)}") with { Tolerance = tol };
            sampled[i] = actual.Data[index];
        }
        var c = Comparison.Of(e.Name, new Tensor([sampled.Length], sampled), e.Values, tol);
        // Report the worst element by its place in the whole gradient.
        return c.WorstIndex.Count == 1 ? c with { WorstIndex = Tensor.Unravel(actual.Shape, e.SampleIndices[c.WorstIndex[0]]) } : c;
    }
}
