/// Paths, tolerance assertions and small helpers shared by the specs.
module SigLip.FSharp.Specs.Support

open System
open System.IO
open SigLip.Reference
open SigLip.Reference.Numerics
open Xunit.Sdk

/// The folder holding SigLip.Reference.sln: searched upwards from the test binary, then (when the
/// build output lives elsewhere, e.g. SIGLIP_ARTIFACTS) from this source file.
let repoRoot =
    let rec up (dir: DirectoryInfo) =
        if isNull dir then None
        elif File.Exists(Path.Combine(dir.FullName, "SigLip.Reference.sln")) then Some dir.FullName
        else up dir.Parent
    match up (DirectoryInfo AppContext.BaseDirectory) with
    | Some root -> root
    | None ->
        match up (DirectoryInfo __SOURCE_DIRECTORY__) with
        | Some root -> root
        | None -> failwithf "Cannot find SigLip.Reference.sln above %s or %s." AppContext.BaseDirectory __SOURCE_DIRECTORY__

/// The committed golden cases.
let goldenDir = Path.Combine(repoRoot, "golden")

/// ../shared beside the repository, or SIGLIP_SHARED when set.
let sharedDir =
    match Environment.GetEnvironmentVariable "SIGLIP_SHARED" with
    | null | "" -> Path.GetFullPath(Path.Combine(repoRoot, "..", "shared"))
    | s -> s

let fixture name = Path.Combine(sharedDir, "fixtures", name)

/// Fails, naming the worst element, unless every |a - e| <= atol + rtol |e| (NaN and infinity fail).
let assertCloseTensor (name: string) (tolerance: Tolerance) (actual: Tensor) (expected: Tensor) =
    let c = Comparison.Of(name, actual, expected, tolerance)
    if not c.Passed then raise (XunitException(c.ToString()))

let assertClose (name: string) (tolerance: Tolerance) (actual: float[]) (expected: float[]) =
    assertCloseTensor name tolerance (Tensor([| actual.Length |], actual)) (Tensor([| expected.Length |], expected))

let assertScalar (name: string) (tolerance: Tolerance) (actual: float) (expected: float) =
    if not (Double.IsFinite actual && Double.IsFinite expected && tolerance.Accepts(actual, expected)) then
        raise (XunitException(sprintf "%s: actual %.17g expected %.17g, |a-e| = %.3e > %g + %g*|e|"
                                  name actual expected (abs (actual - expected)) tolerance.Atol tolerance.Rtol))

let assertTrue (condition: bool) (message: string) = if not condition then raise (XunitException message)

/// n rows of d numbers uniform in [-1, 1), row-major.
let randomMatrix (rng: Random) n d = Array.init (n * d) (fun _ -> rng.NextDouble() * 2.0 - 1.0)
