/// The fuzzer from F#: a format of one's own as a subclass of FuzzTarget, run and classified by FuzzRunner.
module SigLip.FSharp.Specs.FuzzSpecs

open System
open System.IO
open Xunit
open SigLip.Fuzzing
open SigLip.Reference.IO

/// A toy format: a file must start with the byte 'S'; anything else is the project's typed error.
type StartsWithS() =
    inherit FuzzTarget("starts-with-s", "a file that must start with 'S'")
    override _.MakeSeeds() = [| FuzzCase("toy.bin", "SigLIP"B) |] :> Collections.Generic.IReadOnlyList<FuzzCase>
    override _.Parse(folder, _) =
        let path = Path.Combine(folder, "toy.bin")
        let bytes = File.ReadAllBytes path
        if bytes.Length = 0 || bytes[0] <> byte 'S' then
            raise (InputFormatException($"{path}: expected a file starting with 'S'", path, Nullable 0L))

[<Fact>]
let ``A format written in F# is fuzzed and every outcome is a success or a typed error`` () =
    let work = Path.Combine(Path.GetTempPath(), "siglip-fsharp-fuzz-" + Guid.NewGuid().ToString("N"))
    use target = new StartsWithS()
    target.Prepare work
    let result = FuzzRunner.Run(target, FuzzSettings(Seed = 3L, Cases = 200L, ProgressSeconds = 0.0))
    Assert.True(result.Passed, FuzzRunner.Table [| result |])
    Assert.Equal(200L, result.Cases)
    Assert.True(result.Outcomes[FuzzRunner.SuccessOutcome] > 0L)
    Assert.True(result.Outcomes[nameof InputFormatException] > 0L)
    // Any case replays alone from (seed, index).
    Assert.Equal<byte[]>(target.MakeCase(3L, 17L).Files[0].Bytes, target.MakeCase(3L, 17L).Files[0].Bytes)
