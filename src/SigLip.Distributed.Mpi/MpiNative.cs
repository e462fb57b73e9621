using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using System.Text;

namespace SigLip.Distributed.Mpi;

/// <summary>
/// Every native call of this project, in one place: finding libmpi, telling which MPI it is, and the
/// handful of MPI functions the communicator needs, called through function pointers.
/// </summary>
/// <remarks>
/// <para>
/// Nothing is compiled against MPI headers. The library is loaded at run time from
/// <c>SIGLIP_MPI_LIBRARY</c> when set, else <c>libmpi.so.40</c> (Open MPI 3.x-5.x), else <c>libmpi.so</c>.
/// </para>
/// <para>
/// ABI: in Open MPI a handle (<c>MPI_Comm</c>, <c>MPI_Datatype</c>, <c>MPI_Op</c>) is a pointer to an
/// exported global object: <c>MPI_COMM_WORLD</c> is the address of <c>ompi_mpi_comm_world</c>,
/// <c>MPI_DOUBLE</c> of <c>ompi_mpi_double</c>, <c>MPI_FLOAT</c> of <c>ompi_mpi_float</c>,
/// <c>MPI_SUM</c> of <c>ompi_mpi_op_sum</c>; <c>MPI_IN_PLACE</c> is <c>(void*)1</c> and
/// <c>MPI_STATUS_IGNORE</c> is a null pointer. MPICH and its derivatives (Intel MPI, MVAPICH, Cray
/// MPICH) use 32-bit integer handles defined in their header instead; they are detected and refused
/// with a message, not guessed at.
/// </para>
/// </remarks>
internal sealed unsafe class MpiNative
{
    /// <summary>The environment variable that names the MPI library to load (a path or a file name).</summary>
    public const string LibraryVariable = "SIGLIP_MPI_LIBRARY";

    /// <summary>The names tried, in order, when <see cref="LibraryVariable"/> is not set.</summary>
    public static readonly string[] DefaultNames = OperatingSystem.IsMacOS()
        ? ["libmpi.40.dylib", "libmpi.dylib"]
        : ["libmpi.so.40", "libmpi.so"];

    // Values from Open MPI's mpi.h (the same numbers in MPICH for these).
    public const int Success = 0;                 // MPI_SUCCESS
    public const int ThreadSerialized = 2;        // MPI_THREAD_SERIALIZED (SINGLE 0, FUNNELED 1, MULTIPLE 3)
    private static readonly nint InPlace = 1;     // MPI_IN_PLACE (Open MPI)
    private const int MaxLibraryVersion = 8192;   // >= MPI_MAX_LIBRARY_VERSION_STRING of Open MPI (256) and MPICH (8192)
    private const int MaxErrorString = 1024;      // >= MPI_MAX_ERROR_STRING (256 in Open MPI)

    // Handles: addresses of Open MPI's exported globals.
    public nint CommWorld { get; }
    private readonly nint _float, _double, _opSum;

    // int MPI_Init_thread(int *argc, char ***argv, int required, int *provided)
    private readonly delegate* unmanaged<nint, nint, int, int*, int> _initThread;
    // int MPI_Initialized(int *flag), int MPI_Finalized(int *flag)
    private readonly delegate* unmanaged<int*, int> _initialized, _finalized;
    // int MPI_Finalize(void)
    private readonly delegate* unmanaged<int> _finalize;
    // int MPI_Comm_rank(MPI_Comm, int *), int MPI_Comm_size(MPI_Comm, int *)
    private readonly delegate* unmanaged<nint, int*, int> _commRank, _commSize;
    // int MPI_Sendrecv(const void *sendbuf, int sendcount, MPI_Datatype, int dest, int sendtag,
    //                  void *recvbuf, int recvcount, MPI_Datatype, int source, int recvtag, MPI_Comm, MPI_Status *)
    private readonly delegate* unmanaged<void*, int, nint, int, int, void*, int, nint, int, int, nint, nint, int> _sendrecv;
    // int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype, MPI_Op, MPI_Comm)
    private readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, int> _allreduce;
    // int MPI_Bcast(void *buffer, int count, MPI_Datatype, int root, MPI_Comm)
    private readonly delegate* unmanaged<void*, int, nint, int, nint, int> _bcast;
    // int MPI_Barrier(MPI_Comm)
    private readonly delegate* unmanaged<nint, int> _barrier;
    // int MPI_Abort(MPI_Comm, int errorcode)
    private readonly delegate* unmanaged<nint, int, int> _abort;
    // int MPI_Error_string(int errorcode, char *string, int *resultlen)
    private readonly delegate* unmanaged<int, byte*, int*, int> _errorString;

    /// <summary>Where the library came from (the name or path that loaded).</summary>
    public string LoadedFrom { get; }

    /// <summary>MPI_Get_library_version's text, first line (e.g. "Open MPI v4.1.4, package: ...").</summary>
    public string Version { get; }

    private MpiNative(nint library, string loadedFrom)
    {
        LoadedFrom = loadedFrom;
        Version = FirstLine(LibraryVersion(library) ?? "");

        if (!NativeLibrary.TryGetExport(library, "ompi_mpi_comm_world", out var world))
            throw new MpiNotAvailableException(NotOpenMpiMessage(loadedFrom, Version));
        CommWorld = world;
        _float = Export(library, "ompi_mpi_float");
        _double = Export(library, "ompi_mpi_double");
        _opSum = Export(library, "ompi_mpi_op_sum");

        _initThread = (delegate* unmanaged<nint, nint, int, int*, int>)Export(library, "MPI_Init_thread");
        _initialized = (delegate* unmanaged<int*, int>)Export(library, "MPI_Initialized");
        _finalized = (delegate* unmanaged<int*, int>)Export(library, "MPI_Finalized");
        _finalize = (delegate* unmanaged<int>)Export(library, "MPI_Finalize");
        _commRank = (delegate* unmanaged<nint, int*, int>)Export(library, "MPI_Comm_rank");
        _commSize = (delegate* unmanaged<nint, int*, int>)Export(library, "MPI_Comm_size");
        _sendrecv = (delegate* unmanaged<void*, int, nint, int, int, void*, int, nint, int, int, nint, nint, int>)Export(library, "MPI_Sendrecv");
        _allreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, int>)Export(library, "MPI_Allreduce");
        _bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export(library, "MPI_Bcast");
        _barrier = (delegate* unmanaged<nint, int>)Export(library, "MPI_Barrier");
        _abort = (delegate* unmanaged<nint, int, int>)Export(library, "MPI_Abort");
        _errorString = (delegate* unmanaged<int, byte*, int*, int>)Export(library, "MPI_Error_string");
    }

    private static readonly Lazy<MpiNative> ProcessLibrary =
        new(() => Open(Environment.GetEnvironmentVariable(LibraryVariable)), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The library of this process, loaded once (what <see cref="Open"/> finds from the environment).</summary>
    public static MpiNative Instance => ProcessLibrary.Value;

    /// <summary>
    /// Loads Open MPI's libmpi: <paramref name="configured"/> (the value of SIGLIP_MPI_LIBRARY) when
    /// not empty, else the first of <see cref="DefaultNames"/> that loads. Throws
    /// <see cref="MpiNotAvailableException"/> saying what to install or set when none loads, and when
    /// the library is not Open MPI.
    /// </summary>
    public static MpiNative Open(string? configured)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            if (!NativeLibrary.TryLoad(configured, out var handle))
                throw new MpiNotAvailableException(
                    $"{LibraryVariable}={configured} does not load as a shared library ({DlError(configured)}). " +
                    $"Set {LibraryVariable} to the path of Open MPI's libmpi.so.40 (Debian/Ubuntu: /usr/lib/x86_64-linux-gnu/libmpi.so.40 " +
                    "from the package openmpi-bin), or unset it to search the default names.");
            return new MpiNative(handle, configured);
        }
        var tried = new List<string>();
        foreach (var name in DefaultNames)
        {
            if (NativeLibrary.TryLoad(name, out var handle)) return new MpiNative(handle, name);
            tried.Add(name);
        }
        throw new MpiNotAvailableException(
            $"Open MPI was not found: none of {string.Join(", ", tried)} loads. Install Open MPI " +
            "(Debian/Ubuntu: apt-get install openmpi-bin; Fedora/RHEL: dnf install openmpi, then module load mpi), " +
            $"or set {LibraryVariable} to the path of its libmpi.so.40.");
    }

    /// <summary>What an MPI library that lacks Open MPI's exported handles is, and why it is refused.</summary>
    internal static string NotOpenMpiMessage(string loadedFrom, string version)
    {
        var abi = ClassifyAbi(version);
        var fix = $"Install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin) and run under its mpirun, or set {LibraryVariable} " +
                  "to the path of Open MPI's libmpi.so.40.";
        return abi switch
        {
            MpiAbi.Mpich =>
                $"{loadedFrom} is MPICH-family MPI ({version}), which is not supported: MPICH, Intel MPI and MVAPICH pass " +
                $"handles (MPI_COMM_WORLD, MPI_DOUBLE, MPI_SUM) as integers defined in their mpi.h, and this binding reads " +
                $"Open MPI's exported handle objects (ompi_mpi_comm_world). {fix}",
            MpiAbi.OpenMpi =>
                $"{loadedFrom} says it is Open MPI ({version}) but does not export ompi_mpi_comm_world, so its handles " +
                $"cannot be read. {fix}",
            _ when version.Length > 0 =>
                $"{loadedFrom} is an MPI library this binding does not know ({version}): it does not export Open MPI's " +
                $"handle objects (ompi_mpi_comm_world). {fix}",
            _ =>
                $"{loadedFrom} is not an MPI library (it exports neither MPI_Get_library_version nor ompi_mpi_comm_world). {fix}",
        };
    }

    /// <summary>Which ABI family a MPI_Get_library_version text names.</summary>
    internal static MpiAbi ClassifyAbi(string version)
    {
        if (version.Contains("Open MPI", StringComparison.OrdinalIgnoreCase)) return MpiAbi.OpenMpi;
        foreach (var family in new[] { "MPICH", "Intel(R) MPI", "Intel MPI", "MVAPICH", "CRAY MPICH" })
            if (version.Contains(family, StringComparison.OrdinalIgnoreCase)) return MpiAbi.Mpich;
        return MpiAbi.Unknown;
    }

    /// <summary>MPI_Get_library_version, which MPI-3 allows before MPI_Init; null when not exported.</summary>
    private static string? LibraryVersion(nint library)
    {
        if (!NativeLibrary.TryGetExport(library, "MPI_Get_library_version", out var address)) return null;
        var getVersion = (delegate* unmanaged<byte*, int*, int>)address;
        var buffer = new byte[MaxLibraryVersion];
        int length = 0;
        fixed (byte* p = buffer)
            if (getVersion(p, &length) != Success) return null;
        return Encoding.UTF8.GetString(buffer, 0, Math.Clamp(length, 0, buffer.Length)).TrimEnd('\0', '\n', ' ');
    }

    private static string FirstLine(string text)
    {
        var end = text.IndexOfAny(['\n', '\r']);
        return (end < 0 ? text : text[..end]).Trim().TrimEnd(',');
    }

    private static nint Export(nint library, string name) =>
        NativeLibrary.TryGetExport(library, name, out var address)
            ? address
            : throw new MpiNotAvailableException($"the MPI library lacks the symbol {name}; Open MPI 3.0 or newer (libmpi.so.40) is needed.");

    private static string DlError(string path)
    {
        try { NativeLibrary.Load(path); return "it loaded on the second try"; }
        catch (Exception e)
        {
            // .NET's message ends with dlerror()'s line after its own advice; keep that line.
            var text = e.Message.Trim();
            var lastLine = text.LastIndexOf('\n');
            return lastLine < 0 ? text : text[(lastLine + 1)..].Trim();
        }
    }

    // ---- the calls ---------------------------------------------------------------------------------

    public bool IsInitialized() { int flag; Check(_initialized(&flag), "MPI_Initialized"); return flag != 0; }

    public bool IsFinalized() { int flag; Check(_finalized(&flag), "MPI_Finalized"); return flag != 0; }

    /// <summary>MPI_Init_thread(NULL, NULL, required, &amp;provided); returns the thread level provided.</summary>
    public int InitThread(int required)
    {
        int provided;
        Check(_initThread(0, 0, required, &provided), "MPI_Init_thread");
        return provided;
    }

    public void FinalizeMpi() => Check(_finalize(), "MPI_Finalize");

    public int CommRank() { int rank; Check(_commRank(CommWorld, &rank), "MPI_Comm_rank"); return rank; }

    public int CommSize() { int size; Check(_commSize(CommWorld, &size), "MPI_Comm_size"); return size; }

    /// <summary>MPI_Sendrecv on MPI_COMM_WORLD, tag 0, status ignored.</summary>
    public void SendReceive<T>(T[] send, int destination, T[] receive, int source, int count) where T : unmanaged
    {
        var type = DataType<T>();
        fixed (T* s = send)
        fixed (T* r = receive)
            Check(_sendrecv(s, count, type, destination, 0, r, count, type, source, 0, CommWorld, 0), "MPI_Sendrecv");
    }

    /// <summary>MPI_Allreduce(MPI_IN_PLACE, values, count, type, MPI_SUM, MPI_COMM_WORLD).</summary>
    public void AllReduceSum<T>(T[] values, int count) where T : unmanaged
    {
        var type = DataType<T>();
        fixed (T* v = values)
            Check(_allreduce((void*)InPlace, v, count, type, _opSum, CommWorld), "MPI_Allreduce");
    }

    public void Broadcast<T>(T[] values, int count, int root) where T : unmanaged
    {
        var type = DataType<T>();
        fixed (T* v = values)
            Check(_bcast(v, count, type, root, CommWorld), "MPI_Bcast");
    }

    public void Barrier() => Check(_barrier(CommWorld), "MPI_Barrier");

    /// <summary>MPI_Abort(MPI_COMM_WORLD, code): ends every rank of the job; does not return.</summary>
    [DoesNotReturn]
    public void Abort(int code)
    {
        _abort(CommWorld, code);
        // MPI_Abort should not return; if it does, the process must still end.
        Environment.Exit(code);
    }

    private nint DataType<T>() where T : unmanaged =>
        typeof(T) == typeof(double) ? _double
        : typeof(T) == typeof(float) ? _float
        : throw new NotSupportedException($"MPI buffers of {typeof(T).Name} are not supported; use float or double.");

    private void Check(int code, string call)
    {
        if (code == Success) return;
        var buffer = new byte[MaxErrorString];
        int length = 0;
        string text;
        fixed (byte* p = buffer)
            text = _errorString(code, p, &length) == Success
                ? Encoding.UTF8.GetString(buffer, 0, Math.Clamp(length, 0, buffer.Length))
                : "no description";
        throw new MpiException($"{call} failed with MPI error {code}: {text}");
    }
}

/// <summary>The MPI ABI families, as far as this binding tells them apart.</summary>
internal enum MpiAbi { OpenMpi, Mpich, Unknown }
