/// The paper's formulas written again in F#, row by row, sharing no code with the library: the
/// independent side of every comparison in these specs.
module SigLip.FSharp.Specs.Paper

open MathNet.Numerics.Differentiation

let dot (a: float[]) (b: float[]) = Array.fold2 (fun s x y -> s + x * y) 0.0 a b

let normalise (v: float[]) =
    let norm = sqrt (dot v v)
    Array.map (fun a -> a / norm) v

/// log sigmoid(u) = -log(1 + e^-u), in a form that never overflows: min(u, 0) - log(1 + e^-|u|).
let logSigmoid u = min u 0.0 - log (1.0 + exp (-(abs u)))

/// Row-major [n, d] as n rows.
let rows d (flat: float[]) = Array.chunkBySize d flat

/// logits_ij = exp(t') <x_i / |x_i|, y_j / |y_j|> + b (paper, Algorithm 1).
let logits (x: float[][]) (y: float[][]) tPrime b =
    let x, y = Array.map normalise x, Array.map normalise y
    Array.init x.Length (fun i -> Array.init y.Length (fun j -> exp tPrime * dot x[i] y[j] + b))

/// L = -(1/n) sum_i sum_j log sigmoid(z_ij logits_ij), z_ij = +1 when i = j, else -1.
let sigmoidLoss x y tPrime b =
    let l = logits x y tPrime b
    let n = l.Length
    let mutable total = 0.0
    for i in 0 .. n - 1 do
        for j in 0 .. n - 1 do
            total <- total + logSigmoid (if i = j then l[i][j] else -l[i][j])
    -total / float n

/// CLIP's loss: the mean of the image->text and text->image cross entropies of t <x_i, y_j> (no bias).
let softmaxLoss x y tPrime =
    let l = logits x y tPrime 0.0
    let n = l.Length
    let logSumExp (v: float[]) =
        let m = Array.max v
        m + log (Array.sumBy (fun a -> exp (a - m)) v)
    let imageToText = Array.init n (fun i -> logSumExp l[i] - l[i][i]) |> Array.sum
    let textToImage = Array.init n (fun j -> logSumExp (Array.init n (fun i -> l[i][j])) - l[j][j]) |> Array.sum
    (imageToText + textToImage) / (2.0 * float n)

/// d f / d x by five-point central differences (MathNet; step (1 + |x|) eps^(1/5) ~ 7e-4 (1 + |x|)):
/// truncation error ~ h^4 |f'''''| / 30, rounding ~ eps |f| / h.
let derivative (f: float -> float) (x: float) =
    NumericalDerivative(5, 2).EvaluateDerivative(System.Func<float, float> f, x, 1)

/// The derivative of f with respect to element k of a copy of xs.
let partial (f: float[] -> float) (xs: float[]) (k: int) =
    derivative (fun v -> let c = Array.copy xs in c[k] <- v; f c) xs[k]
