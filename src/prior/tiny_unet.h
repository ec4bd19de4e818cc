// The tiny prior's denoiser: a small UNet in pixel space built from Stable Diffusion's blocks
// (diffusion/unet_blocks.h), with camera (view) conditioning.
//
//   x [B,3,H,W] → pixel_unshuffle(patch) → conv_in → down levels (resnets [+ transformer]) [+ downsample]
//   → mid (resnet, transformer, resnet) → up levels (resnets on concatenated skips [+ transformer])
//   [+ upsample] → norm, silu, conv_out → pixel_shuffle → [B,3,H,W]
//   temb = time_embedding(sinusoid(t)) + text_proj(pooled text) + view_mlp(view features)
// The patch (space-to-depth) makes the network run at H/patch: 4× fewer FLOPs for patch 2, which is what
// lets a 2-core CPU train it. Transformers cross-attend to the text tokens.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "diffusion/unet_blocks.h"
#include "prior/tiny_text_encoder.h"

namespace nd {

struct TinyUNetOptions {
  int image_channels = 3;
  int patch = 2;
  std::vector<int> channels{48, 96, 128};           // per level
  std::vector<bool> attention{false, false, true};  // a transformer after each resnet of the level
  int layers_per_level = 1;
  int groups = 16;
  int heads = 4;
  int context_dim = 128;   // the text encoder's width
  int view_features = 10;  // kViewFeatures
};

class TinyUNetImpl : public torch::nn::Module {
 public:
  explicit TinyUNetImpl(const TinyUNetOptions& o);
  // x: [B, image_channels, H, W] (H, W divisible by patch · 2^(levels−1)); t: [B] timesteps (any numeric);
  // text: the encoder's output for the batch; views: [B, view_features] (zeros: no camera) → ε (or v).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const TextEncoding& text,
                     const at::Tensor& views);

  const TinyUNetOptions& options() const { return o_; }

  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  TimestepEmbedding time_embedding{nullptr};
  torch::nn::Linear text_proj{nullptr};
  TimestepEmbedding view_embedding{nullptr};  // the same two-layer MLP shape as the time embedding
  torch::nn::ModuleList down{nullptr}, up{nullptr}, mid{nullptr};
  torch::nn::GroupNorm norm_out{nullptr};

 private:
  // One stage of either path: a resnet, optionally followed by a transformer; or a resampler.
  struct Stage {
    ResnetBlock2D resnet{nullptr};
    Transformer2DModel transformer{nullptr};
    Downsample2D downsample{nullptr};
    Upsample2D upsample{nullptr};
    bool push_skip = false;  // down path: keep the output as a skip; up path: concatenate a skip first
  };
  at::Tensor run(Stage& s, at::Tensor h, const at::Tensor& temb, const at::Tensor& context);

  TinyUNetOptions o_;
  std::vector<Stage> down_, mid_, up_;
};
TORCH_MODULE(TinyUNet);

}  // namespace nd
