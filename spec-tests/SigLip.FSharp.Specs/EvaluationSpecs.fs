/// Evaluation from F#: zero-shot classification and retrieval recall, against the definitions
/// written here (argmax of cosine similarity; rank of the right answer).
module SigLip.FSharp.Specs.EvaluationSpecs

open System
open Xunit
open SigLip.Reference
open SigLip.Reference.Evaluation
open SigLip.FSharp.Specs.Support

/// n random unit rows of width d.
let unitRows (rng: Random) n d = Array.init n (fun _ -> Paper.normalise (randomMatrix rng 1 d))

let argmax (scores: float[]) = scores |> Array.mapi (fun i s -> s, -i) |> Array.max |> snd |> (~-)

[<Fact>]
let ``zero-shot classification gives each image the class of highest cosine similarity`` () =
    let rng = Random 21
    let n, k, d = 30, 4, 6
    let images, classes = unitRows rng n d, unitRows rng k d
    let labels = Array.init n (fun i -> i % k)
    let classNames = [| "circle"; "square"; "triangle"; "cross" |]
    let result = ZeroShotEvaluator.Score(Tensor([| n; d |], Array.concat images), labels, Tensor([| k; d |], Array.concat classes), classNames)
    let expected = images |> Array.map (fun x -> classes |> Array.map (Paper.dot x) |> argmax)
    Assert.Equal<int>(expected, result.Predictions)
    let correct = Array.map2 (fun p l -> if p = l then 1.0 else 0.0) expected labels
    Assert.Equal(Array.average correct, result.Accuracy, 15)
    Assert.Equal(1.0 / float k, result.ChanceAccuracy)

[<Fact>]
let ``retrieval recall at K counts queries whose right answer ranks in the top K`` () =
    let rng = Random 22
    let n, d = 12, 5
    let images, texts = unitRows rng n d, unitRows rng n d
    let result = RetrievalEvaluator.Score(Tensor([| n; d |], Array.concat images), Tensor([| n; d |], Array.concat texts), Array.init n id, [| 1; 3; 5 |])
    // Image i's text is text i: its rank is 1 + the texts scoring higher.
    let rank (scores: float[]) right = 1 + (scores |> Array.filter (fun s -> s > scores[right]) |> Array.length)
    let imageRanks = Array.init n (fun i -> rank (Array.map (Paper.dot images[i]) texts) i)
    let textRanks = Array.init n (fun t -> rank (Array.map (fun x -> Paper.dot x texts[t]) images) t)
    let recall ranks k = ranks |> Array.averageBy (fun r -> if r <= k then 1.0 else 0.0)
    for k in [ 1; 3; 5 ] do
        Assert.Equal(recall imageRanks k, result.ImageToTextRecallAt k, 15)
        Assert.Equal(recall textRanks k, result.TextToImageRecallAt k, 15)
