#include "diffusion/unet_blocks.h"

#include <algorithm>
#include <cmath>

namespace nd {
namespace {

torch::nn::GroupNorm group_norm(int groups, int channels, double eps) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels).eps(eps));
}

torch::nn::Conv2d conv(int in, int out, int kernel, int stride = 1, int padding = -1) {
  if (padding < 0) padding = (kernel - 1) / 2;
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding));
}

torch::nn::Linear linear(int in, int out, bool bias = true) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

}  // namespace

// ---------------------------------------------------------------------------------------------- timesteps

at::Tensor timestep_embedding(const at::Tensor& timesteps, int dim, bool flip_sin_to_cos, double freq_shift,
                              double max_period) {
  TORCH_CHECK(timesteps.dim() == 1, "timestep_embedding: timesteps must be [B], got ", timesteps.sizes());
  TORCH_CHECK(dim >= 2, "timestep_embedding: dim must be >= 2");
  const int half = dim / 2;
  // The same float32 operations, in the same order, as diffusers (the golden time_proj matches bit for bit).
  at::Tensor exponent = at::arange(0, half, timesteps.options().dtype(at::kFloat)) * (-std::log(max_period));
  exponent = exponent / (half - freq_shift);
  const at::Tensor freqs = at::exp(exponent);
  const at::Tensor e = timesteps.unsqueeze(1).to(at::kFloat) * freqs.unsqueeze(0);
  at::Tensor emb =
      flip_sin_to_cos ? at::cat({at::cos(e), at::sin(e)}, -1) : at::cat({at::sin(e), at::cos(e)}, -1);
  if (dim % 2 == 1) emb = at::constant_pad_nd(emb, {0, 1});
  return emb;
}

TimestepEmbeddingImpl::TimestepEmbeddingImpl(int in_channels, int time_embed_dim) {
  linear_1 = register_module("linear_1", linear(in_channels, time_embed_dim));
  linear_2 = register_module("linear_2", linear(time_embed_dim, time_embed_dim));
}

at::Tensor TimestepEmbeddingImpl::forward(const at::Tensor& x) { return linear_2(at::silu(linear_1(x))); }

// ----------------------------------------------------------------------------------------------- resnets

ResnetBlock2DImpl::ResnetBlock2DImpl(const ResnetBlock2DOptions& o) : o_(o) {
  norm1 = register_module("norm1", group_norm(o.groups, o.in_channels, o.eps));
  conv1 = register_module("conv1", conv(o.in_channels, o.out_channels, 3));
  if (o.temb_channels > 0)
    time_emb_proj = register_module(
        "time_emb_proj", linear(o.temb_channels, o.scale_shift ? 2 * o.out_channels : o.out_channels));
  norm2 = register_module("norm2", group_norm(o.groups, o.out_channels, o.eps));
  conv2 = register_module("conv2", conv(o.out_channels, o.out_channels, 3));
  if (o.in_channels != o.out_channels)
    conv_shortcut = register_module("conv_shortcut", conv(o.in_channels, o.out_channels, 1));
}

at::Tensor ResnetBlock2DImpl::forward(const at::Tensor& x, const at::Tensor& temb) {
  at::Tensor h = conv1(at::silu(norm1(x)));
  at::Tensor t;
  if (o_.temb_channels > 0) {
    TORCH_CHECK(temb.defined() && temb.dim() == 2 && temb.size(0) == x.size(0),
                "ResnetBlock2D: temb must be [B, ", o_.temb_channels, "]");
    t = time_emb_proj(at::silu(temb)).unsqueeze(-1).unsqueeze(-1);
    if (!o_.scale_shift) h = h + t;
  }
  h = norm2(h);
  if (t.defined() && o_.scale_shift) {
    const auto ss = t.chunk(2, 1);
    h = h * (1 + ss[0]) + ss[1];
  }
  h = conv2(at::silu(h));
  at::Tensor out = (conv_shortcut ? conv_shortcut(x) : x) + h;
  if (o_.output_scale_factor != 1.0) out = out / o_.output_scale_factor;
  return out;
}

Downsample2DImpl::Downsample2DImpl(int channels, int out_channels, int padding) : padding_(padding) {
  conv = register_module("conv", nd::conv(channels, out_channels, 3, 2, padding));
}

at::Tensor Downsample2DImpl::forward(const at::Tensor& x) {
  // padding 0: diffusers pads (0, 1, 0, 1), right and bottom only, before the unpadded stride-2 conv.
  if (padding_ == 0) return conv(at::constant_pad_nd(x, {0, 1, 0, 1}, 0));
  return conv(x);
}

Upsample2DImpl::Upsample2DImpl(int channels, int out_channels) {
  conv = register_module("conv", nd::conv(channels, out_channels, 3));
}

at::Tensor Upsample2DImpl::forward(const at::Tensor& x, at::IntArrayRef size) {
  TORCH_CHECK(x.dim() == 4, "Upsample2D: x must be [B, C, H, W]");
  const std::vector<int64_t> out_size =
      size.empty() ? std::vector<int64_t>{2 * x.size(2), 2 * x.size(3)} : size.vec();
  TORCH_CHECK(out_size.size() == 2, "Upsample2D: size must be {H, W}");
  return conv(at::upsample_nearest2d(x, out_size));
}

// --------------------------------------------------------------------------------------------- attention

at::Tensor multi_head_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int heads,
                                int64_t max_score_elements) {
  TORCH_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3,
              "multi_head_attention: q, k, v must be [B, L, C]");
  TORCH_CHECK(k.sizes() == v.sizes() && q.size(0) == k.size(0) && q.size(2) == k.size(2),
              "multi_head_attention: shapes q ", q.sizes(), ", k ", k.sizes(), ", v ", v.sizes());
  const int64_t B = q.size(0), L = q.size(1), M = k.size(1), C = q.size(2);
  TORCH_CHECK(heads >= 1 && C % heads == 0, "multi_head_attention: ", heads, " heads do not divide ", C);
  const int64_t d = C / heads, BH = B * heads;
  // diffusers' head_to_batch_dim: [B, n, heads·d] → [B·heads, n, d].
  auto split = [&](const at::Tensor& t, int64_t n) {
    return t.reshape({B, n, heads, d}).permute({0, 2, 1, 3}).reshape({BH, n, d});
  };
  const at::Tensor qh = split(q, L), kt = split(k, M).transpose(1, 2), vh = split(v, M);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  // Half-precision inputs: scores and softmax in float32 (diffusers' upcast_attention/upcast_softmax), so
  // that Q Kᵀ cannot overflow; float32 and float64 stay as they are.
  const bool upcast = !(q.scalar_type() == at::kFloat || q.scalar_type() == at::kDouble);
  auto attend = [&](int64_t b0, int64_t b1) {
    at::Tensor qs = qh.slice(0, b0, b1), ks = kt.slice(0, b0, b1);
    if (upcast) qs = qs.to(at::kFloat), ks = ks.to(at::kFloat);
    const at::Tensor probs = at::softmax(at::bmm(qs, ks).mul_(scale), -1);
    return at::bmm(probs.to(v.scalar_type()), vh.slice(0, b0, b1));
  };
  const int64_t per_slice = std::max<int64_t>(1, max_score_elements / std::max<int64_t>(1, L * M));
  at::Tensor out;
  if (per_slice >= BH) {
    out = attend(0, BH);
  } else {
    std::vector<at::Tensor> parts;
    for (int64_t b0 = 0; b0 < BH; b0 += per_slice) parts.push_back(attend(b0, std::min(BH, b0 + per_slice)));
    out = at::cat(parts, 0);
  }
  return out.reshape({B, heads, L, d}).permute({0, 2, 1, 3}).reshape({B, L, C});
}

AttentionImpl::AttentionImpl(int query_dim, int context_dim, int heads, int dim_head, bool qkv_bias)
    : heads_(heads) {
  const int inner = heads * dim_head;
  const int kv_dim = context_dim > 0 ? context_dim : query_dim;
  to_q = register_module("to_q", linear(query_dim, inner, qkv_bias));
  to_k = register_module("to_k", linear(kv_dim, inner, qkv_bias));
  to_v = register_module("to_v", linear(kv_dim, inner, qkv_bias));
  to_out = register_module("to_out", torch::nn::ModuleList());
  out_ = linear(inner, query_dim);
  to_out->push_back(out_);
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const at::Tensor& context) {
  const at::Tensor& kv = context.defined() ? context : x;
  return out_(multi_head_attention(to_q(x), to_k(kv), to_v(kv), heads_));
}

GEGLUImpl::GEGLUImpl(int dim_in, int dim_out) { proj = register_module("proj", linear(dim_in, 2 * dim_out)); }

at::Tensor GEGLUImpl::forward(const at::Tensor& x) {
  const auto hg = proj(x).chunk(2, -1);
  return hg[0] * at::gelu(hg[1]);
}

FeedForwardImpl::FeedForwardImpl(int dim, int mult) {
  net = register_module("net", torch::nn::ModuleList());
  geglu_ = GEGLU(dim, mult * dim);
  out_ = linear(mult * dim, dim);
  net->push_back(geglu_);
  net->push_back(torch::nn::Identity());  // diffusers' Dropout: keeps net.2's index
  net->push_back(out_);
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x) { return out_(geglu_(x)); }

BasicTransformerBlockImpl::BasicTransformerBlockImpl(int dim, int heads, int dim_head,
                                                     int cross_attention_dim, bool only_cross_attention)
    : only_cross_attention_(only_cross_attention) {
  auto layer_norm = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)); };
  norm1 = register_module("norm1", layer_norm());
  attn1 = register_module("attn1",
                          Attention(dim, only_cross_attention ? cross_attention_dim : 0, heads, dim_head));
  norm2 = register_module("norm2", layer_norm());
  attn2 = register_module("attn2", Attention(dim, cross_attention_dim, heads, dim_head));
  norm3 = register_module("norm3", layer_norm());
  ff = register_module("ff", FeedForward(dim));
}

at::Tensor BasicTransformerBlockImpl::forward(const at::Tensor& x, const at::Tensor& context) {
  at::Tensor h = attn1(norm1(x), only_cross_attention_ ? context : at::Tensor()) + x;
  h = attn2(norm2(h), context) + h;
  return ff(norm3(h)) + h;
}

Transformer2DModelImpl::Transformer2DModelImpl(const Transformer2DOptions& o) : o_(o) {
  const int inner = o.heads * o.dim_head;
  norm = register_module("norm", group_norm(o.groups, o.in_channels, 1e-6));
  if (o.use_linear_projection)
    proj_in_linear_ = register_module("proj_in", linear(o.in_channels, inner));
  else
    proj_in_conv_ = register_module("proj_in", conv(o.in_channels, inner, 1));
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int i = 0; i < o.num_layers; ++i) {
    blocks_.push_back(
        BasicTransformerBlock(inner, o.heads, o.dim_head, o.cross_attention_dim, o.only_cross_attention));
    transformer_blocks->push_back(blocks_.back());
  }
  if (o.use_linear_projection)
    proj_out_linear_ = register_module("proj_out", linear(inner, o.in_channels));
  else
    proj_out_conv_ = register_module("proj_out", conv(inner, o.in_channels, 1));
}

at::Tensor Transformer2DModelImpl::forward(const at::Tensor& x, const at::Tensor& context) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == o_.in_channels, "Transformer2DModel: x must be [B, ",
              o_.in_channels, ", H, W], got ", x.sizes());
  TORCH_CHECK(context.defined() && context.dim() == 3 && context.size(0) == x.size(0) &&
                  context.size(2) == o_.cross_attention_dim,
              "Transformer2DModel: context must be [B, M, ", o_.cross_attention_dim, "]");
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  at::Tensor h = norm(x);
  // To tokens [B, H·W, inner]: the 1×1 conv acts before the flattening, the Linear after it.
  if (o_.use_linear_projection) {
    h = proj_in_linear_(h.permute({0, 2, 3, 1}).reshape({B, H * W, -1}));
  } else {
    h = proj_in_conv_(h);
    h = h.permute({0, 2, 3, 1}).reshape({B, H * W, -1});
  }
  for (auto& block : blocks_) h = block(h, context);
  if (o_.use_linear_projection) {
    h = proj_out_linear_(h).reshape({B, H, W, -1}).permute({0, 3, 1, 2}).contiguous();
  } else {
    h = proj_out_conv_(h.reshape({B, H, W, -1}).permute({0, 3, 1, 2}).contiguous());
  }
  return h + x;
}

}  // namespace nd
