/// The whole model through the backend contract, from F#: named outputs (HF names) checked
/// against the paper's formulas, gradients (HF parameter names) against finite differences of the
/// loss, and the Hugging Face fixture against what transformers computed.
module SigLip.FSharp.Specs.ModelSpecs

open System
open Xunit
open SigLip.Reference
open SigLip.Reference.Backends
open SigLip.Reference.IO
open SigLip.Reference.Models
open SigLip.Reference.Numerics
open SigLip.FSharp.Specs.Support

/// A text tower wider than the image tower (12 vs 8, projected to 8) with an odd head count (3).
let tinyConfig =
    SiglipConfig(
        TextConfig(VocabSize = 20, HiddenSize = 12, IntermediateSize = 16, NumHiddenLayers = 1,
                   NumAttentionHeads = 3, MaxPositionEmbeddings = 5, ProjectionSize = 8),
        VisionConfig(HiddenSize = 8, IntermediateSize = 16, NumHiddenLayers = 1, NumAttentionHeads = 2,
                     ImageSize = 8, PatchSize = 4))

/// A batch of random pixels in [-1, 1] and random token ids that fits the config.
let randomBatch (config: SiglipConfig) (seed: int) (batchSize: int) =
    let rng = Random seed
    let v, t = config.Vision, config.Text
    let pixels = Tensor([| batchSize; v.NumChannels; v.ImageSize; v.ImageSize |],
                        randomMatrix rng batchSize (v.NumChannels * v.ImageSize * v.ImageSize))
    let ids = TokenIds(batchSize, t.MaxPositionEmbeddings, Array.init (batchSize * t.MaxPositionEmbeddings) (fun _ -> rng.Next t.VocabSize))
    SiglipBatch(pixels, ids)

let float64 = Tolerance(1e-12, 1e-12)

[<Fact>]
let ``the forward pass names its outputs as HF does, and they obey the paper's formulas`` () =
    use backend = new ReferenceBackend()
    use model = backend.CreateRandomModel(tinyConfig, seed = 1)
    let batch = randomBatch tinyConfig 2 4
    let result = model.Forward(batch, collectOutputs = true)
    let output name = result.Outputs[name]
    let n, d = 4, tinyConfig.EmbedDim
    // Embeddings are the L2-normalised pooler outputs.
    let imageEmbeds, textEmbeds = output OutputNames.ImageEmbeds, output OutputNames.TextEmbeds
    Assert.Equal<int>([| n; d |], imageEmbeds.Shape)
    let normalisedRows (t: Tensor) = Paper.rows d t.Data |> Array.map Paper.normalise |> Array.concat
    assertClose "image_embeds" float64 imageEmbeds.Data (normalisedRows (output OutputNames.VisionPoolerOutput))
    assertClose "text_embeds" float64 textEmbeds.Data (normalisedRows (output OutputNames.TextPoolerOutput))
    // logits_per_image[i, j] = t <x_i, y_j> + b; logits_per_text is its transpose.
    let parameters = model.GetParameters()
    let tPrime, b = parameters[ParameterLayout.LogitScale].Data[0], parameters[ParameterLayout.LogitBias].Data[0]
    let logits = Paper.logits (Paper.rows d imageEmbeds.Data) (Paper.rows d textEmbeds.Data) tPrime b
    assertClose "logits_per_image" float64 (output OutputNames.LogitsPerImage).Data (Array.concat logits)
    assertClose "logits_per_text" float64 (output OutputNames.LogitsPerText).Data (Array.concat (Array.transpose logits))
    // The loss is the paper's loss of the two towers' pooled outputs.
    let expectedLoss = Paper.sigmoidLoss (Paper.rows d (output OutputNames.VisionPoolerOutput).Data)
                                         (Paper.rows d (output OutputNames.TextPoolerOutput).Data) tPrime b
    assertScalar "loss" float64 result.Loss expectedLoss
    Assert.Equal(result.Loss, (output OutputNames.Loss).Data[0])
    Assert.Equal<int>([| n; tinyConfig.Vision.NumPatches; tinyConfig.Vision.HiddenSize |], (output OutputNames.VisionLastHiddenState).Shape)
    Assert.Equal<int>([| n; tinyConfig.Text.MaxPositionEmbeddings; tinyConfig.Text.HiddenSize |], (output OutputNames.TextLastHiddenState).Shape)

/// Five-point central differences of the model's loss (a few layers of smooth functions, loss ~ 10):
/// truncation ~ h^4 f''''' / 30 with h ~ 7e-4 (1 + |p|) stays below 1e-10 and rounding eps |L| / h ~ 1e-11.
let finiteDifference = Tolerance(1e-8, 1e-6)

[<Fact>]
let ``every gradient comes under its HF parameter name and is the loss's finite difference`` () =
    use backend = new ReferenceBackend()
    use model = backend.CreateRandomModel(tinyConfig, seed = 3, logitScale = 1.0, logitBias = -2.0)
    let batch = randomBatch tinyConfig 4 3
    model.ForwardBackward(batch) |> ignore
    let gradients = model.Gradients()
    let parameters = model.GetParameters()
    let layout = ParameterLayout.For tinyConfig
    Assert.Equal<string>(layout |> Seq.map (fun p -> p.Name) |> Seq.sort, gradients.Keys |> Seq.sort)
    for spec in layout do
        Assert.Equal<int>(spec.Shape, gradients[spec.Name].Shape)
    // One element of each parameter (its middle one), through SetParameters and Forward only.
    for spec in layout do
        let original = parameters[spec.Name]
        let k = original.Size / 2
        let lossAt value =
            let changed = original.Clone()
            changed.Data[k] <- value
            model.SetParameters(readOnlyDict [ spec.Name, changed ])
            model.Forward(batch).Loss
        let expected = Paper.derivative lossAt original.Data[k]
        model.SetParameters(readOnlyDict [ spec.Name, original ])
        assertScalar (sprintf "d loss / d %s[%d]" spec.Name k) finiteDifference gradients[spec.Name].Data[k] expected

[<Fact>]
let ``a locked image tower (SigLiT) gets no gradients`` () =
    use backend = new ReferenceBackend()
    use model = backend.CreateRandomModel(tinyConfig, seed = 5, locked = LockedTowers.Image)
    model.ForwardBackward(randomBatch tinyConfig 6 3) |> ignore
    let expected =
        ParameterLayout.For tinyConfig
        |> Seq.filter (fun p -> p.Tower <> Tower.Image)
        |> Seq.map (fun p -> p.Name)
        |> Seq.sort
    Assert.Equal<string>(expected, model.Gradients().Keys |> Seq.sort)

[<Fact>]
let ``the HF fixture loads and reproduces what transformers computed, in float64`` () =
    let folder = fixture "hf-siglip-tiny"
    let checkpoint = HfCheckpoint.Load folder
    use expected = SafeTensorsFile.Open(IO.Path.Combine(folder, "expected.safetensors"))
    let batch = SiglipBatch(expected.ReadTensor "pixel_values", expected.ReadTokenIds "input_ids")
    use backend = new ReferenceBackend()
    use model = backend.CreateModel(checkpoint.Config, checkpoint.Parameters)
    let result = model.ForwardBackward(batch, collectOutputs = true)
    // The manifest's float64 bound for HF transformers against the reference.
    let tolerance = Tolerance.Float64
    for name in [ OutputNames.ImageEmbeds; OutputNames.TextEmbeds; OutputNames.LogitsPerImage; OutputNames.LogitsPerText
                  OutputNames.Loss; OutputNames.VisionPoolerOutput; OutputNames.TextLastHiddenState ] do
        assertCloseTensor name tolerance result.Outputs[name] (expected.ReadTensor name)
    let gradients = model.Gradients()
    Assert.Equal(ParameterLayout.For(checkpoint.Config).Count, gradients.Count)
    for KeyValue (name, gradient) in gradients do
        assertCloseTensor (OutputNames.GradPrefix + name) tolerance gradient (expected.ReadTensor(OutputNames.GradPrefix + name))
