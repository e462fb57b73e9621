using SigLip.SpecTests.Data;

namespace SigLip.SpecTests.Cli;

/// <summary>
/// Issue 15: an argument that looks like an option is never a value of another option, and an
/// AggregateException from parallel work prints the message about the user's option, once.
/// </summary>
public sealed class CliInputTests
{
    [Fact]
    public void A_misspelt_option_after_a_multi_value_option_is_an_error_not_a_value()
    {
        var (code, _, err) = CliRunner.Run("embed", "--checkpoint", "no-such-checkpoint", "--texts", "a cat", "--ouT", "x");
        Assert.Equal(1, code);
        Assert.Contains("'--ouT' looks like an option, not a value of --texts", err);
        Assert.Contains("did you mean --out?", err);
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void Negative_numbers_and_texts_with_dashes_are_still_values()
    {
        Assert.Empty(SigLip.Cli.Cli.OptionLikeValues(SigLip.Cli.Cli.CreateRoot().Parse(["embed", "--checkpoint", "c", "--texts", "a cat", "-5", "- x", "--out", "o"])));
        Assert.Single(SigLip.Cli.Cli.OptionLikeValues(SigLip.Cli.Cli.CreateRoot().Parse(["embed", "--checkpoint", "c", "--texts", "a cat", "-q"])));
    }

    [Fact]
    public void A_misspelt_option_is_not_taken_as_a_positional_argument_either()
    {
        // `tokenize` takes its texts as arguments: `--texts a` (no such option) used to tokenize the text "--texts".
        var (code, _, err) = CliRunner.Run("tokenize", "--model", "no-such.model", "--texts", "a");
        Assert.Equal(1, code);
        var line = Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("'--texts' looks like an option, not a value of the argument <text>", line);
        Assert.Contains("not an option of 'tokenize'", line);
        // After `--` every token is a value, whatever it looks like.
        Assert.Empty(SigLip.Cli.Cli.OptionLikeValues(SigLip.Cli.Cli.CreateRoot().Parse(["tokenize", "--model", "m", "--", "--texts", "-q"])));
        Assert.Empty(SigLip.Cli.Cli.OptionLikeValues(SigLip.Cli.Cli.CreateRoot().Parse(["tokenize", "--model", "m", "a cat", "-5"])));
    }

    [Fact]
    public void Experiment_pairs_zero_names_pairs_in_one_line()
    {
        var (code, _, err) = CliRunner.Run("experiment", "batch-size", "--pairs", "0");
        Assert.Equal(1, code);
        var line = Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("--pairs 0", line);
        Assert.DoesNotContain("One or more errors", line);
    }

    [Fact]
    public void An_aggregate_of_the_same_error_prints_its_message_once()
    {
        var old = Console.Error;
        var captured = new StringWriter();
        int code;
        lock (CliRunner.ConsoleLock)
        {
            Console.SetError(captured);
            try
            {
                code = SigLip.Cli.Cli.ReportError(new AggregateException(new ArgumentException("--pairs 3 is wrong"), new AggregateException(new ArgumentException("--pairs 3 is wrong"))));
            }
            finally { Console.SetError(old); }
        }
        Assert.Equal(1, code);
        Assert.Equal("error: --pairs 3 is wrong", captured.ToString().Trim());
    }

    [Fact]
    public void A_throughput_batch_that_cannot_fit_on_the_CPU_is_refused_with_the_numbers_before_libtorch_allocates()
    {
        // It used to end the process with a segmentation fault inside libtorch. The check runs before libtorch
        // starts, so this needs no libtorch. Tiny config: the B x B logits (4e16 bytes) alone are far beyond any machine.
        var (code, _, err) = CliRunner.Run("throughput", "--backend", "torch", "--config", "tiny", "--batch", "100000000");
        Assert.Equal(1, code);
        var line = Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("--batch 100000000", line);
        Assert.Contains("is the most that fits", line);
    }
}

