// SigLIP's two towers as TorchSharp modules, laid out so that named_parameters() yields exactly the
// Hugging Face names (text_model.encoder.layers.0.self_attn.q_proj.weight, vision_model.head.probe, ...):
// field names mirror HF's attribute names, hence snake_case here and only here.
//
// Dimension legend: B = batch, N = image tokens (patches), L = text tokens, T = tokens of either tower,
// H = width, M = MLP width, A = heads, Dh = H / A, P = text projection width, C = channels,
// S = image side, p = patch side.
using TorchSharp;
using TorchSharp.Modules;
using SigLip.Reference.Models;
using static TorchSharp.torch;

namespace SigLip.Backends.TorchSharp.Modules;

/// <summary>fc1 -> gelu (tanh) -> fc2.</summary>
public sealed class SiglipMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly Linear fc2;
    private readonly Precision _precision;

    /// <summary>The module for these sizes, its parameters under HF's names (libtorch's default initialisation until parameters are copied in).</summary>
    public SiglipMlp(int width, int mlpWidth, Precision precision) : base(nameof(SiglipMlp))
    {
        fc1 = nn.Linear(width, mlpWidth);
        fc2 = nn.Linear(mlpWidth, width);
        _precision = precision;
        RegisterComponents();
    }

    /// <summary>[B, T, H] -> [B, T, H].</summary>
    public override Tensor forward(Tensor x) // [B, T, H] -> [B, T, H]
    {
        var hidden = _precision.Linear(x, fc1.weight!, fc1.bias);                 // [B, T, M]
        hidden = nn.functional.gelu(hidden, GELU.Approximate.tanh);
        return _precision.Linear(hidden, fc2.weight!, fc2.bias);                   // [B, T, H]
    }
}

/// <summary>Multi-head self-attention, no mask, scale Dh^-0.5 (SDPA's default).</summary>
public sealed class SiglipAttention : nn.Module<Tensor, Tensor>
{
    // Registration order is HF's (k, v, q, out): named_parameters() then matches ParameterLayout.
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear q_proj;
    private readonly Linear out_proj;
    private readonly int _heads;
    private readonly Precision _precision;

    /// <summary>The module for these sizes, its parameters under HF's names (libtorch's default initialisation until parameters are copied in).</summary>
    public SiglipAttention(int width, int heads, Precision precision) : base(nameof(SiglipAttention))
    {
        k_proj = nn.Linear(width, width);
        v_proj = nn.Linear(width, width);
        q_proj = nn.Linear(width, width);
        out_proj = nn.Linear(width, width);
        _heads = heads;
        _precision = precision;
        RegisterComponents();
    }

    /// <summary>[B, T, H] -> [B, T, H]: every token attends to every token.</summary>
    public override Tensor forward(Tensor x) // [B, T, H]
    {
        long batch = x.shape[0], tokens = x.shape[1], width = x.shape[2];
        // Fused QKV: one matmul against the three HF weights stacked in q, k, v order.
        var weight = cat([q_proj.weight!, k_proj.weight!, v_proj.weight!], 0);    // [3H, H]
        var bias = cat([q_proj.bias!, k_proj.bias!, v_proj.bias!], 0);            // [3H]
        var qkv = _precision.Linear(x, weight, bias)                             // [B, T, 3H]
            .view(batch, tokens, 3, _heads, width / _heads)
            .permute(2, 0, 3, 1, 4);                                              // [3, B, A, T, Dh]
        var attended = nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]); // [B, A, T, Dh]
        var merged = attended.transpose(1, 2).reshape(batch, tokens, width);      // [B, T, H]
        return _precision.Linear(merged, out_proj.weight!, out_proj.bias);        // [B, T, H]
    }
}

/// <summary>Pre-LN transformer layer: x + attn(LN1 x), then x + MLP(LN2 x).</summary>
public sealed class SiglipEncoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly SiglipAttention self_attn;
    private readonly LayerNorm layer_norm1;
    private readonly SiglipMlp mlp;
    private readonly LayerNorm layer_norm2;
    private readonly double _eps;
    private readonly Precision _precision;

    /// <summary>The module for these sizes, its parameters under HF's names (libtorch's default initialisation until parameters are copied in).</summary>
    public SiglipEncoderLayer(int width, int mlpWidth, int heads, double eps, Precision precision) : base(nameof(SiglipEncoderLayer))
    {
        self_attn = new SiglipAttention(width, heads, precision);
        layer_norm1 = nn.LayerNorm(width, eps);
        mlp = new SiglipMlp(width, mlpWidth, precision);
        layer_norm2 = nn.LayerNorm(width, eps);
        _eps = eps;
        _precision = precision;
        RegisterComponents();
    }

    /// <summary>[B, T, H] -> [B, T, H]: pre-norm attention and MLP, each with a residual.</summary>
    public override Tensor forward(Tensor x) // [B, T, H], master dtype (the residual stream)
    {
        x = x + self_attn.call(_precision.LayerNorm(x, layer_norm1.weight!, layer_norm1.bias!, _eps));
        return x + mlp.call(_precision.LayerNorm(x, layer_norm2.weight!, layer_norm2.bias!, _eps));
    }
}

/// <summary>A stack of encoder layers (HF: encoder.layers.i).</summary>
public sealed class SiglipEncoder : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<SiglipEncoderLayer> layers;

    /// <summary>The module for these sizes, its parameters under HF's names (libtorch's default initialisation until parameters are copied in).</summary>
    public SiglipEncoder(int count, int width, int mlpWidth, int heads, double eps, Precision precision) : base(nameof(SiglipEncoder))
    {
        layers = nn.ModuleList(Enumerable.Range(0, count).Select(_ => new SiglipEncoderLayer(width, mlpWidth, heads, eps, precision)).ToArray());
        RegisterComponents();
    }

    /// <summary>[B, T, H] -> [B, T, H]: the layers in order.</summary>
    public override Tensor forward(Tensor x)
    {
        foreach (var layer in layers) x = layer.call(x);
        return x;
    }
}

/// <summary>Conv2d patch embedding (kernel = stride = p) plus a learned position embedding, no class token.</summary>
public sealed class SiglipVisionEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d patch_embedding;
    private readonly Embedding position_embedding;
    private readonly int _patch;
    private readonly Precision _precision;

    /// <summary>The module for these sizes, its parameters under HF's names (libtorch's default initialisation until parameters are copied in).</summary>
    public SiglipVisionEmbeddings(VisionConfig config, Precision precision) : base(nameof(SiglipVisionEmbeddings))
    {
        patch_embedding = nn.Conv2d(config.NumChannels, config.HiddenSize, config.PatchSize, stride: config.PatchSize);
        position_embedding = nn.Embedding(config.NumPatches, config.HiddenSize);
        _patch = config.PatchSize;
        _precision = precision;
        RegisterComponents();
    }

    /// <summary>Pixels [B, C, S, S] -> patch tokens plus positions [B, N, H].</summary>
    public override Tensor forward(Tensor pixels) // [B, C, S, S]
    {
        var patches = nn.functional.conv2d(_precision.Compute(pixels), _precision.Compute(patch_embedding.weight!),
            _precision.Compute(patch_embedding.bias!), strides: [_patch, _patch]);   // [B, H, S/p, S/p]
        var tokens = patches.flatten(2).transpose(1, 2);                          // [B, N, H]
        return _precision.Master(tokens) + position_embedding.weight!;            // [B, N, H] + [N, H]
    }
}

/// <summary>
/// The MAP head: a learned probe attends to the tokens (nn.MultiheadAttention's layout: fused
/// in_proj_weight [3H, H] in q, k, v order, out_proj), then h + MLP(LN h); the output is h[:, 0].
/// </summary>
public sealed class SiglipAttentionPoolingHead : nn.Module<Tensor, Tensor>
{
    private readonly Parameter probe;
    private readonly MultiheadAttentionWeights attention;
    private readonly LayerNorm layernorm;
    private readonly SiglipMlp mlp;
    private readonly int _heads;
    private readonly double _eps;
    private readonly Precision _precision;

    /// <summary>The module for these sizes, its parameters under HF's names (libtorch's default initialisation until parameters are copied in).</summary>
    public SiglipAttentionPoolingHead(VisionConfig config, Precision precision) : base(nameof(SiglipAttentionPoolingHead))
    {
        int h = config.HiddenSize;
        probe = nn.Parameter(randn(1, 1, h));
        attention = new MultiheadAttentionWeights(h);
        layernorm = nn.LayerNorm(h, config.LayerNormEps);
        mlp = new SiglipMlp(h, config.IntermediateSize, precision);
        _heads = config.NumAttentionHeads;
        _eps = config.LayerNormEps;
        _precision = precision;
        RegisterComponents();
    }

    /// <summary>Tokens [B, N, H] -> [B, H]: the probe attends over the tokens, then LayerNorm and MLP with a residual.</summary>
    public override Tensor forward(Tensor tokens) // [B, N, H]
    {
        long batch = tokens.shape[0], n = tokens.shape[1], h = tokens.shape[2], dh = h / _heads;
        var (wq, wk, wv) = SplitThree(attention.in_proj_weight);                  // 3 x [H, H]
        var (bq, bk, bv) = SplitThree(attention.in_proj_bias);                    // 3 x [H]
        var query = _precision.Linear(probe, wq, bq)                              // [1, 1, H]
            .view(1, _heads, 1, dh).expand(batch, _heads, 1, dh);                 // [B, A, 1, Dh]
        var kv = _precision.Linear(tokens, cat([wk, wv], 0), cat([bk, bv], 0))    // [B, N, 2H]
            .view(batch, n, 2, _heads, dh).permute(2, 0, 3, 1, 4);                // [2, B, A, N, Dh]
        var attended = nn.functional.scaled_dot_product_attention(query, kv[0], kv[1]); // [B, A, 1, Dh]
        var pooled = _precision.Linear(attended.transpose(1, 2).reshape(batch, 1, h),
            attention.out_proj.weight!, attention.out_proj.bias);                 // [B, 1, H]
        var hidden = _precision.Master(pooled);
        hidden = hidden + mlp.call(_precision.LayerNorm(hidden, layernorm.weight!, layernorm.bias!, _eps));
        return hidden[.., 0];                                                     // [B, H]
    }

    private static (Tensor, Tensor, Tensor) SplitThree(Tensor fused)
    {
        var parts = fused.chunk(3, 0);
        return (parts[0], parts[1], parts[2]);
    }
}

/// <summary>Holds nn.MultiheadAttention's parameters under its names; the MAP head does the arithmetic.</summary>
public sealed class MultiheadAttentionWeights : nn.Module
{
    // Public so the head can read them; the names are PyTorch's.
    /// <summary>[3H, H] the query, key and value projections stacked (HF: head.attention.in_proj_weight).</summary>
    public readonly Parameter in_proj_weight;
    /// <summary>[3H] their biases.</summary>
    public readonly Parameter in_proj_bias;
    /// <summary>The output projection H -> H.</summary>
    public readonly Linear out_proj;

    /// <summary>The module for these sizes, its parameters under HF's names (libtorch's default initialisation until parameters are copied in).</summary>
    public MultiheadAttentionWeights(int width) : base(nameof(MultiheadAttentionWeights))
    {
        in_proj_weight = nn.Parameter(empty(3 * width, width));
        in_proj_bias = nn.Parameter(zeros(3 * width));
        out_proj = nn.Linear(width, width);
        nn.init.xavier_uniform_(in_proj_weight);
        RegisterComponents();
    }
}

/// <summary>HF's vision_model: embeddings -> encoder -> post_layernorm -> MAP head.</summary>
public sealed class SiglipVisionTransformer : nn.Module<Tensor, (Tensor LastHiddenState, Tensor PoolerOutput)>
{
    private readonly SiglipVisionEmbeddings embeddings;
    private readonly SiglipEncoder encoder;
    private readonly LayerNorm post_layernorm;
    private readonly SiglipAttentionPoolingHead head;
    private readonly double _eps;
    private readonly Precision _precision;

    /// <summary>The module for these sizes, its parameters under HF's names (libtorch's default initialisation until parameters are copied in).</summary>
    public SiglipVisionTransformer(VisionConfig config, Precision precision) : base(nameof(SiglipVisionTransformer))
    {
        embeddings = new SiglipVisionEmbeddings(config, precision);
        encoder = new SiglipEncoder(config.NumHiddenLayers, config.HiddenSize, config.IntermediateSize, config.NumAttentionHeads, config.LayerNormEps, precision);
        post_layernorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        head = new SiglipAttentionPoolingHead(config, precision);
        _eps = config.LayerNormEps;
        _precision = precision;
        RegisterComponents();
    }

    /// <summary>Pixels [B, C, S, S] -> (last hidden state [B, N, H], pooler output [B, H]).</summary>
    public override (Tensor LastHiddenState, Tensor PoolerOutput) forward(Tensor pixels) // [B, C, S, S]
    {
        var encoded = encoder.call(embeddings.call(pixels));                      // [B, N, H]
        var last = _precision.LayerNorm(encoded, post_layernorm.weight!, post_layernorm.bias!, _eps); // [B, N, H]
        return (last, head.call(last));                                           // [B, N, H], [B, H]
    }
}

/// <summary>Token embedding plus the position embedding of positions 0..L-1.</summary>
public sealed class SiglipTextEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly Embedding token_embedding;
    private readonly Embedding position_embedding;

    /// <summary>The module for these sizes, its parameters under HF's names (libtorch's default initialisation until parameters are copied in).</summary>
    public SiglipTextEmbeddings(TextConfig config) : base(nameof(SiglipTextEmbeddings))
    {
        token_embedding = nn.Embedding(config.VocabSize, config.HiddenSize);
        position_embedding = nn.Embedding(config.MaxPositionEmbeddings, config.HiddenSize);
        RegisterComponents();
    }

    /// <summary>Token ids [B, L] (int64) -> [B, L, H].</summary>
    public override Tensor forward(Tensor ids) // [B, L] int64
    {
        long length = ids.shape[1];
        var tokens = token_embedding.call(ids);                                   // [B, L, H]
        return tokens + position_embedding.weight![..(int)length];               // + [L, H]
    }
}

/// <summary>HF's text_model: embeddings -> encoder (no mask) -> final_layer_norm -> last token -> head.</summary>
public sealed class SiglipTextTransformer : nn.Module<Tensor, (Tensor LastHiddenState, Tensor PoolerOutput)>
{
    private readonly SiglipTextEmbeddings embeddings;
    private readonly SiglipEncoder encoder;
    private readonly LayerNorm final_layer_norm;
    private readonly Linear head;
    private readonly double _eps;
    private readonly Precision _precision;

    /// <summary>The module for these sizes, its parameters under HF's names (libtorch's default initialisation until parameters are copied in).</summary>
    public SiglipTextTransformer(TextConfig config, Precision precision) : base(nameof(SiglipTextTransformer))
    {
        embeddings = new SiglipTextEmbeddings(config);
        encoder = new SiglipEncoder(config.NumHiddenLayers, config.HiddenSize, config.IntermediateSize, config.NumAttentionHeads, config.LayerNormEps, precision);
        final_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        head = nn.Linear(config.HiddenSize, config.ProjectionDim);
        _eps = config.LayerNormEps;
        _precision = precision;
        RegisterComponents();
    }

    /// <summary>Token ids [B, L] -> (last hidden state [B, L, H], pooler output [B, P]).</summary>
    public override (Tensor LastHiddenState, Tensor PoolerOutput) forward(Tensor ids) // [B, L]
    {
        var encoded = encoder.call(embeddings.call(ids));                         // [B, L, H]
        var last = _precision.LayerNorm(encoded, final_layer_norm.weight!, final_layer_norm.bias!, _eps); // [B, L, H]
        // SigLIP pads with a sticky end token and no mask: the last position is always end-of-text.
        var pooled = _precision.Master(_precision.Linear(last[.., -1], head.weight!, head.bias)); // [B, P]
        return (last, pooled);
    }
}

/// <summary>HF's SiglipModel: both towers plus t' (logit_scale) and b (logit_bias), each of shape [1].</summary>
public sealed class SiglipModule : nn.Module
{
    // Registered in ParameterLayout's order: text, vision, then the loss's scalars.
    /// <summary>The text tower (HF: text_model).</summary>
    public readonly SiglipTextTransformer text_model;
    /// <summary>The image tower (HF: vision_model).</summary>
    public readonly SiglipVisionTransformer vision_model;
    /// <summary>t' [1]; the logits are scaled by exp(t').</summary>
    public readonly Parameter logit_scale;
    /// <summary>b [1].</summary>
    public readonly Parameter logit_bias;

    /// <summary>The module for these sizes, its parameters under HF's names (libtorch's default initialisation until parameters are copied in).</summary>
    public SiglipModule(SiglipConfig config, Precision precision) : base(nameof(SiglipModule))
    {
        config.Validate();
        text_model = new SiglipTextTransformer(config.Text, precision);
        vision_model = new SiglipVisionTransformer(config.Vision, precision);
        logit_scale = nn.Parameter(tensor(new[] { Math.Log(10) }, ScalarType.Float32));
        logit_bias = nn.Parameter(tensor(new[] { -10.0 }, ScalarType.Float32));
        RegisterComponents();
    }
}
