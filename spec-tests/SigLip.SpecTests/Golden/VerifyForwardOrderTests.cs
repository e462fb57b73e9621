using SigLip.Reference.IO.Golden;
using SigLip.SpecTests.Support;

namespace SigLip.SpecTests.Golden;

/// <summary><c>golden verify</c> reports tensors in forward order (<see cref="Intermediates"/>) and names the first divergence.</summary>
public sealed class VerifyForwardOrderTests
{
    [Fact]
    public void Verify_lists_tensors_in_forward_order_and_names_the_first_divergence()
    {
        // Two tampered outputs: alphabetically logits_per_image comes first, in forward order text_pooler_output does.
        var backend = new ModelAdapterBackend
        {
            Tamper = (name, t) => { if (name is "text_pooler_output" or "logits_per_image") t.Data[0] += 1; },
        };
        var report = GoldenVerifier.Verify(backend, RepoPaths.Golden, n => n == "hf-siglip-tiny");
        var c = Assert.Single(report.Cases);
        Assert.False(c.Passed);
        Assert.Equal("text_pooler_output", c.FirstDivergence!.Name);
        Assert.Equal(["vision_last_hidden_state", "vision_pooler_output", "text_last_hidden_state", "text_pooler_output",
                      "image_embeds", "text_embeds", "logits_per_image", "logits_per_text", "loss", "grad.logit_scale", "grad.logit_bias"],
            c.Tensors.Take(11).Select(t => t.Name).ToArray());
        Assert.Contains(report.Failures, f => f.Contains("first divergence (forward order): text_pooler_output", StringComparison.Ordinal));
        Assert.Contains("\"first_divergence\": \"text_pooler_output\"", report.ToJson(), StringComparison.Ordinal);
    }
}
