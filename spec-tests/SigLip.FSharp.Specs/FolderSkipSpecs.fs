/// An image-caption folder's skipped lines, counted by reason, read from F#.
module SigLip.FSharp.Specs.FolderSkipSpecs

open System
open System.IO
open Xunit
open SigLip.Data

[<Fact>]
let ``skipped lines are counted by reason and read as F# values`` () =
    let root = Path.Combine(Path.GetTempPath(), "siglip-fs-skips-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory root |> ignore
    try
        File.WriteAllLines(Path.Combine(root, "captions.jsonl"),
            [| "{not json"
               "{\"image\": \"a.png\"}"
               "{\"image\": \"a.png\", \"caption\": \"\\ud800\"}"
               "{\"image\": \"gone.png\", \"caption\": \"no such file\"}"
               "{also not json" |])
        let folder = ImageCaptionFolder(root, 8, shuffleBuffer = 1)
        Assert.Empty(folder.Examples 0)
        let tally = folder.Tally
        let counts = tally.ByReason |> Seq.map (fun c -> c.Key, c.Count) |> Map.ofSeq
        Assert.Equal<Map<string, int64>>(
            Map.ofList [ "invalid-json", 2L; "missing-field", 1L; "invalid-text", 1L; "image-missing", 1L ], counts)
        Assert.Equal(5L, tally.Total)
        Assert.Equal(2L, tally.CountOf SkipCategory.InvalidJson)
        let first = tally.ByReason |> Seq.find (fun c -> c.Category = SkipCategory.InvalidJson)
        Assert.Equal(1, first.FirstExample.Line)
        Assert.Equal("invalid-json", SkipCategories.Key SkipCategory.InvalidJson)
    finally
        Directory.Delete(root, true)
