using FsCheck.Fluent;
using SigLip.Backends.Managed.Kernels;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Kernels;

/// <summary>
/// The managed backend's matrix products against the three plain loops (the definition of C (+)= op(A)·op(B),
/// written in this test), on awkward shapes (1, 7, 33, 65, ... : not
/// multiples of the 6 x NR micro-tile or the KC/MC blocks), both transposes, overwrite and accumulate.
/// Bound: |fast - naive| &lt;= 2·γ_K·(|C0| + Σ_p|A(i,p)·B(p,j)|), γ_K = (K+2)u/(1-(K+2)u),
/// u = 2^-53 (float64) or 2^-24 (float32).
/// </summary>
public sealed class MatMulKernelTests(ITestOutputHelper output)
{
    private static readonly int[] Sizes = [1, 2, 5, 6, 7, 16, 17, 33, 65, 97, 130, 200];
    private static readonly int[] Depths = [1, 3, 7, 33, 65, 129, 257, 300];

    private sealed record Case(int M, int N, int K, bool TransA, bool TransB, bool Accumulate, int Seed)
    {
        public override string ToString() => $"m={M} n={N} k={K} transA={TransA} transB={TransB} accumulate={Accumulate} data seed={Seed}";
    }

    private static readonly FsCheck.Gen<Case> Cases =
        from m in Gen.Elements(Sizes)
        from n in Gen.Elements(Sizes)
        from k in Gen.Elements(Depths)
        from ta in Gen.Elements(false, true)
        from tb in Gen.Elements(false, true)
        from acc in Gen.Elements(false, true)
        from seed in Gen.Choose(0, 1_000_000)
        select new Case(m, n, k, ta, tb, acc, seed);

    [Fact]
    public void Float64_fast_equals_naive_within_rounding_bound() =>
        Props.Check(Cases, c => Run<double>(c), seed: 880_101, output, maxTest: 60);

    [Fact]
    public void Float32_fast_equals_naive_within_rounding_bound() =>
        Props.Check(Cases, c => Run<float>(c), seed: 880_102, output, maxTest: 60);

    [Fact]
    public void Portable_fallback_equals_naive_within_rounding_bound()
    {
        // The portable path (used where AVX2+FMA are absent), called directly.
        Props.Check(Cases, c => Run<double>(c, portable: true) && Run<float>(c, portable: true), seed: 880_103, output, maxTest: 20);
    }

    [Fact]
    public void Large_parallel_product_equals_naive_within_rounding_bound()
    {
        // Several KC, MC and NR blocks on every axis, run across all cores.
        Assert.True(Run<double>(new Case(301, 263, 700, false, true, true, 7)));
        Assert.True(Run<float>(new Case(263, 301, 530, true, false, false, 8)));
    }

    [Fact]
    public void Wrappers_name_the_layouts_they_compute()
    {
        // ABt, AB, AtB agree with General on the layouts their names state.
        var rng = new Random(3);
        int m = 7, n = 9, k = 11;
        var a = TestData.Uniform(rng, m * k);
        var bt = TestData.Uniform(rng, n * k);
        var expected = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += a[i * k + p] * bt[j * k + p];
                expected[i * n + j] = s;
            }
        var c = new double[m * n];
        MatMul.ABt(c, a, bt, m, n, k);
        AssertClose.Array(c, expected, KernelTolerances.Float64, "ABt");
        var b = Transpose(bt, n, k);                    // [k, n]
        MatMul.AB(c, a, b, m, n, k);
        AssertClose.Array(c, expected, KernelTolerances.Float64, "AB");
        var at = Transpose(a, m, k);                    // [k, m]
        MatMul.AtB(c, at, b, m, n, k);
        AssertClose.Array(c, expected, KernelTolerances.Float64, "AtB");
    }

    [Fact]
    public void Too_short_buffers_are_rejected_with_the_operand_named()
    {
        var ex = Assert.Throws<ArgumentException>(() => MatMul.ABt(new double[6], new double[5], new double[6], 2, 3, 3));
        Assert.Contains("operand A", ex.Message);
        Assert.Contains("needs 6", ex.Message);
    }

    private static double[] Transpose(double[] x, int rows, int cols)
    {
        var t = new double[x.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) t[c * rows + r] = x[r * cols + c];
        return t;
    }

    private static bool Run<T>(Case c, bool portable = false) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var rng = new Random(c.Seed);
        int lda = c.TransA ? c.M : c.K, ldb = c.TransB ? c.K : c.N;
        var a = TestData.Uniform(rng, c.M * c.K);
        var b = TestData.Uniform(rng, c.K * c.N);
        var c0 = TestData.Uniform(rng, c.M * c.N);
        var aT = TestData.As<T>(a);
        var bT = TestData.As<T>(b);
        var fast = TestData.As<T>(c0);
        var naive = TestData.As<T>(c0);
        if (portable) MatMul.GeneralPortable<T>(fast, c.N, aT, lda, c.TransA, bT, ldb, c.TransB, c.M, c.N, c.K, c.Accumulate);
        else MatMul.General<T>(fast, c.N, aT, lda, c.TransA, bT, ldb, c.TransB, c.M, c.N, c.K, c.Accumulate);
        PlainProduct(naive, c.N, aT, lda, c.TransA, bT, ldb, c.TransB, c.M, c.N, c.K, c.Accumulate);
        // Σ|a·b| (+|C0| when accumulating) in float64 from the same (rounded) inputs.
        var ad = TestData.ToDouble(aT);
        var bd = TestData.ToDouble(bT);
        var c0d = TestData.ToDouble(TestData.As<T>(c0));
        var abs = new double[c.M * c.N];
        for (int i = 0; i < c.M; i++)
            for (int j = 0; j < c.N; j++)
            {
                double s = c.Accumulate ? Math.Abs(c0d[i * c.N + j]) : 0;
                for (int p = 0; p < c.K; p++)
                    s += Math.Abs((c.TransA ? ad[p * lda + i] : ad[i * lda + p]) * (c.TransB ? bd[j * ldb + p] : bd[p * ldb + j]));
                abs[i * c.N + j] = s;
            }
        DotBound.Assert(TestData.ToDouble(fast), TestData.ToDouble(naive), abs, c.K, KernelTolerances.UnitRoundoff<T>(), $"{typeof(T).Name} {c}");
        return true;
    }

    /// <summary>C[m,n] (+)= op(A)·op(B), one dot product per element summed in order: the definition the kernels are held to.</summary>
    private static void PlainProduct<T>(T[] c, int ldc, T[] a, int lda, bool transA, T[] b, int ldb, bool transB, int m, int n, int k, bool accumulate)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                T sum = T.Zero;
                for (int p = 0; p < k; p++)
                    sum += (transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
            }
    }

    /// <summary>
    /// On a CPU with AVX-512 the in-process tests above run the Vector512 micro-kernel only; this starts
    /// spec-tests/SigLip.KernelProbe with AVX-512 switched off in the runtime, so the Vector256 one (what AVX2
    /// machines run) is checked against the plain definition too, within the same rounding bound.
    /// </summary>
    [SkippableFact]
    public void The_Vector256_micro_kernel_is_checked_too_where_the_CPU_would_pick_Vector512()
    {
        Skip.IfNot(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated,
            "this CPU has no accelerated AVX-512: the tests above already run the Vector256 micro-kernel in-process");
        var probe = Path.Combine(AppContext.BaseDirectory, "SigLip.KernelProbe.dll");
        Assert.True(File.Exists(probe), $"{probe} is missing: the test project references spec-tests/SigLip.KernelProbe");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(probe);
        start.Environment["DOTNET_EnableAVX512F"] = "0";
        start.Environment["DOTNET_EnableAVX512"] = "0";
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "the kernel probe did not finish within 2 minutes");
        string printed = stdout.Result + stderr.Result;
        output.WriteLine(printed);
        Assert.Contains("kernel: AVX2+FMA", printed);
        Assert.DoesNotContain("AVX-512F GEMM", printed); // the runtime switch took: the Vector256 kernel ran
        Assert.True(process.ExitCode == 0, $"the Vector256 micro-kernel left the rounding bound:\n{printed}");
    }
}
