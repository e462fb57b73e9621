namespace SigLip.Distributed.Mpi;

/// <summary>How this process was started as one rank of a job, read from what the launcher sets in its environment.</summary>
/// <param name="Size">W, the number of ranks the launcher started.</param>
/// <param name="Rank">This process's rank in 0 .. W - 1.</param>
/// <param name="LocalRank">Its rank among the ranks on this machine (to pick a GPU), or null when the launcher does not say.</param>
/// <param name="Launcher">Which variables said so, in words (e.g. "Open MPI mpirun (OMPI_COMM_WORLD_SIZE=3)").</param>
public sealed record MpiLaunch(int Size, int Rank, int? LocalRank, string Launcher)
{
    /// <summary>
    /// The launch this process is part of, or null when no launcher's variables are set (a plain
    /// process). Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE / _RANK / _LOCAL_RANK; Slurm's srun sets
    /// SLURM_NTASKS / SLURM_PROCID / SLURM_LOCALID (read only with PMIX_RANK or PMI_RANK beside them,
    /// so an salloc shell alone is not taken for a job). A variable that is set but is not a number,
    /// or a rank outside 0 .. size - 1, is an error that names it.
    /// </summary>
    public static MpiLaunch? Detect(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        if (environment("OMPI_COMM_WORLD_SIZE") is { Length: > 0 })
            return Read(environment, "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "Open MPI mpirun");
        if (environment("SLURM_PROCID") is { Length: > 0 } && environment("SLURM_NTASKS") is { Length: > 0 }
            && (environment("PMIX_RANK") is { Length: > 0 } || environment("PMI_RANK") is { Length: > 0 }))
            return Read(environment, "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID", "Slurm srun");
        return null;
    }

    private static MpiLaunch Read(Func<string, string?> environment, string sizeName, string rankName, string localName, string launcher)
    {
        var size = Number(environment, sizeName) ?? throw new InvalidOperationException($"{sizeName} is not set");
        var rank = Number(environment, rankName)
            ?? throw new InvalidOperationException($"{sizeName}={size} is set but {rankName} is not: the launcher's environment is incomplete.");
        if (size < 1) throw new InvalidOperationException($"{sizeName}={size}: the number of ranks must be at least 1.");
        if (rank < 0 || rank >= size) throw new InvalidOperationException($"{rankName}={rank} is outside 0..{size - 1} ({sizeName}={size}).");
        return new MpiLaunch(size, rank, Number(environment, localName), $"{launcher} ({sizeName}={size})");
    }

    private static int? Number(Func<string, string?> environment, string name) =>
        environment(name) switch
        {
            null or "" => null,
            var text when int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) => n,
            var text => throw new InvalidOperationException($"{name}={text} is not a whole number."),
        };
}
