/// Golden verification from F#: the reference passes every committed case, and a backend written
/// in F# (an object expression over the contract) that is off by a little fails.
module SigLip.FSharp.Specs.GoldenSpecs

open System.IO
open Xunit
open SigLip.Reference
open SigLip.Reference.Backends
open SigLip.Reference.IO.Golden
open SigLip.FSharp.Specs.Support

[<Fact>]
let ``the reference backend passes every golden case`` () =
    use backend = new ReferenceBackend()
    let report = GoldenVerifier.Verify(backend, goldenDir)
    assertTrue report.Passed (String.concat "\n" report.Failures)
    let manifest = GoldenManifest.Read(Path.Combine(goldenDir, GoldenFormat.ManifestFile))
    Assert.Equal(manifest.Cases.Count, report.Cases.Count)

/// A backend that adds `offset` to every loss: how a learner wraps the contract in F#.
let offByLoss (inner: IBackend) (offset: float) =
    { new IBackend with
        member _.Name = "off-by-" + string offset
        member _.Device = inner.Device
        member _.DType = inner.DType
        member _.Loss(imageEmbeds, textEmbeds, logitScale, logitBias, options) =
            let r = inner.Loss(imageEmbeds, textEmbeds, logitScale, logitBias, options)
            LossResult(r.Loss + offset, r.GradImageEmbeds, r.GradTextEmbeds, r.GradLogitScale, r.GradLogitBias, r.LogitsPerImage)
        member _.CreateModel(config, parameters, locked) = inner.CreateModel(config, parameters, locked)
      interface System.IDisposable with
        member _.Dispose() = inner.Dispose() }

[<Fact>]
let ``a backend whose loss is off by 1e-6 fails the loss cases and names them`` () =
    use backend = offByLoss (new ReferenceBackend()) 1e-6
    let report = GoldenVerifier.Verify(backend, goldenDir, (fun name -> name.StartsWith "loss-n"))
    assertTrue (report.Cases.Count > 0) "no loss-n* case ran"
    assertTrue (not report.Passed) "a loss off by 1e-6 passed the float64 golden cases"
    for case in report.Cases do
        assertTrue (not case.Passed) (sprintf "%s passed with the loss off by 1e-6" case.Name)
        let loss = case.Tensors |> Seq.find (fun t -> t.Name = "loss")
        assertTrue (not loss.Passed) (sprintf "%s: the loss comparison passed: %O" case.Name loss)
