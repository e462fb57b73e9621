using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.IO;
using SigLip.Reference.Loss;
using SigLip.Reference.Numerics;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Loss;

/// <summary>
/// An outside referee: HF transformers' own float64 loss on ../shared/fixtures/hf-siglip-tiny
/// (its embeddings, logit_scale and logit_bias) must come out of our loss to rtol 1e-12.
/// </summary>
public sealed class HfFixtureLossTests(ITestOutputHelper output)
{
    private static readonly Tolerance Rtol1e12 = new(Atol: 0, Rtol: 1e-12);

    [Fact]
    public void LossReproducesHfTransformers()
    {
        string folder = RepoPaths.Fixture("hf-siglip-tiny");
        Tensor imageEmbeds, textEmbeds, expectedLoss, logitsPerImage, logitsPerText, gradScale, gradBias;
        using (var expected = SafeTensorsFile.Open(Path.Combine(folder, "expected.safetensors")))
        {
            imageEmbeds = expected.ReadTensor(OutputNames.ImageEmbeds);
            textEmbeds = expected.ReadTensor(OutputNames.TextEmbeds);
            expectedLoss = expected.ReadTensor(OutputNames.Loss);
            logitsPerImage = expected.ReadTensor(OutputNames.LogitsPerImage);
            logitsPerText = expected.ReadTensor(OutputNames.LogitsPerText);
            // t' and b enter the model only through the loss, so HF's parameter gradients are ours.
            gradScale = expected.ReadTensor(OutputNames.GradPrefix + "logit_scale");
            gradBias = expected.ReadTensor(OutputNames.GradPrefix + "logit_bias");
        }
        double logitScale, logitBias;
        using (var model = SafeTensorsFile.Open(Path.Combine(folder, "model.safetensors")))
        {
            logitScale = model.ReadTensor("logit_scale").Data.Single();
            logitBias = model.ReadTensor("logit_bias").Data.Single();
        }
        int n = imageEmbeds.Shape[0];
        output.WriteLine($"fixture: n = {n}, d = {imageEmbeds.Shape[1]}, t' = {logitScale:R}, b = {logitBias:R}, HF loss = {expectedLoss.Data[0]:R}");

        // HF's embeddings are already normalised; normalising again moves them by ~1 ulp.
        foreach (int chunks in Enumerable.Range(1, n).Where(k => n % k == 0))
        {
            var result = PairwiseLoss.Compute(imageEmbeds, textEmbeds, logitScale, logitBias, new LossOptions(Chunks: chunks), returnLogits: true);
            output.WriteLine($"D = {chunks}: loss {result.Loss:R}, relative error {Math.Abs(result.Loss - expectedLoss.Data[0]) / Math.Abs(expectedLoss.Data[0]):E2}");
            AssertClose.Scalar(result.Loss, expectedLoss.Data[0], Rtol1e12, $"loss vs HF (D = {chunks})");
            output.WriteLine($"   dL/dt' {result.GradLogitScale:R} (HF {gradScale.Data[0]:R}), dL/db {result.GradLogitBias:R} (HF {gradBias.Data[0]:R})");
            AssertClose.Scalar(result.GradLogitScale, gradScale.Data[0], Rtol1e12, $"dL/dt' vs HF grad.logit_scale (D = {chunks})");
            AssertClose.Scalar(result.GradLogitBias, gradBias.Data[0], Rtol1e12, $"dL/db vs HF grad.logit_bias (D = {chunks})");
            AssertClose.Tensor(result.LogitsPerImage!, logitsPerImage, Rtol1e12, $"logits_per_image vs HF (D = {chunks})");
            // logits_per_text is the transpose.
            var transposed = new double[n * n];
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    transposed[j * n + i] = result.LogitsPerImage!.Data[i * n + j];
            AssertClose.Tensor(new Tensor([n, n], transposed), logitsPerText, Rtol1e12, $"logits_per_text vs HF (D = {chunks})");
        }
    }
}
