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

[<Fact>]
let ``A model computes with the operations it is given: an F# object expression, and the managed backend's`` () =
    // Count the primitive calls of one forward pass, then hand each to the specification's loop.
    let mutable calls = 0
    let reference = SigLip.Reference.Layers.ReferenceOps.Instance :> SigLip.Reference.Layers.ILayerOps
    let counting =
        { new SigLip.Reference.Layers.ILayerOps with
            member _.Name = "reference loops, counted"
            member _.LinearForward(o, x, w, b, rows, i, j) = calls <- calls + 1; reference.LinearForward(o, x, w, b, rows, i, j)
            member _.LinearBackward(dx, dw, db, dy, x, w, rows, i, j) = calls <- calls + 1; reference.LinearBackward(dx, dw, db, dy, x, w, rows, i, j)
            member _.LayerNormForward(o, m, s, x, w, b, rows, width, eps) = calls <- calls + 1; reference.LayerNormForward(o, m, s, x, w, b, rows, width, eps)
            member _.LayerNormBackward(dx, dw, db, dy, x, w, m, s, rows, width) = calls <- calls + 1; reference.LayerNormBackward(dx, dw, db, dy, x, w, m, s, rows, width)
            member _.GeluForward(o, x, n) = calls <- calls + 1; reference.GeluForward(o, x, n)
            member _.GeluBackward(dx, dy, x, n) = calls <- calls + 1; reference.GeluBackward(dx, dy, x, n)
            member _.AttentionForward(o, p, q, k, v, b, nq, nk, h, d) = calls <- calls + 1; reference.AttentionForward(o, p, q, k, v, b, nq, nk, h, d)
            member _.AttentionBackward(dq, dk, dv, dy, p, q, k, v, b, nq, nk, h, d) = calls <- calls + 1; reference.AttentionBackward(dq, dk, dv, dy, p, q, k, v, b, nq, nk, h, d)
            member _.PairwiseLoss(x, y, t, b, options) = calls <- calls + 1; reference.PairwiseLoss(x, y, t, b, options) }
    let parameters = ModelInit.Random(ModelSpecs.tinyConfig, 3)
    let batch = ModelSpecs.randomBatch ModelSpecs.tinyConfig 4 3
    let plain = SiglipModel(ModelSpecs.tinyConfig, parameters).Forward(batch)
    let counted = SiglipModel(ModelSpecs.tinyConfig, parameters, counting).Forward(batch)
    // One vision layer (2 LN, 4+2 Linear incl. out_proj and MLP, attention, GELU), the post-LN, the MAP head,
    // one text layer, the final LN and the head, and the loss: far more than zero, and the same loops, so the same bits.
    Assert.True(calls > 20, sprintf "only %d primitive calls" calls)
    Assert.Equal(plain.Loss, counted.Loss)
    // The managed backend's kernels in float64 are the same computation within the golden float64 bound.
    let managed = SiglipModel(ModelSpecs.tinyConfig, parameters, SigLip.Backends.Managed.ManagedOps(DType.Float64, threads = 2)).Forward(batch)
    assertScalar "loss on the managed kernels" (Tolerance(1e-11, 1e-9)) managed.Loss plain.Loss
