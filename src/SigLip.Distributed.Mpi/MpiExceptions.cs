namespace SigLip.Distributed.Mpi;

/// <summary>
/// Open MPI cannot be used here: the library is missing, is another MPI (MPICH), or is not MPI at all.
/// The message says what to install (openmpi-bin) or what to set (SIGLIP_MPI_LIBRARY).
/// </summary>
public sealed class MpiNotAvailableException(string message) : Exception(message);

/// <summary>An MPI call returned an error code (only seen when the job's error handler returns instead of aborting).</summary>
public sealed class MpiException(string message) : Exception(message);
