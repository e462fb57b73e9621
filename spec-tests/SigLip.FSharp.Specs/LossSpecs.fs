/// The loss functions called from F#: the generic array API (float and float32), the Tensor API and
/// the backend contract, each against the paper's formula written in F# (Paper.fs).
module SigLip.FSharp.Specs.LossSpecs

open System
open Xunit
open SigLip.Reference
open SigLip.Reference.Backends
open SigLip.Reference.Loss
open SigLip.Reference.Numerics
open SigLip.FSharp.Specs.Support

/// float64 against a float64 re-computation in another summation order: a loss of n^2 terms of
/// size <= t + |b| loses a few hundred ulps at most (~1e-14 relative); 1e-12 leaves room, not bugs.
let float64 = Tolerance(1e-12, 1e-12)

[<Fact>]
let ``the sigmoid loss in float64 and float32 matches the paper's formula`` () =
    let rng = Random 7
    let n, d = 5, 4
    let x, y = randomMatrix rng n d, randomMatrix rng n d
    let tPrime, b = SigmoidLoss.PaperInitialLogitScale, SigmoidLoss.PaperInitialLogitBias
    let expected = Paper.sigmoidLoss (Paper.rows d x) (Paper.rows d y) tPrime b
    let r64 = SigmoidLoss.Compute(x, y, n, d, tPrime, b)
    assertScalar "float64 loss" float64 r64.Loss expected
    // float32: u = 6e-8; the loss sums n^2 = 25 terms of size ~ 10 (b = -10), so 1e-5 relative is ample.
    let r32 = SigmoidLoss.Compute<float32>(Array.map float32 x, Array.map float32 y, n, d, float32 tPrime, float32 b, chunks = 5)
    assertScalar "float32 loss" (Tolerance(0.0, 1e-5)) (float r32.Loss) expected

[<Fact>]
let ``the chunked sigmoid loss equals the dense one for every divisor of n, holding (n/D)^2 logits`` () =
    let rng = Random 11
    let n, d = 12, 5
    let x, y = randomMatrix rng n d, randomMatrix rng n d
    let tPrime, b = 1.7, -3.0
    let expected = Paper.sigmoidLoss (Paper.rows d x) (Paper.rows d y) tPrime b
    let dense = SigmoidLoss.Compute(x, y, n, d, tPrime, b)
    assertScalar "dense loss" float64 dense.Loss expected
    for chunks in [ 2; 3; 4; 6; 12 ] do
        let r = SigmoidLoss.Compute(x, y, n, d, tPrime, b, chunks = chunks)
        assertScalar (sprintf "loss, D = %d" chunks) float64 r.Loss expected
        assertClose (sprintf "d loss / d image_embeds, D = %d" chunks) float64 r.GradImageEmbeds dense.GradImageEmbeds
        assertClose (sprintf "d loss / d text_embeds, D = %d" chunks) float64 r.GradTextEmbeds dense.GradTextEmbeds
        assertScalar (sprintf "d loss / d t', D = %d" chunks) float64 r.GradLogitScale dense.GradLogitScale
        assertScalar (sprintf "d loss / d b, D = %d" chunks) float64 r.GradLogitBias dense.GradLogitBias
        let perDevice = (n / chunks) * (n / chunks)
        Assert.Equal(int64 perDevice, r.LogitsHeldAtOnce)

[<Fact>]
let ``the logits it returns are t <x_i, y_j> + b of the normalised embeddings`` () =
    let rng = Random 5
    let n, d = 4, 3
    let x, y = randomMatrix rng n d, randomMatrix rng n d
    let r = SigmoidLoss.Compute(x, y, n, d, 0.5, -2.0, returnLogits = true)
    let expected = Paper.logits (Paper.rows d x) (Paper.rows d y) 0.5 -2.0 |> Array.concat
    assertClose "logits_per_image" float64 r.LogitsPerImage expected

[<Fact>]
let ``the softmax loss is CLIP's formula: no bias, no bias gradient`` () =
    let rng = Random 9
    let n, d = 6, 4
    let x, y = randomMatrix rng n d, randomMatrix rng n d
    let imageEmbeds, textEmbeds = Tensor([| n; d |], x), Tensor([| n; d |], y)
    let softmax = LossOptions(Kind = LossKind.Softmax)
    let r = PairwiseLoss.Compute(imageEmbeds, textEmbeds, 2.0, -10.0, softmax)
    assertScalar "softmax loss" float64 r.Loss (Paper.softmaxLoss (Paper.rows d x) (Paper.rows d y) 2.0)
    Assert.Equal(0.0, r.GradLogitBias)
    let otherBias = PairwiseLoss.Compute(imageEmbeds, textEmbeds, 2.0, 3.0, softmax)
    assertScalar "softmax loss with another bias" float64 otherBias.Loss r.Loss

[<Fact>]
let ``the backend contract's loss, with its options left out, is the dense sigmoid loss`` () =
    let rng = Random 13
    let n, d = 5, 3
    let x, y = randomMatrix rng n d, randomMatrix rng n d
    use backend = new ReferenceBackend()
    let r = backend.Loss(Tensor([| n; d |], x), Tensor([| n; d |], y), 0.3, -1.0)
    assertScalar "loss" float64 r.Loss (Paper.sigmoidLoss (Paper.rows d x) (Paper.rows d y) 0.3 -1.0)
    Assert.Equal<int>([| n; d |], r.GradImageEmbeds.Shape)
    Assert.Null(r.LogitsPerImage)
