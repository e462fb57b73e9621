using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SigLip.Backends.Managed.Kernels;

/// <summary>
/// The blocked, packed matrix product behind <see cref="MatMul"/>: C[m,n] += op(A)[m,k] · op(B)[k,n]
/// for float and double, in the Goto/BLIS shape:
///   for jc (NC columns of B)  -> for pc (KC deep)  -> pack B block [KC x NC] into NR-wide panels
///     -> for ic (MC rows of A) -> pack A block [MC x KC] into MR-tall panels
///       -> for jr, ir: a 6 x NR micro-kernel (NR = two Vector512 where AVX-512F is accelerated, else
///          two Vector256) kept in 12 registers, FMA. Both widths sum each element of C in the same
///          order (one FMA chain over p per KC slice), so they give the same bits.
/// On several threads (<see cref="ParallelProduct"/>) op(B) is packed once, shared, and the rows are
/// split into many small tasks that threads claim one at a time. Every element of C is summed in the
/// same order either way (KC slices in order, each by the same micro-kernel), so the parallel product
/// is bit-identical to the one-thread product.
/// Operands are raw pointers with leading dimensions, so strided views (one head of an attention
/// tensor) need no copies. Callers pin; this class never allocates large arrays after warm-up
/// (packing buffers are per-thread and pinned).
/// </summary>
internal static unsafe class Gemm<T> where T : unmanaged
{
    public const int MR = 6;
    /// <summary>Whether the micro-kernel runs on Vector512 (AVX-512F present and accelerated): NR doubles, each element is summed in the same order.</summary>
    public static readonly bool Wide = Vector512.IsHardwareAccelerated && Avx512F.IsSupported;
    public static readonly int NR = Wide ? 2 * Vector512<T>.Count : 2 * Vector256<T>.Count;
    // KC x NR panel of B (16 KB float / 16 KB double; 32 KB with Vector512) stays in L1; MC x KC of A (~100-200 KB) in L2.
    private static readonly int KC = typeof(T) == typeof(float) ? 256 : 128;
    private const int MC = 96;
    private static readonly int NC = typeof(T) == typeof(float) ? 2048 : 2048;

    // Row tasks per thread in the parallel product: enough that a thread slowed by another process
    // (or by another library's spinning workers) leaves its share to the others.
    private const int TasksPerThread = 8;
    // B panels packed per claimed packing task.
    private const int PackChunkPanels = 8;

    [ThreadStatic] private static T[]? packedA;
    [ThreadStatic] private static T[]? packedB;
    // All of op(B), packed by the threads of one parallel product; owned by the calling thread.
    [ThreadStatic] private static T[]? sharedPackedB;

    /// <summary>Work (m*n*k) below which one thread does the whole product.</summary>
    private const long SerialWork = 96L * 96 * 96;

    public static bool HardwareFast => Vector256.IsHardwareAccelerated && Fma.IsSupported
        && (typeof(T) == typeof(float) || typeof(T) == typeof(double));

    /// <summary>C += op(A)·op(B) on at most <paramref name="threads"/> threads. Element (i,p) of op(A) is a[i*lda+p], or a[p*lda+i] when transA.</summary>
    public static void Multiply(T* a, int lda, bool transA, T* b, int ldb, bool transB, T* c, int ldc,
        int m, int n, int k, int threads)
    {
        if (m <= 0 || n <= 0 || k <= 0) return;
        if (!HardwareFast)
        {
            Portable(a, lda, transA, b, ldb, transB, c, ldc, m, n, k, threads);
            return;
        }
        if ((long)m * n * k < SerialWork) threads = 1;
        if (threads > 1)
            ParallelProduct(a, lda, transA, b, ldb, transB, c, ldc, m, n, k, threads);
        else
            Blocked(a, lda, transA, b, ldb, transB, c, ldc, m, n, k);
    }

    /// <summary>The blocked product on the calling thread.</summary>
    private static void Blocked(T* a, int lda, bool transA, T* b, int ldb, bool transB, T* c, int ldc,
        int m, int n, int k)
    {
        int nr = NR;
        for (int jc = 0; jc < n; jc += NC)
        {
            int nc = Math.Min(NC, n - jc);
            int ncPanels = (nc + nr - 1) / nr;
            for (int pc = 0; pc < k; pc += KC)
            {
                int kc = Math.Min(KC, k - pc);
                T* bBlock = transB ? b + (long)jc * ldb + pc : b + (long)pc * ldb + jc;
                var pb = Buffer(ref packedB, (long)ncPanels * nr * KC);
                var pa = Buffer(ref packedA, (long)(MC / MR) * MR * KC);
                fixed (T* pbp = pb)
                fixed (T* pap = pa)
                {
                    for (int q = 0; q < ncPanels; q++)
                        PackB(bBlock + (transB ? (long)q * nr * ldb : q * nr), ldb, transB, kc, Math.Min(nr, nc - q * nr), pbp + (long)q * nr * kc);
                    for (int ic = 0; ic < m; ic += MC)
                    {
                        int mc = Math.Min(MC, m - ic);
                        int mPanels = (mc + MR - 1) / MR;
                        T* aBlock = transA ? a + (long)pc * lda + ic : a + (long)ic * lda + pc;
                        for (int r = 0; r < mPanels; r++)
                            PackA(aBlock + (transA ? r * MR : (long)r * MR * lda), lda, transA, kc, Math.Min(MR, mc - r * MR), pap + (long)r * MR * kc);
                        for (int q = 0; q < ncPanels; q++)
                        {
                            int j = jc + q * nr, ncols = Math.Min(nr, n - j);
                            T* bp = pbp + (long)q * nr * kc;
                            for (int r = 0; r < mPanels; r++)
                            {
                                int i = ic + r * MR, nrows = Math.Min(MR, m - i);
                                MicroKernel(kc, pap + (long)r * MR * kc, bp, c + (long)i * ldc + j, ldc, nrows, ncols);
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// The blocked product on several threads, in two rounds:
    ///   1. pack all of op(B) once: KC slice pc, panel q at packedB[pc*nPanels*NR + q*NR*kc];
    ///   2. tasks = chunks of MR-row panels (times column splits when there are few rows); each task
    ///      packs its own rows of A per KC slice and runs the micro-kernel over its columns.
    /// The calling thread starts at once and threads claim tasks one at a time, so the work is shared
    /// by whichever threads are running: a fixed split (one band per thread) waits for the slowest
    /// thread, and a thread that shares its core with another process is slow for milliseconds,
    /// which is a whole 1024³ product. The caller waits only for tasks that others have claimed,
    /// never for a pool thread that has not started yet (with two Parallel.For rounds a small
    /// product took milliseconds on a busy machine: see docs/fast-path.md).
    /// </summary>
    private static void ParallelProduct(T* a, int lda, bool transA, T* b, int ldb, bool transB, T* c, int ldc,
        int m, int n, int k, int threads)
    {
        int nr = NR;
        int nPanels = (n + nr - 1) / nr;                       // NR-wide column panels of op(B) and C
        int mPanels = (m + MR - 1) / MR;                       // MR-tall row panels of op(A) and C
        // Row chunks of at most MC rows, about TasksPerThread per thread; split the columns too
        // when the rows alone give fewer than 4 tasks per thread.
        int chunkPanels = Math.Clamp((mPanels + TasksPerThread * threads - 1) / (TasksPerThread * threads), 1, MC / MR);
        int rowChunks = (mPanels + chunkPanels - 1) / chunkPanels;
        int colSplits = rowChunks >= 4 * threads ? 1 : Math.Clamp((4 * threads + rowChunks - 1) / rowChunks, 1, Math.Max(1, nPanels / 4));
        int packChunks = (nPanels + PackChunkPanels - 1) / PackChunkPanels;
        var packedB = Buffer(ref sharedPackedB, (long)k * nPanels * nr); // pinned: its address is stable
        var product = new SharedProduct
        {
            A = a, Lda = lda, TransA = transA, B = b, Ldb = ldb, TransB = transB, C = c, Ldc = ldc, M = m, N = n, K = k,
            PackedBArray = packedB, PackedB = (T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(packedB)),
            NPanels = nPanels, MPanels = mPanels, ChunkPanels = chunkPanels, ColSplits = colSplits,
            PackChunks = packChunks, PackTasks = (k + KC - 1) / KC * packChunks, Tasks = rowChunks * colSplits,
        };
        for (int t = 1; t < threads; t++)
            ThreadPool.UnsafeQueueUserWorkItem(product, preferLocal: false);
        product.Work();
        product.WaitForClaimedTasks();
    }

    /// <summary>One parallel product's operands and task counters, shared by the threads that join it.</summary>
    private sealed class SharedProduct : IThreadPoolWorkItem
    {
        public T* A, B, C, PackedB;
        public int Lda, Ldb, Ldc, M, N, K;
        public bool TransA, TransB;
        public T[]? PackedBArray;                              // keeps the pinned packed op(B) alive
        public int NPanels, MPanels, ChunkPanels, ColSplits, PackChunks, PackTasks, Tasks;
        private int packClaimed, packDone, claimed, done;
        private readonly ManualResetEventSlim finished = new(false);
        private Exception? error;

        /// <summary>A pool thread joining in; it finds nothing to do if it starts after the work is claimed.</summary>
        public void Execute() => Work();

        public void Work()
        {
            for (int task; (task = Interlocked.Increment(ref packClaimed) - 1) < PackTasks;)
            {
                try { Pack(task); }
                catch (Exception ex) { Interlocked.CompareExchange(ref error, ex, null); }
                finally { Interlocked.Increment(ref packDone); }
            }
            if (Volatile.Read(ref claimed) >= Tasks) return;
            // Every task reads all of op(B): wait for the packing chunks other threads still hold (short).
            var spin = new SpinWait();
            while (Volatile.Read(ref packDone) < PackTasks) spin.SpinOnce(sleep1Threshold: -1);
            var pa = Buffer(ref packedA, (long)ChunkPanels * MR * KC); // this thread's, pinned
            T* pap = (T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pa));
            for (int task; (task = Interlocked.Increment(ref claimed) - 1) < Tasks;)
            {
                try { Compute(task, pap); }
                catch (Exception ex) { Interlocked.CompareExchange(ref error, ex, null); }
                finally { if (Interlocked.Increment(ref done) == Tasks) finished.Set(); }
            }
        }

        public void WaitForClaimedTasks()
        {
            if (Tasks > 0) finished.Wait();
            if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }

        private void Pack(int task)
        {
            int nr = NR;
            int pc = task / PackChunks * KC, kc = Math.Min(KC, K - pc);
            int q0 = task % PackChunks * PackChunkPanels, q1 = Math.Min(NPanels, q0 + PackChunkPanels);
            for (int q = q0; q < q1; q++)
            {
                int j = q * nr;
                PackB(TransB ? B + (long)j * Ldb + pc : B + (long)pc * Ldb + j, Ldb, TransB, kc, Math.Min(nr, N - j),
                    PackedB + (long)pc * NPanels * nr + (long)q * nr * kc);
            }
        }

        // Rows [r0, r1) x MR, column panels [q0, q1): for each NC block and KC slice in order, pack
        // this chunk's A and run the micro-kernel, exactly as the one-thread product does.
        private void Compute(int task, T* pap)
        {
            int nr = NR, m = M, n = N, k = K;
            int r0 = task / ColSplits * ChunkPanels, r1 = Math.Min(MPanels, r0 + ChunkPanels);
            int split = task % ColSplits;
            int q0 = (int)((long)NPanels * split / ColSplits), q1 = (int)((long)NPanels * (split + 1) / ColSplits);
            int i0 = r0 * MR, ncPanels = NC / nr;
            for (int jq = q0; jq < q1; jq += ncPanels)
            {
                int jqEnd = Math.Min(q1, jq + ncPanels);
                for (int pc = 0; pc < k; pc += KC)
                {
                    int kc = Math.Min(KC, k - pc);
                    T* aBlock = TransA ? A + (long)pc * Lda + i0 : A + (long)i0 * Lda + pc;
                    for (int r = 0; r < r1 - r0; r++)
                        PackA(aBlock + (TransA ? r * MR : (long)r * MR * Lda), Lda, TransA, kc, Math.Min(MR, m - i0 - r * MR), pap + (long)r * MR * kc);
                    T* bSlice = PackedB + (long)pc * NPanels * nr;
                    for (int q = jq; q < jqEnd; q++)
                    {
                        int j = q * nr, ncols = Math.Min(nr, n - j);
                        T* bp = bSlice + (long)q * nr * kc;
                        for (int r = 0; r < r1 - r0; r++)
                        {
                            int i = i0 + r * MR;
                            MicroKernel(kc, pap + (long)r * MR * kc, bp, C + (long)i * Ldc + j, Ldc, Math.Min(MR, m - i), ncols);
                        }
                    }
                }
            }
        }
    }

    private static T[] Buffer(ref T[]? buffer, long length)
    {
        if (buffer is null || buffer.Length < length)
            buffer = GC.AllocateUninitializedArray<T>((int)length, pinned: true);
        return buffer;
    }

    // A panel: MR rows x kc, stored p-major: dst[p*MR + r] = A(r, p); rows past `rows` are zero.
    private static void PackA(T* a, int lda, bool transA, int kc, int rows, T* dst)
    {
        if (transA)
        {
            for (int p = 0; p < kc; p++)
            {
                T* src = a + (long)p * lda;
                T* d = dst + p * MR;
                int r = 0;
                for (; r < rows; r++) d[r] = src[r];
                for (; r < MR; r++) d[r] = default;
            }
        }
        else
        {
            for (int r = 0; r < rows; r++)
            {
                T* src = a + (long)r * lda;
                for (int p = 0; p < kc; p++) dst[p * MR + r] = src[p];
            }
            for (int r = rows; r < MR; r++)
                for (int p = 0; p < kc; p++) dst[p * MR + r] = default;
        }
    }

    // B panel: kc x NR, stored p-major: dst[p*NR + j] = B(p, j); columns past `cols` are zero.
    private static void PackB(T* b, int ldb, bool transB, int kc, int cols, T* dst)
    {
        int nr = NR;
        if (transB)
        {
            for (int j = 0; j < cols; j++)
            {
                T* src = b + (long)j * ldb;
                for (int p = 0; p < kc; p++) dst[p * nr + j] = src[p];
            }
            for (int j = cols; j < nr; j++)
                for (int p = 0; p < kc; p++) dst[p * nr + j] = default;
        }
        else if (cols == nr)
        {
            int w = Vector256<T>.Count;
            for (int p = 0; p < kc; p++)
            {
                T* src = b + (long)p * ldb;
                for (int x = 0; x < nr; x += w) Vector256.Store(Vector256.Load(src + x), dst + p * nr + x);
            }
        }
        else
        {
            for (int p = 0; p < kc; p++)
            {
                T* src = b + (long)p * ldb;
                T* d = dst + p * nr;
                int j = 0;
                for (; j < cols; j++) d[j] = src[j];
                for (; j < nr; j++) d[j] = default;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> MulAdd(Vector256<T> x, Vector256<T> y, Vector256<T> acc)
    {
        if (typeof(T) == typeof(float))
            return Fma.MultiplyAdd(x.AsSingle(), y.AsSingle(), acc.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double))
            return Fma.MultiplyAdd(x.AsDouble(), y.AsDouble(), acc.AsDouble()).As<double, T>();
        throw new NotSupportedException();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> MulAdd(Vector512<T> x, Vector512<T> y, Vector512<T> acc)
    {
        if (typeof(T) == typeof(float))
            return Avx512F.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), acc.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double))
            return Avx512F.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), acc.AsDouble()).As<double, T>();
        throw new NotSupportedException();
    }

    // C[rows x cols] += Apanel(6 x kc) · Bpanel(kc x NR), accumulated in registers.
    private static void MicroKernel(int kc, T* ap, T* bp, T* c, int ldc, int rows, int cols)
    {
        if (Wide)
        {
            MicroKernel512(kc, ap, bp, c, ldc, rows, cols);
            return;
        }
        int w = Vector256<T>.Count;
        int nr = 2 * w;
        Vector256<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<T> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(bp);
            var b1 = Vector256.Load(bp + w);
            var a0 = Vector256.Create(ap[0]);
            c00 = MulAdd(a0, b0, c00); c01 = MulAdd(a0, b1, c01);
            var a1 = Vector256.Create(ap[1]);
            c10 = MulAdd(a1, b0, c10); c11 = MulAdd(a1, b1, c11);
            var a2 = Vector256.Create(ap[2]);
            c20 = MulAdd(a2, b0, c20); c21 = MulAdd(a2, b1, c21);
            var a3 = Vector256.Create(ap[3]);
            c30 = MulAdd(a3, b0, c30); c31 = MulAdd(a3, b1, c31);
            var a4 = Vector256.Create(ap[4]);
            c40 = MulAdd(a4, b0, c40); c41 = MulAdd(a4, b1, c41);
            var a5 = Vector256.Create(ap[5]);
            c50 = MulAdd(a5, b0, c50); c51 = MulAdd(a5, b1, c51);
            ap += MR;
            bp += nr;
        }
        if (rows == MR && cols == nr)
        {
            AddRow(c, c00, c01, w); AddRow(c + ldc, c10, c11, w); AddRow(c + 2L * ldc, c20, c21, w);
            AddRow(c + 3L * ldc, c30, c31, w); AddRow(c + 4L * ldc, c40, c41, w); AddRow(c + 5L * ldc, c50, c51, w);
            return;
        }
        T* tile = stackalloc T[MR * 2 * Vector256<T>.Count];
        Vector256.Store(c00, tile); Vector256.Store(c01, tile + w);
        Vector256.Store(c10, tile + nr); Vector256.Store(c11, tile + nr + w);
        Vector256.Store(c20, tile + 2 * nr); Vector256.Store(c21, tile + 2 * nr + w);
        Vector256.Store(c30, tile + 3 * nr); Vector256.Store(c31, tile + 3 * nr + w);
        Vector256.Store(c40, tile + 4 * nr); Vector256.Store(c41, tile + 4 * nr + w);
        Vector256.Store(c50, tile + 5 * nr); Vector256.Store(c51, tile + 5 * nr + w);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
                c[(long)r * ldc + j] = Add(c[(long)r * ldc + j], tile[r * nr + j]);
    }

    // The same micro-kernel on Vector512 (NR = two Vector512): each C element is still one FMA chain over p, in order.
    private static void MicroKernel512(int kc, T* ap, T* bp, T* c, int ldc, int rows, int cols)
    {
        int w = Vector512<T>.Count;
        int nr = 2 * w;
        Vector512<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<T> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(bp);
            var b1 = Vector512.Load(bp + w);
            var a0 = Vector512.Create(ap[0]);
            c00 = MulAdd(a0, b0, c00); c01 = MulAdd(a0, b1, c01);
            var a1 = Vector512.Create(ap[1]);
            c10 = MulAdd(a1, b0, c10); c11 = MulAdd(a1, b1, c11);
            var a2 = Vector512.Create(ap[2]);
            c20 = MulAdd(a2, b0, c20); c21 = MulAdd(a2, b1, c21);
            var a3 = Vector512.Create(ap[3]);
            c30 = MulAdd(a3, b0, c30); c31 = MulAdd(a3, b1, c31);
            var a4 = Vector512.Create(ap[4]);
            c40 = MulAdd(a4, b0, c40); c41 = MulAdd(a4, b1, c41);
            var a5 = Vector512.Create(ap[5]);
            c50 = MulAdd(a5, b0, c50); c51 = MulAdd(a5, b1, c51);
            ap += MR;
            bp += nr;
        }
        if (rows == MR && cols == nr)
        {
            AddRow512(c, c00, c01, w); AddRow512(c + ldc, c10, c11, w); AddRow512(c + 2L * ldc, c20, c21, w);
            AddRow512(c + 3L * ldc, c30, c31, w); AddRow512(c + 4L * ldc, c40, c41, w); AddRow512(c + 5L * ldc, c50, c51, w);
            return;
        }
        T* tile = stackalloc T[MR * 2 * Vector512<T>.Count];
        Vector512.Store(c00, tile); Vector512.Store(c01, tile + w);
        Vector512.Store(c10, tile + nr); Vector512.Store(c11, tile + nr + w);
        Vector512.Store(c20, tile + 2 * nr); Vector512.Store(c21, tile + 2 * nr + w);
        Vector512.Store(c30, tile + 3 * nr); Vector512.Store(c31, tile + 3 * nr + w);
        Vector512.Store(c40, tile + 4 * nr); Vector512.Store(c41, tile + 4 * nr + w);
        Vector512.Store(c50, tile + 5 * nr); Vector512.Store(c51, tile + 5 * nr + w);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
                c[(long)r * ldc + j] = Add(c[(long)r * ldc + j], tile[r * nr + j]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow512(T* c, Vector512<T> v0, Vector512<T> v1, int w)
    {
        Vector512.Store(Vector512.Load(c) + v0, c);
        Vector512.Store(Vector512.Load(c + w) + v1, c + w);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow(T* c, Vector256<T> v0, Vector256<T> v1, int w)
    {
        Vector256.Store(Vector256.Load(c) + v0, c);
        Vector256.Store(Vector256.Load(c + w) + v1, c + w);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T Add(T x, T y)
    {
        if (typeof(T) == typeof(float)) return (T)(object)((float)(object)x + (float)(object)y);
        if (typeof(T) == typeof(double)) return (T)(object)((double)(object)x + (double)(object)y);
        throw new NotSupportedException();
    }

    /// <summary>
    /// Without AVX2+FMA: row-by-row axpy with Vector&lt;T&gt; over a contiguous copy of op(B).
    /// Slower, but still cache-friendly and parallel.
    /// </summary>
    internal static void Portable(T* a, int lda, bool transA, T* b, int ldb, bool transB, T* c, int ldc,
        int m, int n, int k, int threads)
    {
        if (typeof(T) == typeof(float))
            FallbackTyped((float*)a, lda, transA, (float*)b, ldb, transB, (float*)c, ldc, m, n, k, threads);
        else if (typeof(T) == typeof(double))
            FallbackTyped((double*)a, lda, transA, (double*)b, ldb, transB, (double*)c, ldc, m, n, k, threads);
        else throw new NotSupportedException();
    }

    private static void FallbackTyped<U>(U* a, int lda, bool transA, U* b, int ldb, bool transB, U* c, int ldc,
        int m, int n, int k, int threads) where U : unmanaged, System.Numerics.INumber<U>
    {
        // op(B) as a dense [k, n] copy so that each row is contiguous.
        var bDense = GC.AllocateUninitializedArray<U>(k * n, pinned: true);
        fixed (U* bd = bDense)
        {
            for (int p = 0; p < k; p++)
                for (int j = 0; j < n; j++)
                    bd[(long)p * n + j] = transB ? b[(long)j * ldb + p] : b[(long)p * ldb + j];
            U* bdp = bd;
            void Row(int i)
            {
                var cRow = new Span<U>(c + (long)i * ldc, n);
                int vw = System.Numerics.Vector<U>.Count;
                for (int p = 0; p < k; p++)
                {
                    U aip = transA ? a[(long)p * lda + i] : a[(long)i * lda + p];
                    var bRow = new ReadOnlySpan<U>(bdp + (long)p * n, n);
                    var av = new System.Numerics.Vector<U>(aip);
                    int j = 0;
                    for (; j <= n - vw; j += vw)
                        (new System.Numerics.Vector<U>(cRow.Slice(j)) + av * new System.Numerics.Vector<U>(bRow.Slice(j))).CopyTo(cRow.Slice(j));
                    for (; j < n; j++) cRow[j] += aip * bRow[j];
                }
            }
            if (threads > 1 && (long)m * n * k >= SerialWork) Parallel.For(0, m, new ParallelOptions { MaxDegreeOfParallelism = threads }, Row);
            else for (int i = 0; i < m; i++) Row(i);
        }
    }
}
