/// FsCheck properties of the loss, written natively in F#. Each runs from a fixed seed (Replay),
/// so a failure is reproduced by running the test again; FsCheck prints the seed and the case.
module SigLip.FSharp.Specs.LossProperties

open System
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open SigLip.Reference
open SigLip.Reference.Backends
open SigLip.Reference.Loss
open SigLip.Reference.Numerics
open SigLip.FSharp.Specs.Support

/// One batch of unnormalised embeddings (row-major [N, D]) with t' and b, and a permutation of 0..N-1.
type LossCase =
    { N: int
      D: int
      Image: float[]
      Text: float[]
      TPrime: float
      Bias: float
      Permutation: int[] }

let private coordinate = Gen.choose (-1_000_000, 1_000_000) |> Gen.map (fun i -> float i / 1e6)

/// Rows of norm >= 0.5: the loss normalises them, and a row near zero would make every
/// derivative huge (d(x/|x|)/dx ~ 1/|x|), which measures finite differences, not the code.
let private row d = Gen.arrayOfLength d coordinate |> Gen.filter (fun r -> sqrt (Paper.dot r r) >= 0.5)

let lossCase =
    gen {
        let! n = Gen.choose (1, 12)
        let! d = Gen.choose (1, 6)
        let! image = Gen.arrayOfLength n (row d)
        let! text = Gen.arrayOfLength n (row d)
        let! tPrime = Gen.choose (-200, 300) |> Gen.map (fun i -> float i / 100.0) // t = e^t' in [0.14, 20]
        let! bias = Gen.choose (-1500, 500) |> Gen.map (fun i -> float i / 100.0) // b in [-15, 5]
        let! keys = Gen.arrayOfLength n (Gen.choose (0, Int32.MaxValue))
        return
            { N = n
              D = d
              Image = Array.concat image
              Text = Array.concat text
              TPrime = tPrime
              Bias = bias
              Permutation = Array.init n id |> Array.sortBy (fun i -> keys[i], i) }
    }

type Generators =
    static member LossCase() = Arb.fromGen lossCase

/// See LossSpecs.float64.
let float64 = Tolerance(1e-12, 1e-12)

let private paperLoss c = Paper.sigmoidLoss (Paper.rows c.D c.Image) (Paper.rows c.D c.Text) c.TPrime c.Bias
let private compute c chunks = SigmoidLoss.Compute(c.Image, c.Text, c.N, c.D, c.TPrime, c.Bias, chunks = chunks)

[<Property(Arbitrary = [| typeof<Generators> |], Replay = "(20261127,1)", MaxTest = 80)>]
let ``the sigmoid loss is the paper's formula, and never negative`` (c: LossCase) =
    let r = compute c 1
    assertScalar "loss" float64 r.Loss (paperLoss c)
    // -log sigmoid(u) > 0 for every finite u: a sum of them cannot be negative.
    assertTrue (r.Loss >= 0.0) (sprintf "loss %g < 0" r.Loss)

[<Property(Arbitrary = [| typeof<Generators> |], Replay = "(20261128,1)", MaxTest = 80)>]
let ``permuting the pairs together leaves the loss alone and permutes the gradients`` (c: LossCase) =
    let permuteRows (flat: float[]) = Array.concat [| for i in c.Permutation -> flat[i * c.D .. i * c.D + c.D - 1] |]
    let original = compute c 1
    let permuted = compute { c with Image = permuteRows c.Image; Text = permuteRows c.Text } 1
    assertScalar "loss" float64 permuted.Loss original.Loss
    assertClose "d loss / d image_embeds" float64 permuted.GradImageEmbeds (permuteRows original.GradImageEmbeds)
    assertClose "d loss / d text_embeds" float64 permuted.GradTextEmbeds (permuteRows original.GradTextEmbeds)
    assertScalar "d loss / d t'" float64 permuted.GradLogitScale original.GradLogitScale
    assertScalar "d loss / d b" float64 permuted.GradLogitBias original.GradLogitBias

[<Property(Arbitrary = [| typeof<Generators> |], Replay = "(20261129,1)", MaxTest = 80)>]
let ``the chunked loss equals the dense loss for every divisor D of n`` (c: LossCase) =
    let dense = compute c 1
    for chunks in [ 1 .. c.N ] |> List.filter (fun k -> c.N % k = 0) do
        let r = compute c chunks
        assertScalar (sprintf "loss, D = %d" chunks) float64 r.Loss dense.Loss
        assertClose (sprintf "d loss / d image_embeds, D = %d" chunks) float64 r.GradImageEmbeds dense.GradImageEmbeds
        assertClose (sprintf "d loss / d text_embeds, D = %d" chunks) float64 r.GradTextEmbeds dense.GradTextEmbeds
        assertScalar (sprintf "d loss / d t', D = %d" chunks) float64 r.GradLogitScale dense.GradLogitScale
        assertScalar (sprintf "d loss / d b, D = %d" chunks) float64 r.GradLogitBias dense.GradLogitBias

/// Five-point central differences of the paper's loss (Paper.derivative): with h ~ 7e-4 (1 + |x|) the
/// truncation error h^4 |f'''''| / 30 grows with t^5 (t <= 20 here; rows of norm >= 0.5 keep the
/// normalisation's derivatives small) and rounding eps |f| / h ~ 1e-11. The worst seen over these
/// seeds is 2.5e-8 relative (softmax, t near 20); 1e-7 + 1e-6 |g| leaves 40x room and still catches
/// a gradient off by 1e-5 relative (tried).
let finiteDifference = Tolerance(1e-7, 1e-6)

[<Property(Arbitrary = [| typeof<Generators> |], Replay = "(20261130,1)", MaxTest = 40)>]
let ``every gradient of the sigmoid loss is the paper loss's finite difference`` (c: LossCase) =
    let r = compute c 1
    let image, text = Paper.rows c.D c.Image, Paper.rows c.D c.Text
    assertScalar "d loss / d t'" finiteDifference r.GradLogitScale (Paper.derivative (fun t -> Paper.sigmoidLoss image text t c.Bias) c.TPrime)
    assertScalar "d loss / d b" finiteDifference r.GradLogitBias (Paper.derivative (fun b -> Paper.sigmoidLoss image text c.TPrime b) c.Bias)
    let lossOfImage flat = Paper.sigmoidLoss (Paper.rows c.D flat) text c.TPrime c.Bias
    let lossOfText flat = Paper.sigmoidLoss image (Paper.rows c.D flat) c.TPrime c.Bias
    assertClose "d loss / d image_embeds" finiteDifference r.GradImageEmbeds (Array.init c.Image.Length (Paper.partial lossOfImage c.Image))
    assertClose "d loss / d text_embeds" finiteDifference r.GradTextEmbeds (Array.init c.Text.Length (Paper.partial lossOfText c.Text))

[<Property(Arbitrary = [| typeof<Generators> |], Replay = "(20261131,1)", MaxTest = 40)>]
let ``the softmax loss is CLIP's formula and its t' gradient its finite difference`` (c: LossCase) =
    let image, text = Paper.rows c.D c.Image, Paper.rows c.D c.Text
    let r = PairwiseLoss.Compute(c.Image, c.Text, c.N, c.D, c.TPrime, c.Bias, LossOptions(Kind = LossKind.Softmax))
    assertScalar "softmax loss" float64 r.Loss (Paper.softmaxLoss image text c.TPrime)
    assertScalar "d loss / d t'" finiteDifference r.GradLogitScale (Paper.derivative (fun t -> Paper.softmaxLoss image text t) c.TPrime)
    let lossOfImage flat = Paper.softmaxLoss (Paper.rows c.D flat) text c.TPrime
    assertClose "d loss / d image_embeds" finiteDifference r.GradImageEmbeds (Array.init c.Image.Length (Paper.partial lossOfImage c.Image))

/// float32 against float64, first order in u = 2^-24. Rounding the inputs and normalising costs
/// each unit row ~(d + 3)u, so <x_i, y_j> is off by <= 3(d + 2)u; t = exp(t') by t |t'| u; a
/// logit t<x,y> + b then by <= t (3d + 6 + |t'|) u + 3 |logit| u, and log-sigmoid (slope <= 1) passes
/// that on. Summing n^2 terms of size <= M = t + |b| + 1 adds <= n^2 u n^2 M; the mean divides by n.
let float32Bound c =
    let u = 2.0 ** -24.0
    let n, d, t, b = float c.N, float c.D, exp c.TPrime, abs c.Bias
    let m = t + b + 1.0
    n * u * (t * (3.0 * d + 6.0 + abs c.TPrime) + 3.0 * (t + b) + n * n * m)

[<Property(Arbitrary = [| typeof<Generators> |], Replay = "(20261132,1)", MaxTest = 80)>]
let ``float32 agrees with float64 within the derived rounding bound`` (c: LossCase) =
    let r64 = compute c 1
    let r32 = SigmoidLoss.Compute<float32>(Array.map float32 c.Image, Array.map float32 c.Text, c.N, c.D, float32 c.TPrime, float32 c.Bias)
    assertScalar "float32 loss" (Tolerance(float32Bound c, 0.0)) (float r32.Loss) r64.Loss
