/// Two layers checked the micrograd way, from F#: the forward against the formula written here,
/// the backward (which accumulates, llm.c style) against central differences of that formula. Each
/// case runs on the reference loops and on the managed kernels (float64), through ILayerOps.
module SigLip.FSharp.Specs.LayerProperties

open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open SigLip.Backends.Managed
open SigLip.Reference.Backends
open SigLip.Reference.Layers
open SigLip.Reference.Numerics
open SigLip.FSharp.Specs.Support

/// Rows of a layer's input with the weights, bias and the upstream gradient dL/dy of L = sum(y * dy).
type LayerCase =
    { Rows: int
      Width: int
      Input: float[]
      Weight: float[]
      Bias: float[]
      DOutput: float[] }

let private coordinate = Gen.choose (-2_000_000, 2_000_000) |> Gen.map (fun i -> float i / 1e6)

let private variance (row: float[]) = let m = Array.average row in row |> Array.averageBy (fun x -> (x - m) ** 2.0)

let layerCase =
    gen {
        let! rows = Gen.choose (1, 4)
        let! width = Gen.choose (2, 8)
        // Rows of variance >= 0.05: LayerNorm's derivatives grow like 1/sqrt(var).
        let! input = Gen.arrayOfLength rows (Gen.arrayOfLength width coordinate |> Gen.filter (fun r -> variance r >= 0.05))
        let! weight = Gen.arrayOfLength width coordinate
        let! bias = Gen.arrayOfLength width coordinate
        let! dOutput = Gen.arrayOfLength (rows * width) coordinate
        return { Rows = rows; Width = width; Input = Array.concat input; Weight = weight; Bias = bias; DOutput = dOutput }
    }

type Generators =
    static member LayerCase() = Arb.fromGen layerCase

let epsilon = 1e-6

/// y = (x - mean) / sqrt(var + eps) * w + b per row, var the biased variance (nn.LayerNorm).
let layerNorm c (input: float[]) (weight: float[]) (bias: float[]) =
    Paper.rows c.Width input
    |> Array.collect (fun row ->
        let m, v = Array.average row, variance row
        Array.mapi (fun k x -> (x - m) / sqrt (v + epsilon) * weight[k] + bias[k]) row)

/// GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
let gelu x = 0.5 * x * (1.0 + tanh (sqrt (2.0 / System.Math.PI) * (x + 0.044715 * x * x * x)))

let float64 = Tolerance(1e-13, 1e-12)

/// The implementations every property runs on: the specification and the managed kernels (2 threads).
let implementations () : ILayerOps list = [ ReferenceOps.Instance; ManagedOps(DType.Float64, 2) ]
/// Five-point differences (Paper.derivative) of smooth functions of size ~ 1: errors ~ 1e-10 at most.
let finiteDifference = Tolerance(1e-8, 1e-6)

[<Property(Arbitrary = [| typeof<Generators> |], Replay = "(20261201,1)", MaxTest = 60)>]
let ``LayerNorm's forward is its formula and its backward the formula's finite differences`` (c: LayerCase) =
    let n = c.Rows * c.Width
    let loss (y: float[]) = Paper.dot y c.DOutput
    let minusOne = Array.map (fun g -> g - 1.0)
    let expectedOutput = layerNorm c c.Input c.Weight c.Bias
    let dx = Array.init n (Paper.partial (fun x -> loss (layerNorm c x c.Weight c.Bias)) c.Input)
    let dw = Array.init c.Width (Paper.partial (fun w -> loss (layerNorm c c.Input w c.Bias)) c.Weight)
    let db = Array.init c.Width (Paper.partial (fun b -> loss (layerNorm c c.Input c.Weight b)) c.Bias)
    for ops in implementations () do
        let output, mean, rstd = Array.zeroCreate n, Array.zeroCreate c.Rows, Array.zeroCreate c.Rows
        ops.LayerNormForward(output, mean, rstd, c.Input, c.Weight, c.Bias, c.Rows, c.Width, epsilon)
        assertClose $"{ops.Name}: LayerNorm output" float64 output expectedOutput
        // Backward accumulates: start from ones and subtract them afterwards.
        let dInput, dWeight, dBias = Array.create n 1.0, Array.create c.Width 1.0, Array.create c.Width 1.0
        ops.LayerNormBackward(dInput, dWeight, dBias, c.DOutput, c.Input, c.Weight, mean, rstd, c.Rows, c.Width)
        assertClose $"{ops.Name}: dL/dx" finiteDifference (minusOne dInput) dx
        assertClose $"{ops.Name}: dL/dweight" finiteDifference (minusOne dWeight) dw
        assertClose $"{ops.Name}: dL/dbias" finiteDifference (minusOne dBias) db

[<Property(Arbitrary = [| typeof<Generators> |], Replay = "(20261202,1)", MaxTest = 60)>]
let ``GELU's forward is its formula and its backward the formula's derivative`` (c: LayerCase) =
    let n = c.Input.Length
    let expectedOutput = Array.map gelu c.Input
    let dx = Array.init n (fun k -> c.DOutput[k] * Paper.derivative gelu c.Input[k])
    for ops in implementations () do
        let output = Array.zeroCreate n
        ops.GeluForward(output, c.Input, n)
        assertClose $"{ops.Name}: GELU output" float64 output expectedOutput
        let dInput = Array.zeroCreate n
        ops.GeluBackward(dInput, c.DOutput, c.Input, n)
        assertClose $"{ops.Name}: dL/dx" finiteDifference dInput dx
