namespace SigLip.Reference.Models;

/// <summary>Looks up and checks one tower's parameters, and makes its zero gradient accumulators.</summary>
internal static class TowerParameters
{
    /// <summary>
    /// The tower's parameters from <paramref name="parameters"/> (the arrays themselves, not copies),
    /// in layout order. Names of the other tower are ignored; a missing name or a wrong shape throws,
    /// naming every offender.
    /// </summary>
    public static NamedTensors Select(IReadOnlyList<ParameterSpec> specs, IReadOnlyDictionary<string, Tensor> parameters, string towerName)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var missing = new List<string>();
        var wrongShape = new List<string>();
        var selected = new NamedTensors();
        foreach (var spec in specs)
        {
            if (!parameters.TryGetValue(spec.Name, out var tensor)) { missing.Add(spec.Name); continue; }
            if (!tensor.Shape.SequenceEqual(spec.Shape))
            {
                wrongShape.Add($"{spec.Name} is {Tensor.ShapeToString(tensor.Shape)} but the config needs {Tensor.ShapeToString(spec.Shape)}");
                continue;
            }
            selected.Add(spec.Name, tensor);
        }
        if (missing.Count > 0 || wrongShape.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"missing {missing.Count} parameter(s): {string.Join(", ", missing.Take(10))}{(missing.Count > 10 ? ", ..." : "")}");
            if (wrongShape.Count > 0) parts.Add($"wrong shape: {string.Join("; ", wrongShape.Take(10))}{(wrongShape.Count > 10 ? "; ..." : "")}");
            throw new ArgumentException($"{towerName} parameters do not fit the config: {string.Join("; ", parts)}.");
        }
        return selected;
    }

    /// <summary>The activations the layers implement: HF's names for the tanh form of GELU.</summary>
    public static readonly IReadOnlyList<string> SupportedActivations = ["gelu_pytorch_tanh", "gelu_new"];

    /// <summary>Checks what the layers assume of a tower's config; throws naming the field.</summary>
    public static void CheckConfig(string prefix, int width, int heads, string activation, double epsilon)
    {
        if (width <= 0 || heads <= 0 || width % heads != 0)
            throw new ArgumentException($"config: {prefix}.hidden_size {width} must be a positive multiple of num_attention_heads {heads}.");
        if (!SupportedActivations.Contains(activation))
            throw new ArgumentException($"config: {prefix}.hidden_act is '{activation}', but the reference implements only the tanh form of GELU ({string.Join(", ", SupportedActivations)}).");
        if (!(epsilon >= 0) || double.IsInfinity(epsilon))
            throw new ArgumentException($"config: {prefix}.layer_norm_eps is {epsilon}; it must be finite and non-negative.");
    }

    /// <summary>Zero tensors, one per spec, in layout order.</summary>
    public static NamedTensors Zeros(IReadOnlyList<ParameterSpec> specs)
    {
        var grads = new NamedTensors();
        foreach (var spec in specs) grads.Add(spec.Name, Tensor.Zeros([.. spec.Shape]));
        return grads;
    }
}
