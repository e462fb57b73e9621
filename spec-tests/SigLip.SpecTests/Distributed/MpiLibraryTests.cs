using SigLip.Distributed.Mpi;

namespace SigLip.SpecTests.Distributed;

/// <summary>
/// Finding libmpi and telling which MPI it is (no mpirun needed; nothing here initialises MPI), and
/// reading the launcher's environment.
/// </summary>
public sealed class MpiLibraryTests
{
    [Fact]
    public void A_configured_library_that_does_not_load_names_the_variable_the_path_and_what_to_install()
    {
        var e = Assert.Throws<MpiNotAvailableException>(() => MpiNative.Open("/nonexistent/libmpi.so.40"));
        Assert.Contains("SIGLIP_MPI_LIBRARY=/nonexistent/libmpi.so.40 does not load", e.Message);
        Assert.Contains("cannot open shared object file", e.Message); // dlerror's reason, kept
        Assert.Contains("openmpi-bin", e.Message);
        Assert.DoesNotContain("consider using a tool like strace", e.Message);
    }

    [Fact]
    public void A_library_that_is_not_MPI_is_refused_with_what_to_install()
    {
        var e = Assert.Throws<MpiNotAvailableException>(() => MpiNative.Open("libc.so.6"));
        Assert.Contains("libc.so.6 is not an MPI library", e.Message);
        Assert.Contains("apt-get install openmpi-bin", e.Message);
        Assert.Contains("SIGLIP_MPI_LIBRARY", e.Message);
    }

    [SkippableFact]
    public void Open_MPI_is_found_by_its_default_name_and_says_its_version()
    {
        Skip.IfNot(System.Runtime.InteropServices.NativeLibrary.TryLoad("libmpi.so.40", out _),
            "libmpi.so.40 does not load here: install Open MPI (apt-get install openmpi-bin)");
        var mpi = MpiNative.Open(null);
        Assert.Equal("libmpi.so.40", mpi.LoadedFrom);
        Assert.StartsWith("Open MPI v", mpi.Version);
        Assert.Equal(MpiAbi.OpenMpi, MpiNative.ClassifyAbi(mpi.Version));
        Assert.Matches(@"^Open MPI v\d+\.\d+\.\d+$", MpiCommunicator.ShortVersion(mpi.Version));
    }

    [SkippableFact]
    public void A_real_MPICH_library_is_refused_by_name()
    {
        Skip.IfNot(System.Runtime.InteropServices.NativeLibrary.TryLoad("libmpich.so.12", out _),
            "no MPICH here (libmpich.so.12; Debian: apt-get install libmpich12)");
        var e = Assert.Throws<MpiNotAvailableException>(() => MpiNative.Open("libmpich.so.12"));
        Assert.Contains("libmpich.so.12 is MPICH-family MPI (MPICH Version:", e.Message);
        Assert.Contains("not supported", e.Message);
        Assert.Contains("openmpi-bin", e.Message);
    }

    [Theory]
    [InlineData("Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022", "OpenMpi")]
    [InlineData("MPICH Version:\t4.0.2\nMPICH Release date: ...", "Mpich")]
    [InlineData("Intel(R) MPI Library 2021.10 for Linux* OS", "Mpich")]
    [InlineData("MVAPICH2 Version 2.3.7", "Mpich")]
    [InlineData("", "Unknown")]
    public void The_ABI_family_is_read_from_the_library_version(string version, string abi) =>
        Assert.Equal(Enum.Parse<MpiAbi>(abi), MpiNative.ClassifyAbi(version));

    [Fact]
    public void An_MPICH_library_is_named_as_unsupported_and_why()
    {
        var message = MpiNative.NotOpenMpiMessage("libmpi.so.12", "MPICH Version: 4.0.2");
        Assert.Contains("libmpi.so.12 is MPICH-family MPI (MPICH Version: 4.0.2), which is not supported", message);
        Assert.Contains("as integers", message);
        Assert.Contains("apt-get install openmpi-bin", message);
        Assert.Contains("SIGLIP_MPI_LIBRARY", message);
    }

    [Fact]
    public void No_launcher_variables_means_not_launched()
    {
        Assert.Null(MpiLaunch.Detect(_ => null));
        // An salloc shell has SLURM_NTASKS but no task of an srun (no PMI rank): not a launch.
        Assert.Null(MpiLaunch.Detect(Env(("SLURM_NTASKS", "4"), ("SLURM_PROCID", "0"))));
    }

    [Fact]
    public void Open_MPI_and_Slurm_launches_are_read_from_their_variables()
    {
        Assert.Equal(new MpiLaunch(3, 2, 0, "Open MPI mpirun (OMPI_COMM_WORLD_SIZE=3)"),
            MpiLaunch.Detect(Env(("OMPI_COMM_WORLD_SIZE", "3"), ("OMPI_COMM_WORLD_RANK", "2"), ("OMPI_COMM_WORLD_LOCAL_RANK", "0"))));
        Assert.Equal(new MpiLaunch(8, 5, 1, "Slurm srun (SLURM_NTASKS=8)"),
            MpiLaunch.Detect(Env(("SLURM_NTASKS", "8"), ("SLURM_PROCID", "5"), ("SLURM_LOCALID", "1"), ("PMIX_RANK", "5"))));
    }

    [Theory]
    [InlineData("three", "0", "OMPI_COMM_WORLD_SIZE=three is not a whole number")]
    [InlineData("3", "3", "OMPI_COMM_WORLD_RANK=3 is outside 0..2")]
    [InlineData("3", null, "OMPI_COMM_WORLD_RANK is not")]
    [InlineData("0", "0", "the number of ranks must be at least 1")]
    public void A_broken_launch_environment_is_an_error_naming_the_variable(string size, string? rank, string expected)
    {
        var e = Assert.Throws<InvalidOperationException>(() => MpiLaunch.Detect(Env(("OMPI_COMM_WORLD_SIZE", size), ("OMPI_COMM_WORLD_RANK", rank))));
        Assert.Contains(expected, e.Message);
    }

    private static Func<string, string?> Env(params (string Name, string? Value)[] variables) =>
        name => variables.FirstOrDefault(v => v.Name == name).Value;
}
