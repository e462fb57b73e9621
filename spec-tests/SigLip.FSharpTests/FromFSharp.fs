/// The reference called from F#, the way a learner would: records, optional arguments, generics.
/// If the public API stops being easy to call from F#, this stops compiling.
module SigLip.FSharpTests.FromFSharp

open System
open Xunit
open SigLip.Reference
open SigLip.Reference.Backends
open SigLip.Reference.Loss
open SigLip.Reference.Models

/// The sigmoid loss written straight from the paper, in F#: independent of the C# code.
let paperLoss (x: float[][]) (y: float[][]) (tPrime: float) (b: float) =
    let normalise (v: float[]) = let n = sqrt (Array.sumBy (fun a -> a * a) v) in Array.map (fun a -> a / n) v
    let x, y = Array.map normalise x, Array.map normalise y
    let n = x.Length
    let logSigmoid u = min u 0.0 - log (1.0 + exp (-(abs u)))
    let mutable total = 0.0
    for i in 0 .. n - 1 do
        for j in 0 .. n - 1 do
            let z = if i = j then 1.0 else -1.0
            total <- total + logSigmoid (z * (exp tPrime * Array.fold2 (fun s a c -> s + a * c) 0.0 x[i] y[j] + b))
    -total / float n

let randomRows (rng: Random) n d = Array.init n (fun _ -> Array.init d (fun _ -> rng.NextDouble() * 2.0 - 1.0))

[<Fact>]
let ``the sigmoid loss in float64 and float32 matches the paper's formula`` () =
    let rng = Random 7
    let n, d = 5, 4
    let x, y = randomRows rng n d, randomRows rng n d
    let tPrime, b = SigmoidLoss.PaperInitialLogitScale, SigmoidLoss.PaperInitialLogitBias
    let expected = paperLoss x y tPrime b
    let r64 = SigmoidLoss.Compute<float>(Array.concat x, Array.concat y, n, d, tPrime, b)
    Assert.True(abs (r64.Loss - expected) <= 1e-12 + 1e-12 * abs expected, sprintf "float64 loss %.17g, paper %.17g" r64.Loss expected)
    let toF32 = Array.concat >> Array.map float32
    let r32 = SigmoidLoss.Compute<float32>(toF32 x, toF32 y, n, d, float32 tPrime, float32 b, chunks = 5)
    // float32: about 24 bits; the loss sums n^2 = 25 terms of size ~ 10, so 1e-5 relative is ample.
    Assert.True(abs (float r32.Loss - expected) <= 1e-5 * abs expected, sprintf "float32 loss %g, paper %.17g" r32.Loss expected)

[<Fact>]
let ``a model on the reference backend trains one step through the contract`` () =
    let config =
        SiglipConfig(
            TextConfig(VocabSize = 20, HiddenSize = 12, IntermediateSize = 16, NumHiddenLayers = 1,
                       NumAttentionHeads = 3, MaxPositionEmbeddings = 5, ProjectionSize = Nullable 8),
            VisionConfig(HiddenSize = 8, IntermediateSize = 16, NumHiddenLayers = 1, NumAttentionHeads = 2,
                         ImageSize = 8, PatchSize = 4))
    config.Validate()
    let registry = BackendRegistry().Register(ReferenceBackendProvider())
    use backend = registry.Start("reference")
    use model = backend.CreateModel(config, ModelInit.Random(config, 1))
    let rng = Random 3
    let batchSize = 4
    let pixels = Tensor([| batchSize; 3; 8; 8 |], Array.init (batchSize * 3 * 64) (fun _ -> rng.NextDouble() * 2.0 - 1.0))
    let ids = TokenIds(batchSize, 5, Array.init (batchSize * 5) (fun _ -> rng.Next 20))
    let batch = SiglipBatch(pixels, ids)
    let first = model.ForwardBackward(batch, LossOptions.Default, collectOutputs = true)
    Assert.True(Double.IsFinite first.Loss)
    Assert.Equal(first.Loss, first.Outputs[OutputNames.Loss].Data[0])
    Assert.Equal(ParameterLayout.For(config).Count, model.Gradients().Count)
    // A small step against the gradient lowers the loss of the same batch.
    model.OptimizerStep(AdamWSettings(WeightDecay = 0.0), 1e-3) |> ignore
    let second = model.Forward(batch, LossOptions.Default, collectOutputs = false)
    Assert.True(second.Loss < first.Loss, sprintf "loss %g after one step, %g before" second.Loss first.Loss)
