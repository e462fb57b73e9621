/// The F#-friendly parts of the public API: lookups without out parameters, copy-and-update for
/// the C# config records, array entry points to the GEMM, records instead of tuples.
module SigLip.FSharp.Specs.ApiSpecs

open System
open Xunit
open SigLip.Reference
open SigLip.Reference.Backends
open SigLip.Reference.IO
open SigLip.Reference.Models
open SigLip.Reference.Numerics
open SigLip.Backends.Managed.Kernels
open SigLip.Reference.Training
open SigLip.FSharp.Specs.Support

[<Fact>]
let ``NamedTensors.Find gives the tensor or null, without an out parameter`` () =
    let parameters = ModelInit.Random(ModelSpecs.tinyConfig, 0)
    match parameters.Find ParameterLayout.LogitBias with
    | null -> failwith "logit_bias not found"
    | bias -> Assert.Equal(SigLip.Reference.Loss.SigmoidLoss.PaperInitialLogitBias, bias.Data[0])
    Assert.Null(parameters.Find "no.such.parameter")

[<Fact>]
let ``With copies a config record and changes only the fields named`` () =
    let b16 = SiglipConfig.Base16_224
    let twoLayers = b16.With(vision = b16.Vision.With(numHiddenLayers = 2), text = b16.Text.With(numHiddenLayers = 2, vocabSize = 100))
    Assert.Equal(VisionConfig(NumHiddenLayers = 2), twoLayers.Vision)
    Assert.Equal(TextConfig(NumHiddenLayers = 2, VocabSize = 100), twoLayers.Text)
    Assert.Equal(12, b16.Vision.NumHiddenLayers) // the original is untouched
    let settings = BuiltInRecipe.Settings.With(steps = 5, loss = LossOptions(Chunks = 4))
    Assert.Equal(BuiltInRecipe.Settings.LearningRate, settings.LearningRate)
    Assert.Equal(5, settings.Steps)
    Assert.Equal(4, settings.LossSettings.Chunks)

[<Fact>]
let ``The managed backend's MatMul takes plain arrays with offsets, and computes C = A B^T`` () =
    let rng = Random 17
    let m, n, k = 5, 7, 3
    let offset = 2
    let a = randomMatrix rng 1 (offset + m * k) // A[m, k] from element 2 on
    let b = randomMatrix rng n k // B[n, k]
    let c = Array.zeroCreate (m * n)
    MatMul.General(c, n, a, k, false, b, k, true, m, n, k, aOffset = offset)
    let expected = Array.init (m * n) (fun e -> let i, j = e / n, e % n in Seq.sum (seq { for p in 0 .. k - 1 -> a[offset + i * k + p] * b[j * k + p] }))
    assertClose "A B^T" (Tolerance(1e-15, 1e-14)) c expected

[<Fact>]
let ``TakeTower gives a record: the merged config and the tower's parameters`` () =
    let source = HfCheckpoint.Load(fixture "hf-siglip-tiny")
    let taken = Trainer.TakeTower(ModelSpecs.tinyConfig, source, Tower.Image)
    Assert.Equal(source.Config.Vision, taken.Config.Vision)
    Assert.Equal(source.Config.Vision.HiddenSize, taken.Config.Text.ProjectionDim)
    for KeyValue (name, tensor) in taken.Parameters do
        Assert.StartsWith("vision_model.", name)
        Assert.Same(source.Parameters[name], tensor)
