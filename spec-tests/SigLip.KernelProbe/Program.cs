using System.Numerics;
using SigLip.Backends.Managed;
using SigLip.Backends.Managed.Kernels;

// Checks MatMul.General against C (+)= op(A)·op(B) written as plain loops in float64, on awkward shapes,
// both transposes, overwrite and accumulate, float and double, one and two threads. Bound per element:
// |kernel - exact| <= 2·γ_K·(|C0| + Σ_p |a·b|) + tiny, γ_K = (K+2)u / (1 - (K+2)u). Prints which kernel ran
// (ManagedBackend.DescribeCpu) and one line per failure; exit 0 when every product is within its bound.
int[] sizes = [1, 5, 7, 17, 33, 65, 130];
int[] depths = [1, 7, 33, 257];
int products = 0, failures = 0;
var rng = new Random(20261206);
foreach (int m in sizes)
foreach (int n in sizes)
foreach (int k in depths)
{
    bool transA = rng.Next(2) == 0, transB = rng.Next(2) == 0, accumulate = rng.Next(2) == 0;
    int threads = 1 + rng.Next(2);
    failures += Check<float>(m, n, k, transA, transB, accumulate, threads, Math.Pow(2, -24)) ? 0 : 1;
    failures += Check<double>(m, n, k, transA, transB, accumulate, threads, Math.Pow(2, -53)) ? 0 : 1;
    products += 2;
}
Console.WriteLine($"kernel: {ManagedBackend.DescribeCpu()}");
Console.WriteLine($"{products - failures} of {products} products within the rounding bound");
return failures == 0 ? 0 : 1;

bool Check<T>(int m, int n, int k, bool transA, bool transB, bool accumulate, int threads, double u) where T : unmanaged, IFloatingPointIeee754<T>
{
    int lda = transA ? m : k, ldb = transB ? k : n;
    T[] Random(int count) => Enumerable.Range(0, count).Select(_ => T.CreateChecked(2 * rng.NextDouble() - 1)).ToArray();
    var a = Random(m * k);
    var b = Random(k * n);
    var c0 = Random(m * n);
    var c = (T[])c0.Clone();
    MatMul.General(c, n, a, lda, transA, b, ldb, transB, m, n, k, accumulate, threads);
    double gamma = (k + 2) * u / (1 - (k + 2) * u);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double exact = accumulate ? double.CreateChecked(c0[i * n + j]) : 0, abs = Math.Abs(exact);
            for (int p = 0; p < k; p++)
            {
                double term = double.CreateChecked(transA ? a[p * lda + i] : a[i * lda + p]) * double.CreateChecked(transB ? b[j * ldb + p] : b[p * ldb + j]);
                exact += term;
                abs += Math.Abs(term);
            }
            double got = double.CreateChecked(c[i * n + j]), allowed = 2 * gamma * abs + double.Epsilon;
            if (!(Math.Abs(got - exact) <= allowed))
            {
                Console.WriteLine($"FAIL {typeof(T).Name} m={m} n={n} k={k} transA={transA} transB={transB} accumulate={accumulate} threads={threads}: " +
                    $"C[{i}, {j}] = {got:R}, exact {exact:R}, error {Math.Abs(got - exact):E3} > {allowed:E3}");
                return false;
            }
        }
    return true;
}
