using System.Numerics;

namespace SigLip.Backends.Managed.Kernels;

/// <summary>
/// The matrix-product family the managed backend's layers need: packed, blocked, SIMD and parallel
/// (the specification is the reference's Layers/Linear loop; spec-tests/Kernels prove them equal).
/// All matrices are row-major. T is float or double.
///   ABt: C[m,n] (+)= A[m,k] · B[n,k]ᵀ   Linear forward (weights [out, in]), attention scores Q·Kᵀ
///   AB : C[m,n] (+)= A[m,k] · B[k,n]    input gradient dX = dY · W, attention P·V
///   AtB: C[m,n] (+)= A[k,m]ᵀ · B[k,n]   weight gradient dW = dYᵀ · X
/// accumulate = false overwrites C; true adds to it (backward passes accumulate, as in llm.c).
/// float64 differs from the plain loop in float64 only by rounding: per element at most
/// about 2·K·2^-53·Σ_p|A(i,p)·B(p,j)| (FMA and a blocked summation order).
/// </summary>
public static class MatMul
{
    /// <summary>C[m,n] (+)= A[m,k] · B[n,k]ᵀ, fast (packed, SIMD, parallel).</summary>
    public static void ABt<T>(T[] c, T[] a, T[] b, int m, int n, int k, bool accumulate = false, int threads = 0) where T : unmanaged, IFloatingPointIeee754<T> =>
        General<T>(c, n, a, k, false, b, k, true, m, n, k, accumulate, threads);

    /// <summary>C[m,n] (+)= A[m,k] · B[k,n], fast.</summary>
    public static void AB<T>(T[] c, T[] a, T[] b, int m, int n, int k, bool accumulate = false, int threads = 0) where T : unmanaged, IFloatingPointIeee754<T> =>
        General<T>(c, n, a, k, false, b, n, false, m, n, k, accumulate, threads);

    /// <summary>C[m,n] (+)= A[k,m]ᵀ · B[k,n], fast.</summary>
    public static void AtB<T>(T[] c, T[] a, T[] b, int m, int n, int k, bool accumulate = false, int threads = 0) where T : unmanaged, IFloatingPointIeee754<T> =>
        General<T>(c, n, a, m, true, b, n, false, m, n, k, accumulate, threads);

    /// <summary>
    /// C[m,n] (+)= op(A)·op(B) on strided views: op(A)(i,p) = a[i*lda + p], or a[p*lda + i] when
    /// <paramref name="transposeA"/>; op(B)(p,j) = b[p*ldb + j], or b[j*ldb + p] when
    /// <paramref name="transposeB"/>; C(i,j) = c[i*ldc + j]. <paramref name="threads"/>: at most that many
    /// threads (0: every core; 1 keeps it on the calling thread, for use inside your own Parallel.For).
    /// </summary>
    public static void General<T>(Span<T> c, int ldc, ReadOnlySpan<T> a, int lda, bool transposeA,
        ReadOnlySpan<T> b, int ldb, bool transposeB, int m, int n, int k, bool accumulate = false, int threads = 0)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        Product(c, ldc, a, lda, transposeA, b, ldb, transposeB, m, n, k, accumulate, threads, portable: false);

    /// <summary>
    /// <see cref="General{T}(Span{T}, int, ReadOnlySpan{T}, int, bool, ReadOnlySpan{T}, int, bool, int, int, int, bool, int)"/>
    /// on whole arrays, for callers without spans (F#, scripts); offsets index into the arrays.
    /// </summary>
    public static void General<T>(T[] c, int ldc, T[] a, int lda, bool transposeA, T[] b, int ldb, bool transposeB,
        int m, int n, int k, bool accumulate = false, int threads = 0, int cOffset = 0, int aOffset = 0, int bOffset = 0)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        General<T>(c.AsSpan(cOffset), ldc, a.AsSpan(aOffset), lda, transposeA, b.AsSpan(bOffset), ldb, transposeB, m, n, k, accumulate, threads);

    /// <summary>Tests only: the portable Vector&lt;T&gt; product used where AVX2+FMA are absent, forced.</summary>
    internal static void GeneralPortable<T>(T[] c, int ldc, T[] a, int lda, bool transposeA, T[] b, int ldb, bool transposeB, int m, int n, int k, bool accumulate = false, int threads = 0)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        Product<T>(c, ldc, a, lda, transposeA, b, ldb, transposeB, m, n, k, accumulate, threads, portable: true);

    // Checks, clears C unless accumulating, pins, and runs the blocked product (or, for the tests, the portable one).
    private static unsafe void Product<T>(Span<T> c, int ldc, ReadOnlySpan<T> a, int lda, bool transposeA,
        ReadOnlySpan<T> b, int ldb, bool transposeB, int m, int n, int k, bool accumulate, int threads, bool portable)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Validate(c.Length, ldc, a.Length, lda, transposeA, b.Length, ldb, transposeB, m, n, k);
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double))
            throw new NotSupportedException($"MatMul supports float and double, not {typeof(T).Name}.");
        if (!accumulate)
            for (int i = 0; i < m; i++) c.Slice(i * ldc, n).Clear();
        fixed (T* pc = c)
        fixed (T* pa = a)
        fixed (T* pb = b)
        {
            if (portable) Gemm<T>.Portable(pa, lda, transposeA, pb, ldb, transposeB, pc, ldc, m, n, k, Threads.Resolve(threads));
            else Gemm<T>.Multiply(pa, lda, transposeA, pb, ldb, transposeB, pc, ldc, m, n, k, Threads.Resolve(threads));
        }
    }

    private static void Validate(int cLength, int ldc, int aLength, int lda, bool transA, int bLength, int ldb, bool transB, int m, int n, int k)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentException($"MatMul sizes must be non-negative, got m={m}, n={n}, k={k}.");
        if (m == 0 || n == 0) return;
        Check("C", cLength, m, n, ldc);
        if (k == 0) return;
        if (transA) Check("A (stored [k, m] for transposeA)", aLength, k, m, lda); else Check("A", aLength, m, k, lda);
        if (transB) Check("B (stored [n, k] for transposeB)", bLength, n, k, ldb); else Check("B", bLength, k, n, ldb);

        static void Check(string name, int length, int rows, int cols, int ld)
        {
            if (ld < cols) throw new ArgumentException($"MatMul operand {name}: leading dimension {ld} is smaller than its {cols} columns.");
            long needed = (long)(rows - 1) * ld + cols;
            if (length < needed)
                throw new ArgumentException($"MatMul operand {name}: [{rows}, {cols}] with leading dimension {ld} needs {needed} elements but has {length}.");
        }
    }
}
