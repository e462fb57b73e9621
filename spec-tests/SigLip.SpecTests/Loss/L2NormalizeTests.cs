using FsCheck.Fluent;
using SigLip.Reference.Layers;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Loss;

public sealed class L2NormalizeTests(ITestOutputHelper output)
{
    private static readonly Tolerance FiniteDifference = new(Atol: 1e-8, Rtol: 1e-6);

    [Fact]
    public void ForwardGivesUnitRowsAndSavesTheDivisor()
    {
        double[] input = [3, 4, 0, -1, 0, 0];
        var result = new double[6];
        var norms = new double[2];
        L2Normalize.Forward(result, norms, input, rows: 2, width: 3, epsilon: 0);
        AssertClose.Array(result, [0.6, 0.8, 0, -1, 0, 0], new Tolerance(0, 1e-15), "normalised rows");
        AssertClose.Array(norms, [5, 1], new Tolerance(0, 1e-15), "norms");

        L2Normalize.Forward(result, norms, input, rows: 2, width: 3, epsilon: 0.5);
        AssertClose.Array(result, [3 / 5.5, 4 / 5.5, 0, -1 / 1.5, 0, 0], new Tolerance(0, 1e-15), "normalised rows, eps 0.5");
        AssertClose.Array(norms, [5.5, 1.5], new Tolerance(0, 1e-15), "divisors, eps 0.5");
    }

    [Theory]
    [InlineData(0.0, 31UL)]
    [InlineData(1e-8, 32UL)]
    [InlineData(0.3, 33UL)]
    public void BackwardMatchesFiniteDifferences(double epsilon, ulong seed)
    {
        var gen = from rows in Gen.Choose(1, 4)
                  from width in Gen.Choose(1, 6)
                  from dataSeed in Gen.Choose(0, 1_000_000)
                  select (rows, width, dataSeed);
        Props.Check(gen, c =>
        {
            var (rows, width, dataSeed) = c;
            var input = LossCase.Embeddings(rows, width, dataSeed);
            var upstream = LossCase.Embeddings(rows, width, dataSeed + 1); // dL/dy, L = <upstream, y>
            var y = new double[rows * width];
            var norms = new double[rows];
            L2Normalize.Forward(y, norms, input, rows, width, epsilon);
            var dinput = Enumerable.Repeat(0.25, rows * width).ToArray(); // backward must ADD to this
            L2Normalize.Backward(dinput, upstream, y, norms, rows, width);
            for (int e = 0; e < dinput.Length; e++) dinput[e] -= 0.25;

            var expected = LossCase.FiniteDifferenceGradient(x =>
            {
                var yx = new double[rows * width];
                L2Normalize.Forward(yx, new double[rows], x, rows, width, epsilon);
                double sum = 0;
                for (int e = 0; e < yx.Length; e++) sum += upstream[e] * yx[e];
                return sum;
            }, input, p => LossCase.RowNorm(input, width, p / width));
            AssertClose.Array(dinput, expected, FiniteDifference, $"dL/dx (rows {rows}, width {width}, eps {epsilon}, data seed {dataSeed})");
            return true;
        }, seed, output);
    }

    [Fact]
    public void ZeroRowWithEpsilonHasGradientOneOverEpsilon()
    {
        // y = x / (0 + eps) near x = 0 is linear: dx = dy / eps.
        var y = new double[2];
        var norms = new double[1];
        L2Normalize.Forward(y, norms, [0.0, 0.0], 1, 2, 0.5);
        var dx = new double[2];
        L2Normalize.Backward(dx, [1.0, -3.0], y, norms, 1, 2);
        Assert.Equal([2.0, -6.0], dx);
    }
}
