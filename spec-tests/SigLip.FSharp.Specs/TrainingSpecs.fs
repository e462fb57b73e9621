/// Training from F#: one AdamW step through the backend contract, checked against AdamW's update
/// written here, and a few steps of the Trainer on the built-in data.
module SigLip.FSharp.Specs.TrainingSpecs

open System
open Xunit
open SigLip.Reference
open SigLip.Reference.Backends
open SigLip.Reference.Models
open SigLip.Reference.Numerics
open SigLip.Reference.Training
open SigLip.FSharp.Specs.Support
open SigLip.FSharp.Specs.ModelSpecs

[<Fact>]
let ``one step through the contract is AdamW's first update, and lowers the loss`` () =
    let registry = BackendRegistry().Register(ReferenceBackendProvider())
    use backend = registry.Start "reference"
    use model = backend.CreateRandomModel(tinyConfig, seed = 1)
    let batch = randomBatch tinyConfig 3 4
    let before = model.GetParameters()
    let first = model.ForwardBackward(batch)
    let gradients = model.Gradients()
    let learningRate, weightDecay, epsilon = 1e-3, 0.1, 1e-8
    let settings = AdamWSettings(WeightDecay = weightDecay, Epsilon = epsilon, MaxGradNorm = 0.0)
    model.OptimizerStep(settings, learningRate) |> ignore
    let after = model.GetParameters()
    // At step 1, Adam's bias-corrected moments are m = g and v = g^2, so the update is
    // lr g / (|g| + eps); decoupled decay first shrinks decayed weights by (1 - lr wd).
    for spec in ParameterLayout.For tinyConfig do
        let decay = if spec.Decayed then 1.0 - learningRate * weightDecay else 1.0
        let expected =
            Array.map2 (fun p g -> p * decay - learningRate * g / (abs g + epsilon)) before[spec.Name].Data gradients[spec.Name].Data
        assertClose spec.Name (Tolerance(1e-15, 1e-12)) after[spec.Name].Data expected
    // Weight decay never touches biases, LayerNorms, or t' and b.
    for spec in ParameterLayout.For tinyConfig do
        if spec.Name.EndsWith ".bias" || spec.Name.Contains "norm" || spec.Name.StartsWith "logit_" then
            assertTrue (not spec.Decayed) (sprintf "%s is decayed" spec.Name)
    let second = model.Forward(batch)
    assertTrue (second.Loss < first.Loss) (sprintf "loss %g after one step, %g before" second.Loss first.Loss)

[<Fact>]
let ``the Trainer's first loss is the seeded model's loss on the seeded first batch, and runs repeat exactly`` () =
    let config = BuiltInRecipe.Config()
    let settings = BuiltInRecipe.Settings.With(steps = 3, batchSize = 8, warmupSteps = 1, checkpointEvery = 0)
    let train () =
        use backend = new ReferenceBackend()
        use trainer = Trainer.Start(backend, config, BuiltInRecipe.TrainData(), BuiltInRecipe.Tokenizer(), settings)
        trainer.Run()
    let result = train ()
    Assert.Equal(3, result.Steps)
    Assert.Equal(3, result.Losses.Count)
    Assert.Null(result.CheckpointPath)
    // The same seed gives the same initial parameters and the same batches.
    use backend = new ReferenceBackend()
    use model = backend.CreateModel(config, ModelInit.Random(config, settings.Seed, settings.InitialLogitScale, settings.InitialLogitBias))
    use batches = new BatchStream(BuiltInRecipe.TrainData(), BuiltInRecipe.Tokenizer(), settings.Seed, settings.BatchSize,
                                  config.Text.MaxPositionEmbeddings, config.Vision.NumChannels, config.Vision.ImageSize)
    Assert.Equal(model.Forward(batches.Next()).Loss, result.Losses[0])
    // float64 on the reference: a second run is bit for bit the same.
    Assert.Equal<float>(result.Losses, (train ()).Losses)
