using SigLip.Reference;
using SigLip.Reference.Backends;
using SigLip.Reference.Models;
using SigLip.SpecTests.Support;
using SigLip.SpecTests.TorchSharp;
using Xunit.Abstractions;

namespace SigLip.SpecTests.Models;

/// <summary>
/// A whole model on one backend, for the model-level checks: the reference model (the readable
/// loops), the same model on the managed kernels (<c>new SiglipModel(config, parameters, new
/// ManagedOps(float64))</c>), or the torch backend's own model (<see cref="IBackend.CreateModel"/>,
/// float64, libtorch modules and autograd). Names as in <see cref="OpsUnderTest"/>; where libtorch
/// cannot start, the torch case is skipped with the reason.
/// </summary>
internal sealed class ModelUnderTest : IDisposable
{
    private readonly SiglipModel? _model;
    private readonly IBackend? _backend;
    private readonly ISiglipModel? _torch;
    private readonly NamedTensors? _host;

    /// <summary>Every backend whose model is checked: reference, managed float64, torch float64.</summary>
    public static TheoryData<string> Float64 => [OpsUnderTest.Reference, OpsUnderTest.ManagedFloat64, OpsUnderTest.TorchFloat64];

    private ModelUnderTest(SiglipModel model) => _model = model;

    private ModelUnderTest(IBackend backend, ISiglipModel model, NamedTensors host)
    {
        _backend = backend;
        _torch = model;
        _host = host;
    }

    /// <summary>The model of <paramref name="config"/> with these parameters (copied) on the named backend.</summary>
    public static ModelUnderTest Create(string backend, SiglipConfig config, IReadOnlyDictionary<string, Tensor> parameters, ITestOutputHelper output)
    {
        if (backend != OpsUnderTest.TorchFloat64)
            return new ModelUnderTest(new SiglipModel(config, parameters, OpsUnderTest.Get(backend, output)));
        var torch = TorchCpu.Start(output, "float64");
        var model = torch.CreateModel(config, parameters);
        return new ModelUnderTest(torch, model, model.GetParameters());
    }

    /// <summary>The parameters by HF name; change an element, then call <see cref="Loss"/> naming the tensor changed.</summary>
    public NamedTensors Parameters => _model?.Parameters ?? _host!;

    /// <summary>Forward and backward of the loss: every output by HF name, and the gradients by parameter name.</summary>
    public (IReadOnlyDictionary<string, Tensor> Outputs, NamedTensors Gradients) ForwardBackward(SiglipBatch batch, LossOptions options)
    {
        if (_model is not null)
        {
            var pass = _model.Forward(batch, options);
            return (pass.Outputs, _model.Backward(pass));
        }
        var step = _torch!.ForwardBackward(batch, options, collectOutputs: true);
        return (step.Outputs, _torch.Gradients());
    }

    /// <summary>The loss after <paramref name="changed"/>'s values in <see cref="Parameters"/> were edited in place.</summary>
    public double Loss(SiglipBatch batch, LossOptions options, string changed)
    {
        Sync(changed);
        return _model is not null ? _model.Forward(batch, options).Loss : _torch!.Forward(batch, options, collectOutputs: false).Loss;
    }

    /// <summary>
    /// Makes the model see <paramref name="changed"/>'s values in <see cref="Parameters"/> again. The
    /// reference model computes from these very arrays; the torch model holds copies, so call this after
    /// restoring a tensor, or its last perturbed copy would stay in the model.
    /// </summary>
    public void Sync(string changed)
    {
        if (_torch is not null) _torch.SetParameters(new Dictionary<string, Tensor> { [changed] = _host![changed] });
    }

    public void Dispose()
    {
        _torch?.Dispose();
        _backend?.Dispose();
    }
}
