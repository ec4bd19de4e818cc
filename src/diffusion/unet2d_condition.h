// Stable Diffusion's denoiser: diffusers' UNet2DConditionModel (v0.25.1), built from unet/config.json, with
// diffusers' parameter names ("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight",
// "mid_block.resnets.1.conv2.bias", "time_embedding.linear_1.weight", "conv_in.weight", ...).
//
//   temb = time_embedding(time_proj(t));  h = conv_in(sample)
//   down blocks (resnets [+ Transformer2DModel after each] [+ stride-2 downsampler]) collect skip states;
//   mid block: resnet, Transformer2DModel, resnet;
//   up blocks: per resnet concatenate the latest skip state [+ Transformer2DModel] [+ nearest ×2 upsampler];
//   out = conv_out(silu(conv_norm_out(h)))
// Reference: ../shared/golden/README.md ("unet.safetensors").
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <map>
#include <string>
#include <vector>

#include "diffusion/diffusers_config.h"
#include "diffusion/unet_blocks.h"

namespace nd {

class SafetensorsFile;

// CrossAttnDownBlock2D (with attentions) or DownBlock2D: down_blocks.<level>.
class UNetDownBlockImpl : public torch::nn::Module {
 public:
  UNetDownBlockImpl(const UNet2DConditionConfig& c, int level);
  // x: [B, C_in, H, W]; temb: [B, T]; context: [B, M, D] → [B, C_out, H', W'] (H' = ceil(H/2) unless last);
  // appends every resnet/attention output and the downsampled output to skips.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context,
                     std::vector<at::Tensor>& skips);
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, downsamplers{nullptr};

 private:
  std::vector<ResnetBlock2D> resnets_;
  std::vector<Transformer2DModel> attentions_;
  Downsample2D downsample_{nullptr};
};
TORCH_MODULE(UNetDownBlock);

// UNetMidBlock2DCrossAttn: mid_block.
class UNetMidBlock2DCrossAttnImpl : public torch::nn::Module {
 public:
  explicit UNetMidBlock2DCrossAttnImpl(const UNet2DConditionConfig& c);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context);  // shape kept
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};

 private:
  std::vector<ResnetBlock2D> resnets_;
  std::vector<Transformer2DModel> attentions_;
};
TORCH_MODULE(UNetMidBlock2DCrossAttn);

// UpBlock2D or CrossAttnUpBlock2D: up_blocks.<index> (index 0 is the deepest level).
class UNetUpBlockImpl : public torch::nn::Module {
 public:
  UNetUpBlockImpl(const UNet2DConditionConfig& c, int index);
  // Consumes the last num_resnets() entries of skips (popped from the back). upsample_size: the size the
  // upsampler produces ({} = ×2).
  at::Tensor forward(const at::Tensor& x, std::vector<at::Tensor>& skips, const at::Tensor& temb,
                     const at::Tensor& context, at::IntArrayRef upsample_size = {});
  size_t num_resnets() const { return resnets_.size(); }
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, upsamplers{nullptr};

 private:
  std::vector<ResnetBlock2D> resnets_;
  std::vector<Transformer2DModel> attentions_;
  Upsample2D upsample_{nullptr};
};
TORCH_MODULE(UNetUpBlock);

class UNet2DConditionModelImpl : public torch::nn::Module {
 public:
  explicit UNet2DConditionModelImpl(const UNet2DConditionConfig& c);

  // sample: [B, in_channels, h, w] (h, w need not be multiples of 2^levels); timesteps: [B] or [] (broadcast
  // to the batch), integer or float; encoder_hidden_states: [B, L, cross_attention_dim] → [B, out_channels,
  // h, w] (the noise / v prediction). Everything on the model's device and dtype.
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timesteps,
                     const at::Tensor& encoder_hidden_states);

  // time_proj: timesteps [B] or [] (broadcast to batch) → [B, block_out_channels[0]] float32.
  at::Tensor time_proj(const at::Tensor& timesteps, int64_t batch) const;
  // time_embedding(time_proj(t)): [B, time_embed_dim].
  at::Tensor time_embed(const at::Tensor& timesteps, int64_t batch);

  const UNet2DConditionConfig& config() const { return config_; }

  torch::nn::Conv2d conv_in{nullptr};
  TimestepEmbedding time_embedding{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};
  UNetMidBlock2DCrossAttn mid_block{nullptr};  // null when mid_block_type is null
  torch::nn::ModuleList up_blocks{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
  torch::nn::Conv2d conv_out{nullptr};

 private:
  UNet2DConditionConfig config_;
  std::vector<UNetDownBlock> down_;
  std::vector<UNetUpBlock> up_;
};
TORCH_MODULE(UNet2DConditionModel);

// A diffusers unet/ folder: config.json + diffusion_pytorch_model.safetensors (or .fp16.safetensors; every
// float dtype becomes float32). Strict (see load_unet_from). The model is in eval mode, on the CPU.
UNet2DConditionModel load_unet(const std::string& unet_dir);

// The tensors prefix + <parameter name> ("" for a diffusers file; a single-file checkpoint converted to
// diffusers names may use a prefix). Strict: a missing tensor, a shape other than the config's, or an
// unexpected tensor under the prefix is an InputError naming source_name and the tensor. Tensors outside
// the prefix are ignored.
UNet2DConditionModel load_unet_from(const std::map<std::string, at::Tensor>& tensors,
                                    const std::string& prefix, const UNet2DConditionConfig& config,
                                    const std::string& source_name);
// The same from a safetensors file, reading only the UNet's tensors (shapes checked before reading).
UNet2DConditionModel load_unet_from(const SafetensorsFile& file, const std::string& prefix,
                                    const UNet2DConditionConfig& config);

}  // namespace nd
