using System.Collections;

namespace SigLip.Reference;

/// <summary>
/// An ordered name -> tensor map: parameters, gradients, golden outputs. Keeps insertion order so
/// files are written in a stable order; lookups are by name.
/// </summary>
public sealed class NamedTensors : IReadOnlyDictionary<string, Tensor>
{
    private readonly List<string> _order = [];
    private readonly Dictionary<string, Tensor> _byName = new(StringComparer.Ordinal);

    /// <summary>An empty map.</summary>
    public NamedTensors() { }

    /// <summary>A map holding <paramref name="items"/> in their order (the tensors are not copied); a repeated name throws.</summary>
    public NamedTensors(IEnumerable<KeyValuePair<string, Tensor>> items)
    {
        foreach (var (k, v) in items) Add(k, v);
    }

    /// <summary>Appends a new name; throws <see cref="ArgumentException"/> when the name is already present (use <see cref="Set"/> to replace).</summary>
    public void Add(string name, Tensor tensor)
    {
        if (_byName.ContainsKey(name)) throw new ArgumentException($"A tensor named '{name}' is already present.");
        _order.Add(name);
        _byName[name] = tensor;
    }

    /// <summary>Adds or replaces.</summary>
    public void Set(string name, Tensor tensor)
    {
        if (!_byName.ContainsKey(name)) _order.Add(name);
        _byName[name] = tensor;
    }

    /// <summary>The tensor called <paramref name="key"/>; an unknown name throws <see cref="KeyNotFoundException"/> listing some known names.</summary>
    public Tensor this[string key] => _byName.TryGetValue(key, out var t)
        ? t
        : throw new KeyNotFoundException($"No tensor named '{key}'. Known names start with: {string.Join(", ", _order.Take(5))}{(_order.Count > 5 ? ", ..." : "")}");

    /// <summary>The names, in insertion order.</summary>
    public IEnumerable<string> Keys => _order;
    /// <summary>The tensors, in insertion order.</summary>
    public IEnumerable<Tensor> Values => _order.Select(k => _byName[k]);
    /// <summary>The number of tensors.</summary>
    public int Count => _order.Count;
    /// <summary>Whether a tensor called <paramref name="key"/> is present.</summary>
    public bool ContainsKey(string key) => _byName.ContainsKey(key);
    /// <summary>The <see cref="IReadOnlyDictionary{TKey, TValue}"/> lookup; from F# prefer <see cref="Find"/>.</summary>
    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out Tensor value) => _byName.TryGetValue(key, out value);

    /// <summary>
    /// The tensor called <paramref name="name"/>, or null when there is none: a lookup without an
    /// <c>out</c> parameter (from F#: <c>match tensors.Find "logit_bias" with null -> ... | t -> ...</c>).
    /// </summary>
    public Tensor? Find(string name) => _byName.TryGetValue(name, out var t) ? t : null;
    /// <summary>The name-tensor pairs, in insertion order.</summary>
    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() => _order.Select(k => new KeyValuePair<string, Tensor>(k, _byName[k])).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>A deep copy (every tensor's data is copied).</summary>
    public NamedTensors DeepClone() => new(this.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.Clone())));
}
