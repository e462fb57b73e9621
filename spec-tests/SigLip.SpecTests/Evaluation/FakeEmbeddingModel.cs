using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Data.BuiltIn;
using SigLip.Reference.Models;

namespace SigLip.SpecTests.Evaluation;

/// <summary>
/// A model whose embeddings the test chooses, so the right evaluation answer is known by hand.
/// Image embedding: the image's pixels [D, 1, 1] read as a vector, normalised. Text embedding: the
/// sum of the chosen vectors of its words (end tokens and unknown words add nothing), normalised
/// (a zero sum stays zero). Only EmbedImages/EmbedTexts work.
/// </summary>
internal sealed class FakeEmbeddingModel(WordTokenizer tokenizer, IReadOnlyDictionary<string, double[]> wordVectors, int width, SiglipConfig? config = null) : ISiglipModel
{
    public SiglipConfig Config { get; } = config ?? new SiglipConfig(
        new TextConfig(VocabSize: tokenizer.VocabSize, HiddenSize: width, MaxPositionEmbeddings: 8),
        new VisionConfig(HiddenSize: width, NumChannels: width, ImageSize: 1, PatchSize: 1));

    public LockedTowers Locked => LockedTowers.None;

    public int ImageCalls { get; private set; }

    public Tensor EmbedImages(Tensor pixelValues)
    {
        ImageCalls++;
        int b = pixelValues.Shape[0];
        int per = pixelValues.Size / b;
        Assert.Equal(width, per);
        return Normalised(b, (row, j) => pixelValues.Data[row * per + j]);
    }

    public Tensor EmbedTexts(TokenIds inputIds)
    {
        var sums = new double[inputIds.Batch * width];
        for (int b = 0; b < inputIds.Batch; b++)
            for (int t = 0; t < inputIds.Length; t++)
            {
                int id = inputIds[b, t];
                if (id < 3) continue; // pad, end, unknown
                var v = wordVectors.TryGetValue(tokenizer.Vocabulary[id], out var vec) ? vec : new double[width];
                for (int j = 0; j < width; j++) sums[b * width + j] += v[j];
            }
        return Normalised(inputIds.Batch, (row, j) => sums[row * width + j]);
    }

    private Tensor Normalised(int rows, Func<int, int, double> value)
    {
        var data = new double[rows * width];
        for (int r = 0; r < rows; r++)
        {
            double norm = 0;
            for (int j = 0; j < width; j++) norm += value(r, j) * value(r, j);
            norm = Math.Sqrt(norm);
            for (int j = 0; j < width; j++) data[r * width + j] = norm == 0 ? 0 : value(r, j) / norm;
        }
        return new Tensor([rows, width], data);
    }

    public StepResult Forward(SiglipBatch batch, LossOptions loss, bool collectOutputs) => throw new NotSupportedException();
    public StepResult ForwardBackward(SiglipBatch batch, LossOptions loss, bool collectOutputs) => throw new NotSupportedException();
    public EncodedBatch EncodeForTraining(SiglipBatch batch) => throw new NotSupportedException();
    public void BackwardFromEmbeddings(Tensor gradImageEmbeds, Tensor gradTextEmbeds, double gradLogitScale, double gradLogitBias) => throw new NotSupportedException();
    public NamedTensors Gradients() => throw new NotSupportedException();
    public void AllReduceGradients(SigLip.Reference.Distributed.ICommunicator communicator) => throw new NotSupportedException();
    public double OptimizerStep(AdamWSettings settings, double learningRate) => throw new NotSupportedException();
    public NamedTensors GetParameters() => throw new NotSupportedException();
    public void SetParameters(IReadOnlyDictionary<string, Tensor> parameters) => throw new NotSupportedException();
    public NamedTensors GetOptimizerState() => throw new NotSupportedException();
    public void SetOptimizerState(IReadOnlyDictionary<string, Tensor> state) => throw new NotSupportedException();
    public void Dispose() { }

    /// <summary>An example whose image embeds to <paramref name="vector"/> (normalised).</summary>
    public static SigLip.Reference.Data.ImageTextExample Example(double[] vector, string caption, string? className = null) =>
        new(new Tensor([vector.Length, 1, 1], vector), caption, className);

    public static double[] OneHot(int width, int index)
    {
        var v = new double[width];
        v[index] = 1;
        return v;
    }
}
