/// Your own data from F#: an image-caption source and a tokenizer written as object expressions,
/// trained on with the Trainer; and a checkpoint saved and loaded in the HF layout.
module SigLip.FSharp.Specs.DataSpecs

open System
open System.Collections.Generic
open System.IO
open Xunit
open SigLip.Reference
open SigLip.Reference.Backends
open SigLip.Reference.Data
open SigLip.Reference.Evaluation
open SigLip.Reference.IO
open SigLip.Reference.Models
open SigLip.Reference.Training
open SigLip.FSharp.Specs.Support

let colours = [| "red", [| 1.0; -1.0; -1.0 |]; "green", [| -1.0; 1.0; -1.0 |]; "blue", [| -1.0; -1.0; 1.0 |]; "white", [| 1.0; 1.0; 1.0 |] |]

/// Flat colour images with a little noise, captioned "a <colour> square"; endless, ordered by the seed.
let colourSource (imageSize: int) =
    { new IImageTextSource with
        member _.Description = sprintf "flat colours, %dx%d" imageSize imageSize
        member _.ImageSize = imageSize
        member _.Channels = 3
        member _.ClassNames = colours |> Array.map fst :> IReadOnlyList<string>
        member _.Examples seed =
            seq {
                let rng = Random seed
                let plane = imageSize * imageSize
                while true do
                    let name, rgb = colours[rng.Next colours.Length]
                    let pixels = Array.init (3 * plane) (fun e -> 0.8 * rgb[e / plane] + 0.2 * (rng.NextDouble() * 2.0 - 1.0))
                    yield ImageTextExample(Tensor([| 3; imageSize; imageSize |], pixels), sprintf "a %s square" name, name)
            } }

/// Whole words to ids 2, 3, ...; 1 ends and pads the text (SigLIP pads with the end token), 0 is unknown.
let wordTokenizer (words: string[]) =
    let ids = words |> Array.mapi (fun i w -> w, i + 2) |> dict
    { new ITextTokenizer with
        member _.VocabSize = words.Length + 2
        member _.Encode(texts, maxLength) =
            let encode (text: string) =
                let tokens = text.Split(' ', StringSplitOptions.RemoveEmptyEntries) |> Array.map (fun w -> match ids.TryGetValue w with | true, id -> id | _ -> 0)
                Array.init maxLength (fun t -> if t < tokens.Length && t < maxLength - 1 then tokens[t] else 1)
            TokenIds(texts.Count, maxLength, texts |> Seq.collect encode |> Array.ofSeq) }

let colourTokenizer = wordTokenizer (Array.append [| "a"; "square" |] (Array.map fst colours))

let colourConfig =
    SiglipConfig(
        TextConfig(VocabSize = colourTokenizer.VocabSize, HiddenSize = 16, IntermediateSize = 32, NumHiddenLayers = 1,
                   NumAttentionHeads = 2, MaxPositionEmbeddings = 4, PadTokenId = 1, BosTokenId = 1, EosTokenId = 1),
        VisionConfig(HiddenSize = 16, IntermediateSize = 32, NumHiddenLayers = 1, NumAttentionHeads = 2, ImageSize = 8, PatchSize = 4))

[<Fact>]
let ``training on a data source written in F# lowers the loss and learns the colours`` () =
    use backend = new ReferenceBackend()
    let settings = TrainingSettings(Steps = 40, BatchSize = 8, LearningRate = 3e-3, WarmupSteps = 4, Seed = 3)
    use trainer = Trainer.Start(backend, colourConfig, colourSource 8, colourTokenizer, settings)
    let result = trainer.Run()
    let firstFive, lastFive = Seq.take 5 result.Losses |> Seq.average, Seq.skip 35 result.Losses |> Seq.average
    assertTrue (lastFive < 0.5 * firstFive) (sprintf "mean loss of the last 5 steps %g, of the first 5 %g" lastFive firstFive)
    // Fresh images (another seed), classified by the prompt "a <colour> square".
    let test = (colourSource 8).Examples 99 |> Seq.take 40 |> Array.ofSeq
    let zeroShot = ZeroShotEvaluator.Evaluate(trainer.Model, colourTokenizer, test, Array.map fst colours, [| "a {} square" |], 4)
    assertTrue (zeroShot.Accuracy >= 0.9) (sprintf "zero-shot accuracy %g on flat colours" zeroShot.Accuracy)

[<Fact>]
let ``an HF checkpoint saved in float64 loads back bit for bit`` () =
    let folder = Path.Combine(Path.GetTempPath(), "siglip-fsharp-" + Guid.NewGuid().ToString "N")
    try
        let parameters = ModelInit.Random(colourConfig, 7)
        HfCheckpoint.Save(folder, colourConfig, parameters, SafeTensorDType.F64)
        let loaded = HfCheckpoint.Load folder
        Assert.Equal(colourConfig, loaded.Config)
        Assert.Equal<string>(parameters.Keys, loaded.Parameters.Keys)
        for KeyValue (name, tensor) in parameters do
            Assert.Equal<int>(tensor.Shape, loaded.Parameters[name].Shape)
            Assert.Equal<float>(tensor.Data, loaded.Parameters[name].Data)
    finally
        if Directory.Exists folder then Directory.Delete(folder, true)
