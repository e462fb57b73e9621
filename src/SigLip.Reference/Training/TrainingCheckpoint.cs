using System.Text.Json;
using System.Text.Json.Serialization;
using SigLip.Reference.Backends;
using SigLip.Reference.IO;
using SigLip.Reference.Models;

namespace SigLip.Reference.Training;

/// <summary>What a checkpoint records about the run besides parameters and optimizer moments.</summary>
/// <param name="Step">Steps done.</param>
/// <param name="Settings">The run's settings (a resume continues with them).</param>
/// <param name="Data">Where the data stream stands after <see cref="Step"/> steps.</param>
/// <param name="Losses">Every step's loss so far, from step 1.</param>
/// <param name="Backend">The backend that trained it, and its dtype.</param>
/// <param name="DataDescription">The data source, in words (a resume warns when it differs).</param>
/// <param name="DType">The dtype it trained in.</param>
/// <param name="FormatVersion">The trainer_state.json format (<see cref="CurrentFormat"/>).</param>
public sealed record TrainingState(
    int Step,
    TrainingSettings Settings,
    DataPosition Data,
    IReadOnlyList<double> Losses,
    string Backend,
    string DType,
    string DataDescription,
    int FormatVersion = TrainingState.CurrentFormat)
{
    /// <summary>The trainer_state.json format this version writes and reads.</summary>
    public const int CurrentFormat = 1;

    /// <summary>
    /// Range-checks a state read from <paramref name="statePath"/> before a resume trusts any of it, so that a damaged
    /// or hand-edited file is refused in one line naming the field, its value and the valid range, instead of a
    /// resume that hangs (a data position that skips billions of examples) or fails deep inside training:
    /// the format version; settings, data and losses present; the settings valid (<see cref="TrainingSettings.Validate"/>);
    /// 0 &lt;= step &lt;= settings.steps; one finite loss per step; dtype a known name; backend and data description
    /// present; and the data position exactly what <see cref="Step"/> steps of <c>batch_size</c> examples reach:
    /// every step draws one whole global batch, so after s steps s x batch_size examples were drawn, in epoch 0
    /// (index = s x batch_size) or, for a finite source, over <c>epoch</c> whole epochs of at least one example
    /// each plus <c>index</c> (1 &lt;= index and epoch + index &lt;= s x batch_size).
    /// </summary>
    /// <exception cref="InputFormatException">The first field out of range, naming the file.</exception>
    public void Validate(string statePath)
    {
        InputFormatException Bad(string what) => new($"{statePath}: {what}", statePath);
        if (FormatVersion != CurrentFormat)
            throw Bad($"format_version {FormatVersion}, this program reads {CurrentFormat}.");
        if (Settings is null || Data is null || Losses is null)
            throw Bad("missing field(s) settings, data or losses.");
        try
        {
            Settings.Validate();
        }
        catch (ArgumentException ex)
        {
            throw Bad($"settings: {ex.Message}");
        }
        if (Step < 0 || Step > Settings.Steps)
            throw Bad($"step {Step} is outside the run's steps; expected 0 to settings.steps = {Settings.Steps}.");
        if (Losses.Count != Step)
            throw Bad($"step {Step} but {Losses.Count} losses recorded; expected one loss per step.");
        for (int i = 0; i < Losses.Count; i++)
            if (!double.IsFinite(Losses[i]))
                throw Bad($"losses[{i}] (step {i + 1}) is {Losses[i]}; a recorded loss is always finite (training stops before a non-finite one is kept).");
        try
        {
            DTypes.Parse(DType);
        }
        catch (ArgumentException ex)
        {
            throw Bad($"dtype: {ex.Message}");
        }
        if (string.IsNullOrWhiteSpace(Backend) || Backend.Length > 100 || Backend.Any(char.IsControl))
            throw Bad($"backend '{Backend}' is not a backend name; expected a name such as reference, managed or torch.");
        if (DataDescription is null)
            throw Bad("missing field data_description.");

        long drawn = (long)Step * Settings.BatchSize; // at most 30 million steps of an int batch: no overflow
        var (epoch, index) = (Data.Epoch, Data.Index);
        if (epoch < 0 || epoch > drawn)
            throw Bad($"data.epoch {epoch} is outside 0 to {drawn:N0} (step {Step} x batch_size {Settings.BatchSize}: the examples drawn so far, each epoch at least one).");
        if (epoch == 0 && index != drawn)
            throw Bad($"data.index {index} in epoch 0, but step {Step} x batch_size {Settings.BatchSize} = {drawn:N0} examples have been drawn; expected data.index {drawn}.");
        if (epoch > 0 && (index < 1 || index > drawn - epoch))
            throw Bad($"data.index {index} in epoch {epoch} is outside 1 to {drawn - epoch:N0} (step {Step} x batch_size {Settings.BatchSize} examples drawn, " +
                      $"{epoch} whole epoch(s) of at least one example before it).");
    }
}

/// <summary>A training checkpoint read back from disk.</summary>
/// <param name="Folder">The checkpoint folder read.</param>
/// <param name="Config">The model's sizes.</param>
/// <param name="Parameters">The parameters, by HF name.</param>
/// <param name="OptimizerState">AdamW's moments and step count.</param>
/// <param name="State">Step, settings, data position, losses.</param>
public sealed record LoadedTrainingCheckpoint(string Folder, SiglipConfig Config, NamedTensors Parameters, NamedTensors OptimizerState, TrainingState State);

/// <summary>
/// Training checkpoints. A run folder holds one folder per saved step plus a pointer to the newest:
/// <code>
///   RUN/step-000400/config.json          HF config            (HfCheckpoint: loadable by HF transformers)
///   RUN/step-000400/model.safetensors    HF parameter names   (F64 on a float64 backend: resume is exact)
///   RUN/step-000400/optimizer.safetensors  exp_avg.&lt;param&gt;, exp_avg_sq.&lt;param&gt;, step
///   RUN/step-000400/trainer_state.json   step, settings, data position, losses
///   RUN/latest                           "step-000400"
/// </code>
/// A save is atomic: everything is written into a hidden temporary folder, which is renamed into
/// place only once complete; then <c>latest</c> is replaced atomically. A crash at any point leaves
/// <c>latest</c> pointing at a complete checkpoint (the previous one until the very last rename).
/// </summary>
public static class TrainingCheckpoint
{
    /// <summary>The parameters (HF names), as in an HF model folder.</summary>
    public const string ModelFile = "model.safetensors";
    /// <summary>The model's HF config.json.</summary>
    public const string ConfigFile = "config.json";
    /// <summary>AdamW's moments and step count.</summary>
    public const string OptimizerFile = "optimizer.safetensors";
    /// <summary>Step, settings, data position and losses.</summary>
    public const string StateFile = "trainer_state.json";
    /// <summary>The file in the run folder naming the newest complete checkpoint folder.</summary>
    public const string LatestFile = "latest";
    private const string StepPrefix = "step-";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.Strict,
    };

    /// <summary>The folder <see cref="Save"/> puts step <paramref name="step"/>'s checkpoint in.</summary>
    public static string StepFolder(string runFolder, int step) => Path.Combine(runFolder, $"{StepPrefix}{step:D6}");

    /// <summary>
    /// Saves a checkpoint of step <c>state.Step</c> under <paramref name="runFolder"/> and points
    /// <c>latest</c> at it; keeps the newest <paramref name="keep"/> step folders. Returns the folder.
    /// </summary>
    /// <param name="afterFileWritten">Called with each file's path once written (tests use it to interrupt a save).</param>
    public static string Save(
        string runFolder,
        SiglipConfig config,
        IReadOnlyDictionary<string, Tensor> parameters,
        IReadOnlyDictionary<string, Tensor> optimizerState,
        TrainingState state,
        SafeTensorDType dtype = SafeTensorDType.F64,
        int keep = 2,
        Action<string>? afterFileWritten = null)
    {
        Directory.CreateDirectory(runFolder);
        RemoveStaleTemporaries(runFolder);
        string name = $"{StepPrefix}{state.Step:D6}";
        string final = Path.Combine(runFolder, name);
        string temporary = Path.Combine(runFolder, $".{name}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temporary);
        try
        {
            HfCheckpoint.Save(temporary, config, parameters, dtype);
            afterFileWritten?.Invoke(Path.Combine(temporary, ModelFile));
            SafeTensorsWriter.Write(
                Path.Combine(temporary, OptimizerFile),
                optimizerState.Select(kv => SafeTensorEntry.Float(kv.Key, kv.Value, dtype)),
                new Dictionary<string, string> { ["format"] = "siglip-adamw", ["step"] = state.Step.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            afterFileWritten?.Invoke(Path.Combine(temporary, OptimizerFile));
            AtomicFile.WriteAllText(Path.Combine(temporary, StateFile), JsonSerializer.Serialize(state, Json));
            afterFileWritten?.Invoke(Path.Combine(temporary, StateFile));

            // The complete folder goes into place; one that already has the name (a re-run) is moved aside first.
            string? aside = null;
            if (Directory.Exists(final))
            {
                aside = Path.Combine(runFolder, $".{name}.old-{Guid.NewGuid():N}");
                Directory.Move(final, aside);
            }
            Directory.Move(temporary, final);
            AtomicFile.WriteAllText(ContainedPath.ForWriting(runFolder, LatestFile), name + "\n");
            if (aside is not null) TryDelete(aside);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
        Prune(runFolder, keep, name);
        return final;
    }

    /// <summary>
    /// The checkpoint folder a path means: a folder holding trainer_state.json is one; a run folder
    /// means the step its <c>latest</c> names, or failing that its newest complete step folder.
    /// </summary>
    public static string Resolve(string path)
    {
        if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"Checkpoint folder '{path}' does not exist.");
        string stateFile = Path.Combine(path, StateFile);
        if (File.Exists(stateFile) || new FileInfo(stateFile).LinkTarget is not null)
        {
            ContainedPath.Resolve(path, StateFile, path); // a trainer state linked from outside, or a FIFO, is refused
            return path;
        }
        string latest = Path.Combine(path, LatestFile);
        if (File.Exists(latest) || new FileInfo(latest).LinkTarget is not null)
        {
            // `latest` and the folder it names are read from files: both must stay inside the run folder.
            string name = File.ReadAllText(ContainedPath.Resolve(path, LatestFile, path)).Trim();
            string folder = ContainedPath.Resolve(path, name, latest, FileKind.Directory, allowMissing: true);
            if (name.StartsWith(StepPrefix, StringComparison.Ordinal) && IsComplete(folder)) return folder;
        }
        var newest = CompleteSteps(path).LastOrDefault();
        return newest ?? throw new FileNotFoundException(
            $"'{path}' is neither a training checkpoint (no {StateFile}) nor a run folder with a complete {StepPrefix}NNNNNN checkpoint. " +
            $"A plain HF checkpoint (config.json + model.safetensors) can be used with --lock-image/--lock-text or `siglip eval`, not --resume.");
    }

    /// <summary>Loads a checkpoint (a checkpoint folder or a run folder, see <see cref="Resolve"/>).</summary>
    public static LoadedTrainingCheckpoint Load(string path)
    {
        string folder = Resolve(path);
        var model = HfCheckpoint.Load(folder);
        string optimizerPath = Path.Combine(folder, OptimizerFile);
        if (!File.Exists(optimizerPath)) throw new FileNotFoundException($"Checkpoint '{folder}' has no {OptimizerFile} (optimizer state); it cannot be resumed.");
        var optimizer = SafeTensorsFile.ReadAllFloats(optimizerPath);
        string statePath = ContainedPath.Resolve(folder, StateFile, folder);
        byte[] stateBytes = File.ReadAllBytes(statePath);
        const string expected = "a trainer state as `siglip train` writes it (step, settings, data, losses, backend, d_type, data_description, format_version)";
        int bom = stateBytes.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0; // File.ReadAllText skipped a byte order mark; the serializer does not
        TrainingState state;
        try
        {
            state = JsonSerializer.Deserialize<TrainingState>(stateBytes.AsSpan(bom), Json)
                ?? throw new InputFormatException($"{statePath}: the file holds null; expected {expected}.", statePath);
        }
        // System.Text.Json's failures become the project's typed error naming the file (and the byte where it stopped).
        catch (JsonException ex) { throw JsonInputErrors.NotJson(statePath, stateBytes.AsSpan(bom), ex, expected, firstByte: bom); }
        catch (InvalidOperationException ex) { throw JsonInputErrors.BadValue(statePath, ex, expected); }
        catch (NotSupportedException ex) { throw new InputFormatException($"{statePath}: not a valid trainer state ({ex.Message}); expected {expected}.", statePath, null, ex); }
        state.Validate(statePath);
        CheckOptimizerStep(optimizer, state, optimizerPath);
        return new LoadedTrainingCheckpoint(folder, model.Config, model.Parameters, optimizer, state);
    }

    /// <summary>
    /// AdamW's step count is saved with the trainer's step and advances with it: any other value (1e300 is a whole
    /// number too) would give the bias corrections of another run, or overflow the count, so it is refused here.
    /// A missing 'step' is left to the optimizer's own check (<see cref="AdamW.CheckState"/>), which lists what is missing.
    /// </summary>
    private static void CheckOptimizerStep(IReadOnlyDictionary<string, Tensor> optimizer, TrainingState state, string optimizerPath)
    {
        if (!optimizer.TryGetValue(AdamW.StepName, out var step)) return;
        if (step.Size != 1 || step.Data[0] != state.Step)
            throw new InputFormatException($"{optimizerPath}: '{AdamW.StepName}' is {string.Join(", ", step.Data.Take(3).Select(x => x.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}, " +
                                           $"but {StateFile} is at step {state.Step}; the two are saved together and must agree (one number, 0 to settings.steps = {state.Settings.Steps}).", optimizerPath);
    }

    private static bool IsComplete(string folder) =>
        File.Exists(Path.Combine(folder, StateFile)) && File.Exists(Path.Combine(folder, ModelFile))
        && File.Exists(Path.Combine(folder, OptimizerFile)) && File.Exists(Path.Combine(folder, ConfigFile));

    private static IEnumerable<string> CompleteSteps(string runFolder) =>
        Directory.EnumerateDirectories(runFolder, StepPrefix + "*")
            .Where(IsComplete)
            .OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal);

    private static void Prune(string runFolder, int keep, string current)
    {
        var steps = CompleteSteps(runFolder).ToList();
        // The newest `keep` (by step number) stay, and always the one just written.
        foreach (var old in steps.Take(Math.Max(0, steps.Count - keep)))
            if (Path.GetFileName(old) != current) TryDelete(old);
    }

    private static void RemoveStaleTemporaries(string runFolder)
    {
        foreach (var d in Directory.EnumerateDirectories(runFolder, $".{StepPrefix}*"))
            TryDelete(d);
    }

    private static void TryDelete(string folder)
    {
        try { if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
