using SigLip.Reference.Numerics;
using SigLip.Reference.Training;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Training;

public sealed class LearningRateScheduleTests
{
    private static readonly Tolerance Tight = new(1e-15, 1e-13);

    [Fact]
    public void EndpointsOfWarmupAndDecay()
    {
        var s = new LearningRateSchedule(PeakLearningRate: 1e-3, WarmupSteps: 10, TotalSteps: 110, MinLearningRate: 1e-5);
        AssertClose.Scalar(s.At(0), 1e-4, Tight, "first step: peak / W");
        AssertClose.Scalar(s.At(4), 5e-4, Tight, "middle of warmup");
        AssertClose.Scalar(s.At(9), 1e-3, Tight, "end of warmup");
        AssertClose.Scalar(s.At(10), 1e-3, Tight, "start of decay");
        AssertClose.Scalar(s.At(60), (1e-3 + 1e-5) / 2, Tight, "half way through the cosine");
        // Last step: cos(pi * 99/100) -> just above the floor.
        AssertClose.Scalar(s.At(109), 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + Math.Cos(Math.PI * 0.99)), Tight, "last step");
        Assert.True(s.At(109) > 1e-5);
        Assert.Equal(1e-5, s.At(110));
        Assert.Equal(1e-5, s.At(1000));
    }

    [Theory]
    [InlineData(0, 50)]
    [InlineData(7, 50)]
    [InlineData(50, 50)]
    [InlineData(1, 2)]
    public void RisesThroughWarmupThenNeverRises(int warmup, int total)
    {
        var s = new LearningRateSchedule(0.5, warmup, total, 0.01);
        for (int i = 1; i < total; i++)
        {
            if (i < warmup) Assert.True(s.At(i) > s.At(i - 1), $"step {i} should rise");
            else Assert.True(s.At(i) <= s.At(i - 1), $"step {i} should not rise");
            Assert.InRange(s.At(i), 0.01, 0.5);
        }
        Assert.True(s.At(0) > 0, "the first step already moves");
    }

    [Fact]
    public void InvalidSchedulesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new LearningRateSchedule(1e-3, 11, 10).Validate());
        Assert.Throws<ArgumentException>(() => new LearningRateSchedule(1e-3, 0, 0).Validate());
        Assert.Throws<ArgumentException>(() => new LearningRateSchedule(1e-3, 0, 10, 1e-2).Validate());
        Assert.Throws<ArgumentException>(() => new LearningRateSchedule(double.NaN, 0, 10).Validate());
    }
}
