// The building blocks of Stable Diffusion's UNet and VAE, as diffusers v0.25.1 defines them (resnet.py,
// attention.py, attention_processor.py, embeddings.py, transformer_2d.py), with diffusers' parameter names so
// that named_parameters() keys are checkpoint keys ("norm1.weight", "attn1.to_q.weight", "ff.net.0.proj...").
// All tensors are float32 NCHW (images) or [B, L, C] (token sequences) on the module's device.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

namespace nd {

// ---------------------------------------------------------------------------------------------- timesteps

// diffusers' get_timestep_embedding (Timesteps / time_proj), computed in float32:
//   f_i = exp(-ln(max_period) · i / (dim/2 - freq_shift)), i = 0 .. dim/2 - 1;  e = t · f
//   out = [sin(e), cos(e)], or [cos(e), sin(e)] with flip_sin_to_cos; a zero column appended when dim is odd.
// timesteps: [B] of any numeric dtype → [B, dim] float32 on the timesteps' device.
at::Tensor timestep_embedding(const at::Tensor& timesteps, int dim, bool flip_sin_to_cos, double freq_shift,
                              double max_period = 10000);

// time_embedding: linear_2(silu(linear_1(x))).
class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  TimestepEmbeddingImpl(int in_channels, int time_embed_dim);
  at::Tensor forward(const at::Tensor& x);  // [B, in_channels] → [B, time_embed_dim]
  torch::nn::Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

// ----------------------------------------------------------------------------------------------- resnets

struct ResnetBlock2DOptions {
  int in_channels = 0;
  int out_channels = 0;
  int temb_channels = 0;  // 0: no time embedding (the VAE's resnets)
  int groups = 32;
  double eps = 1e-6;
  double output_scale_factor = 1.0;
  bool scale_shift = false;  // resnet_time_scale_shift "scale_shift": h = norm2(h) · (1 + scale) + shift
};

// out = (shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))) + time_emb_proj(silu(temb)))))) / scale;
// shortcut = 1×1 conv_shortcut when in_channels != out_channels, else the identity.
class ResnetBlock2DImpl : public torch::nn::Module {
 public:
  explicit ResnetBlock2DImpl(const ResnetBlock2DOptions& o);
  // x: [B, in, H, W]; temb: [B, temb_channels] (ignored when temb_channels = 0) → [B, out, H, W]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb = {});
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  torch::nn::Linear time_emb_proj{nullptr};

 private:
  ResnetBlock2DOptions o_;
};
TORCH_MODULE(ResnetBlock2D);

// Stride-2 3×3 conv. padding 1 (the UNet) or 0, which first pads right/bottom by one (the VAE encoder).
class Downsample2DImpl : public torch::nn::Module {
 public:
  Downsample2DImpl(int channels, int out_channels, int padding);
  at::Tensor forward(const at::Tensor& x);  // [B, C, H, W] → [B, out, ceil(H/2), ceil(W/2)] (padding 1)
  torch::nn::Conv2d conv{nullptr};

 private:
  int padding_;
};
TORCH_MODULE(Downsample2D);

// Nearest ×2 (or to `size`), then a 3×3 conv.
class Upsample2DImpl : public torch::nn::Module {
 public:
  Upsample2DImpl(int channels, int out_channels);
  // x: [B, C, H, W] → [B, out, 2H, 2W], or [B, out, size[0], size[1]] when size is given
  at::Tensor forward(const at::Tensor& x, at::IntArrayRef size = {});
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

// --------------------------------------------------------------------------------------------- attention

// softmax(Q Kᵀ · d^-0.5) V per head (diffusers' AttnProcessor); for half/bfloat16 inputs the scores and the
// softmax are computed in float32.
// q: [B, L, heads·d], k, v: [B, M, heads·d] → [B, L, heads·d]. The [B·heads, L, M] score matrix is
// computed in slices of at most max_score_elements elements (diffusers' sliced attention; 2^24 = 64 MB keeps
// the scores in cache-friendly pieces: measured 3.1x faster than 2^27 at 4096 tokens), so that
// SD-sized inputs fit in memory.
at::Tensor multi_head_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int heads,
                                int64_t max_score_elements = int64_t{1} << 24);

// diffusers' Attention as the transformer blocks use it: to_q/to_k/to_v (bias optional), to_out.0 (bias).
class AttentionImpl : public torch::nn::Module {
 public:
  // context_dim 0: self-attention (keys/values from x).
  AttentionImpl(int query_dim, int context_dim, int heads, int dim_head, bool qkv_bias = false);
  // x: [B, L, query_dim]; context: [B, M, context_dim], or undefined for self-attention → [B, L, query_dim]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context = {});
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{
      nullptr};  // [0]: Linear(heads·dim_head → query_dim); diffusers' [1] is Dropout

 private:
  int heads_;
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(Attention);

// GEGLU: h, gate = proj(x).chunk(2, -1); h · gelu(gate) (exact erf GELU).
class GEGLUImpl : public torch::nn::Module {
 public:
  GEGLUImpl(int dim_in, int dim_out);
  at::Tensor forward(const at::Tensor& x);  // [..., dim_in] → [..., dim_out]
  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(GEGLU);

// FeedForward with GEGLU: net.0 = GEGLU(dim → 4·dim), net.1 = dropout (no parameters), net.2 = Linear(4·dim →
// dim).
class FeedForwardImpl : public torch::nn::Module {
 public:
  explicit FeedForwardImpl(int dim, int mult = 4);
  at::Tensor forward(const at::Tensor& x);  // [B, L, dim] → [B, L, dim]
  torch::nn::ModuleList net{nullptr};

 private:
  GEGLU geglu_{nullptr};
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(FeedForward);

// BasicTransformerBlock (LayerNorm eps 1e-5, pre-norm residuals):
//   x += attn1(norm1(x)) (self; cross with only_cross_attention); x += attn2(norm2(x), context);
//   x += ff(norm3(x)).
class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  BasicTransformerBlockImpl(int dim, int heads, int dim_head, int cross_attention_dim,
                            bool only_cross_attention);
  // x: [B, L, dim]; context: [B, M, cross_attention_dim] → [B, L, dim]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context);
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  Attention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};

 private:
  bool only_cross_attention_;
};
TORCH_MODULE(BasicTransformerBlock);

struct Transformer2DOptions {
  int in_channels = 0;
  int heads = 8;
  int dim_head = 0;  // inner dim = heads · dim_head
  int num_layers = 1;
  int cross_attention_dim = 768;
  int groups = 32;
  bool use_linear_projection = false;
  bool only_cross_attention = false;
};

// Transformer2DModel (continuous input): x + proj_out(blocks(proj_in(GroupNorm_eps1e-6(x)) as tokens)).
// proj_in/proj_out are 1×1 convs, or Linear layers applied to the [B, H·W, C] tokens
// (use_linear_projection, SD 2.x).
class Transformer2DModelImpl : public torch::nn::Module {
 public:
  explicit Transformer2DModelImpl(const Transformer2DOptions& o);
  // x: [B, C, H, W]; context: [B, M, cross_attention_dim] → [B, C, H, W]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context);
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};

 private:
  Transformer2DOptions o_;
  // One of each pair exists, registered as "proj_in" / "proj_out".
  torch::nn::Conv2d proj_in_conv_{nullptr}, proj_out_conv_{nullptr};
  torch::nn::Linear proj_in_linear_{nullptr}, proj_out_linear_{nullptr};
  std::vector<BasicTransformerBlock> blocks_;
};
TORCH_MODULE(Transformer2DModel);

}  // namespace nd
