namespace SigLip.Fuzzing;

/// <summary>
/// One format under fuzzing: valid seed inputs, mutators, and the project's own parsing entry point (the
/// code the CLI runs on such a file). A target writes each case's files into its case folder and parses
/// them from there, so the parsers see real files with real names, as they do for a user.
/// </summary>
public abstract class FuzzTarget : IDisposable
{
    private string? _root;
    private int _folders;
    private IReadOnlyList<FuzzCase>? _seeds;

    protected FuzzTarget(string name, string description)
    {
        Name = name;
        Description = description;
    }

    /// <summary>The format's name, as <c>siglip fuzz --format</c> takes it.</summary>
    public string Name { get; }

    /// <summary>What is fuzzed and through which entry point, in words.</summary>
    public string Description { get; }

    /// <summary>The folder the current case's files are written to.</summary>
    public string CaseFolder { get; private set; } = "";

    /// <summary>The valid inputs mutations start from (made on first use).</summary>
    public IReadOnlyList<FuzzCase> Seeds => _seeds ??= MakeSeeds();

    /// <summary>Creates the target's working folder under <paramref name="workRoot"/> and its seeds.</summary>
    public void Prepare(string workRoot)
    {
        _root = Path.Combine(workRoot, Name);
        Directory.CreateDirectory(_root);
        PrepareWork(_root);
        NewCaseFolder();
        _ = Seeds;
    }

    /// <summary>
    /// Gives up the current case folder (a case that hung may still be using it) and starts a new one.
    /// </summary>
    public void Abandon() => NewCaseFolder();

    private void NewCaseFolder()
    {
        if (_root is null) throw new InvalidOperationException($"Fuzz target {Name}: call Prepare first.");
        CaseFolder = Path.Combine(_root, $"case-{_folders++}");
        Directory.CreateDirectory(CaseFolder);
        InitializeCaseFolder(CaseFolder);
    }

    /// <summary>The case of <paramref name="caseIndex"/> in run <paramref name="runSeed"/>: the first cases are the seeds themselves, the rest 1 to 8 stacked mutations of one.</summary>
    public FuzzCase MakeCase(long runSeed, long caseIndex)
    {
        if (caseIndex < Seeds.Count) return Seeds[(int)caseIndex];
        var rng = new FuzzRandom(FuzzRandom.CaseSeed(runSeed, Name, caseIndex));
        var c = rng.Pick(Seeds);
        int mutations = rng.OneIn(2) ? 1 : rng.Next(2, 9);
        for (int i = 0; i < mutations; i++) c = Mutate(c, rng);
        return c;
    }

    /// <summary>One mutation: a file of the case (the first, mostly), changed by its structure-aware mutator or at the byte level.</summary>
    public virtual FuzzCase Mutate(FuzzCase input, FuzzRandom rng)
    {
        int index = input.Files.Count == 1 || rng.Next(5) > 0 ? 0 : rng.Next(1, input.Files.Count);
        var file = input.Files[index];
        byte[]? changed = rng.OneIn(2) ? MutateStructure(file.Name, file.Bytes, rng) : null;
        changed ??= ByteMutations.Mutate(file.Bytes, rng, Seeds.SelectMany(s => s.Files).Where(f => f.Name == file.Name).Select(f => f.Bytes).ToList());
        return input.With(index, changed);
    }

    /// <summary>Writes the case's files into <see cref="CaseFolder"/> and runs the parser on them.</summary>
    public void Run(FuzzCase input)
    {
        foreach (var f in input.Files) File.WriteAllBytes(Path.Combine(CaseFolder, f.Name), f.Bytes);
        Parse(CaseFolder, input);
    }

    /// <summary>The valid inputs.</summary>
    protected abstract IReadOnlyList<FuzzCase> MakeSeeds();

    /// <summary>A structure-aware mutation of one file; null leaves it to the byte mutations.</summary>
    protected virtual byte[]? MutateStructure(string fileName, byte[] bytes, FuzzRandom rng) => null;

    /// <summary>The project's parsing entry point on the case written to <paramref name="folder"/>.</summary>
    protected abstract void Parse(string folder, FuzzCase input);

    /// <summary>Work done once (a checkpoint the cases share).</summary>
    protected virtual void PrepareWork(string root) { }

    /// <summary>Files every case folder holds besides the case's own.</summary>
    protected virtual void InitializeCaseFolder(string folder) { }

    public void Dispose()
    {
        GC.SuppressFinalize(this);
        if (_root is null) return;
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { } // a hung case may still hold a file
        catch (UnauthorizedAccessException) { }
    }
}
