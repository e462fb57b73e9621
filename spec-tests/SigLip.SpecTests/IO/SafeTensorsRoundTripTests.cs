using FsCheck;
using FsCheck.Fluent;
using SigLip.Reference;
using SigLip.Reference.IO;
using SigLip.Reference.Models;
using SigLip.SpecTests.Support;
using Xunit.Abstractions;

namespace SigLip.SpecTests.IO;

public sealed class SafeTensorsRoundTripTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _temp = new();
    private static string FixtureFile(string name) => Path.Combine(RepoPaths.Fixture("hf-siglip-tiny"), name);

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Fixture_model_folder_loads_88_parameters_with_the_layout_shapes()
    {
        var loaded = HfCheckpoint.Load(RepoPaths.Fixture("hf-siglip-tiny"));
        var layout = ParameterLayout.For(loaded.Config);
        Assert.Equal(88, loaded.Parameters.Count);
        Assert.Equal(layout.Select(p => p.Name), loaded.Parameters.Keys);
        foreach (var spec in layout) Assert.Equal(spec.Shape, loaded.Parameters[spec.Name].Shape);
        // The fixture's README: logit_scale = ln(10) + 0.1 and logit_bias = -9.5. The stored t' is
        // float32(ln 10) + 0.1 (HF initialised the parameter in float32 before the cast to float64),
        // so it agrees with ln(10) + 0.1 to float32 precision only.
        Assert.Equal((double)(float)Math.Log(10) + 0.1, loaded.Parameters["logit_scale"].Data[0]);
        Assert.Equal(-9.5, loaded.Parameters["logit_bias"].Data[0]);
    }

    [Theory]
    [InlineData("model.safetensors")]
    [InlineData("expected.safetensors")]
    public void Rewriting_a_file_written_by_the_reference_implementation_gives_the_same_bytes(string name)
    {
        // The writer follows the Rust implementation's layout (order, JSON form, padding): a file it
        // wrote, read and written again, must come out byte for byte the same.
        var original = FixtureFile(name);
        var copy = _temp.File(name);
        using (var file = SafeTensorsFile.Open(original))
        {
            var entries = file.Entries.Select(e => e.DType.IsFloat()
                ? SafeTensorEntry.Float(e.Name, file.ReadTensor(e.Name), e.DType)
                : SafeTensorEntry.Int64(e.Name, e.Shape, file.ReadInt64(e.Name))).ToList();
            SafeTensorsWriter.Write(copy, entries, file.Metadata);
        }
        Assert.Equal(File.ReadAllBytes(original), File.ReadAllBytes(copy));
    }

    [Fact]
    public void Expected_file_inputs_read_as_token_ids_and_pixels()
    {
        using var file = SafeTensorsFile.Open(FixtureFile("expected.safetensors"));
        var ids = file.ReadTokenIds("input_ids");
        var pixels = file.ReadTensor("pixel_values");
        Assert.Equal(pixels.Shape[0], ids.Batch);
        Assert.Equal(4, pixels.Rank);
        Assert.Equal("1", file.Metadata["seed"]);
        Assert.Contains(file.Entries, e => e.Name == "grad.logit_scale");
        Assert.Equal(88, file.Entries.Count(e => e.Name.StartsWith("grad.", StringComparison.Ordinal)));
    }

    [Fact]
    public void Load_save_load_in_float64_gives_identical_tensors_names_and_config()
    {
        var first = HfCheckpoint.Load(RepoPaths.Fixture("hf-siglip-tiny"));
        HfCheckpoint.Save(_temp.Path, first.Config, first.Parameters, SafeTensorDType.F64);
        var second = HfCheckpoint.Load(_temp.Path);
        Assert.Equal(first.Config, second.Config);
        Assert.Equal(first.Parameters.Keys, second.Parameters.Keys);
        foreach (var (name, tensor) in first.Parameters)
        {
            Assert.Equal(tensor.Shape, second.Parameters[name].Shape);
            Assert.Equal(tensor.Data, second.Parameters[name].Data);
        }
        Assert.Empty(Directory.GetFiles(_temp.Path, "*.tmp"));
    }

    [Theory]
    [InlineData(SafeTensorDType.F32)]
    [InlineData(SafeTensorDType.F16)]
    [InlineData(SafeTensorDType.BF16)]
    public void Saving_in_a_narrow_dtype_rounds_each_value_once_and_is_then_stable(SafeTensorDType dtype)
    {
        var first = HfCheckpoint.Load(RepoPaths.Fixture("hf-siglip-tiny"));
        Func<double, double> round = dtype switch
        {
            SafeTensorDType.F32 => FloatRounding.RoundToSingle,
            SafeTensorDType.F16 => FloatRounding.RoundToHalf,
            _ => FloatRounding.RoundToBFloat16,
        };
        HfCheckpoint.Save(_temp.Path, first.Config, first.Parameters, dtype);
        using (var st = SafeTensorsFile.Open(_temp.File(HfCheckpoint.WeightsFileName)))
            Assert.All(st.Entries, e => Assert.Equal(dtype, e.DType));
        var second = HfCheckpoint.Load(_temp.Path);
        foreach (var (name, tensor) in first.Parameters)
            Assert.Equal(tensor.Data.Select(round).ToArray(), second.Parameters[name].Data);
        // Values that are representable come back exactly: save again, load again, nothing moves.
        var again = Path.Combine(_temp.Path, "again");
        HfCheckpoint.Save(again, second.Config, second.Parameters, dtype);
        var third = HfCheckpoint.Load(again);
        foreach (var (name, tensor) in second.Parameters) Assert.Equal(tensor.Data, third.Parameters[name].Data);
    }

    [Fact]
    public void Writer_orders_tensors_like_the_reference_implementation_and_pads_the_header()
    {
        var path = _temp.File("order.safetensors");
        SafeTensorsWriter.Write(path,
        [
            SafeTensorEntry.Float("b", Tensor.Zeros(3), SafeTensorDType.F16),
            SafeTensorEntry.Float("a", Tensor.Zeros(2), SafeTensorDType.F32),
            SafeTensorEntry.Int64("z", [1], [7]),
            SafeTensorEntry.Float("c", Tensor.Zeros(1)),
            SafeTensorEntry.Int32("i", [2], [1, -2]),
            SafeTensorEntry.Float("d", Tensor.Zeros(1), SafeTensorDType.BF16),
        ]);
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(["z", "c", "a", "i", "d", "b"], file.Entries.Select(e => e.Name));
        var bytes = File.ReadAllBytes(path);
        long headerLength = BitConverter.ToInt64(bytes, 0);
        Assert.Equal(0, headerLength % 8);
        Assert.Equal([1L, -2L], file.ReadInt64("i"));
        Assert.Equal([7L], file.ReadInt64("z"));
    }

    [Fact]
    public void Random_tensors_round_trip_through_writer_and_reader()
    {
        var dtypes = Enum.GetValues<SafeTensorDType>();
        var genValue = Gen.OneOf(
            Gen.Choose(-1000, 1000).Select(i => i / 7.0),
            ArbMap.Default.GeneratorFor<NormalFloat>().Select(f => f.Get),
            Gen.Elements(0.0, -0.0, 1e-40, -6e-8, 65504.0, 65520.0, 3.4e38, 1e300, double.Epsilon));
        var genTensor = from dtype in Gen.Elements(dtypes)
                        from rank in Gen.Choose(0, 3)
                        from shape in Gen.ArrayOf(Gen.Choose(0, 4), rank)
                        let size = shape.Aggregate(1, (a, d) => a * d)
                        from values in Gen.ArrayOf(genValue, size)
                        from ints in Gen.ArrayOf(ArbMap.Default.GeneratorFor<int>().Select(i => (long)i * (dtype == SafeTensorDType.I64 ? 3_000_000_000L : 1)), size)
                        select (dtype, shape, values, ints);
        var genFile = from count in Gen.Choose(0, 6)
                      from tensors in Gen.ArrayOf(genTensor, count)
                      from meta in Gen.Elements(0, 1, 2)
                      select (tensors, meta);
        int run = 0;
        Props.Check(genFile, sample =>
        {
            var path = _temp.File($"random{run++}.safetensors");
            var entries = sample.tensors.Select((t, i) => t.dtype.IsFloat()
                ? SafeTensorEntry.Float($"t{i}.\"x\\{i}", new Tensor(t.shape, t.values), t.dtype)
                : t.dtype == SafeTensorDType.I64
                    ? SafeTensorEntry.Int64($"t{i}.\"x\\{i}", t.shape, t.ints)
                    : SafeTensorEntry.Int32($"t{i}.\"x\\{i}", t.shape, t.ints)).ToList();
            var metadata = Enumerable.Range(0, sample.meta).ToDictionary(k => $"key{k}\n", k => $"välue \"{k}\"");
            SafeTensorsWriter.Write(path, entries, metadata);
            using var file = SafeTensorsFile.Open(path);
            if (!metadata.SequenceEqual(file.Metadata)) return false;
            if (file.Entries.Count != entries.Count) return false;
            for (int i = 0; i < entries.Count; i++)
            {
                var (dtype, shape, values, ints) = sample.tensors[i];
                string name = $"t{i}.\"x\\{i}";
                var info = file.Info(name);
                if (info.DType != dtype || !info.Shape.SequenceEqual(shape)) return false;
                if (dtype.IsFloat())
                {
                    Func<double, double> round = dtype switch
                    {
                        SafeTensorDType.F64 => v => v,
                        SafeTensorDType.F32 => FloatRounding.RoundToSingle,
                        SafeTensorDType.F16 => FloatRounding.RoundToHalf,
                        _ => FloatRounding.RoundToBFloat16,
                    };
                    var back = file.ReadTensor(name).Data;
                    if (!values.Select(round).SequenceEqual(back)) return false;
                }
                else if (!ints.SequenceEqual(file.ReadInt64(name))) return false;
            }
            return true;
        }, seed: 20260401UL, output, maxTest: 60);
    }
}
