// Stable Diffusion's VAE: diffusers' AutoencoderKL (v0.25.1), built from vae/config.json, with diffusers'
// parameter names ("encoder.down_blocks.0.resnets.0.norm1.weight",
// "encoder.mid_block.attentions.0.to_q.weight", "quant_conv.weight",
// "decoder.up_blocks.0.upsamplers.0.conv.weight", ...). Every GroupNorm uses eps 1e-6.
//
//   encode: moments = quant_conv(encoder(x)); mean, logvar = moments.chunk(2, dim=1); logvar in [-30, 20]
//   decode: decoder(post_quant_conv(z))
// The latent the UNet works on is (mean - shift_factor) · scaling_factor (0.18215 for SD 1.x/2.x); decode()
// takes the unscaled latent (latents / scaling_factor + shift_factor).
// Reference: ../shared/golden/README.md ("vae.safetensors").
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "diffusion/diffusers_config.h"
#include "diffusion/unet_blocks.h"

namespace nd {

class SafetensorsFile;

// The mid-block self-attention (diffusers' Attention with _from_deprecated_attn_block): one head of dim C,
// x + to_out.0(attn(group_norm(x) as [B, H·W, C] tokens)). Biases on to_q/to_k/to_v.
class VAEAttentionImpl : public torch::nn::Module {
 public:
  VAEAttentionImpl(int channels, int groups);
  at::Tensor forward(const at::Tensor& x);  // [B, C, H, W] → [B, C, H, W]
  torch::nn::GroupNorm group_norm{nullptr};
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};  // [0]: Linear(C → C)

 private:
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(VAEAttention);

// UNetMidBlock2D without time embedding: resnet, [attention, resnet].
class VAEMidBlockImpl : public torch::nn::Module {
 public:
  VAEMidBlockImpl(int channels, int groups, bool add_attention);
  at::Tensor forward(const at::Tensor& x);  // [B, C, H, W] → same
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};

 private:
  std::vector<ResnetBlock2D> resnets_;
  VAEAttention attention_{nullptr};
};
TORCH_MODULE(VAEMidBlock);

// DownEncoderBlock2D (resnets [+ downsampler padding (0,1,0,1)]) or UpDecoderBlock2D (resnets [+ upsampler]).
class VAEBlockImpl : public torch::nn::Module {
 public:
  // num_layers resnets in → out → ... → out; then a downsampler (down) or upsampler (!down) when `resample`.
  VAEBlockImpl(int in_channels, int out_channels, int num_layers, int groups, bool down, bool resample);
  at::Tensor forward(const at::Tensor& x);  // [B, in, H, W] → [B, out, H', W']
  torch::nn::ModuleList resnets{nullptr}, downsamplers{nullptr}, upsamplers{nullptr};

 private:
  std::vector<ResnetBlock2D> resnets_;
  Downsample2D down_{nullptr};
  Upsample2D up_{nullptr};
};
TORCH_MODULE(VAEBlock);

// diffusers' vae.Encoder (double_z): x [B, in_channels, H, W] → [B, 2·latent_channels, H/2^(n-1), W/2^(n-1)].
class VAEEncoderImpl : public torch::nn::Module {
 public:
  explicit VAEEncoderImpl(const AutoencoderKLConfig& c);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks{nullptr};
  VAEMidBlock mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

 private:
  std::vector<VAEBlock> blocks_;
};
TORCH_MODULE(VAEEncoder);

// diffusers' vae.Decoder: z [B, latent_channels, h, w] → [B, out_channels, h·2^(n-1), w·2^(n-1)].
class VAEDecoderImpl : public torch::nn::Module {
 public:
  explicit VAEDecoderImpl(const AutoencoderKLConfig& c);
  at::Tensor forward(const at::Tensor& z);
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  VAEMidBlock mid_block{nullptr};
  torch::nn::ModuleList up_blocks{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

 private:
  std::vector<VAEBlock> blocks_;
};
TORCH_MODULE(VAEDecoder);

// diffusers' DiagonalGaussianDistribution over the latent.
struct DiagonalGaussian {
  at::Tensor mean;    // [B, latent_channels, h, w]
  at::Tensor logvar;  // [B, latent_channels, h, w], clamped to [-30, 20]
  at::Tensor std() const { return at::exp(0.5 * logvar); }
  // mean + std · ε, ε ~ N(0, 1) drawn from gen (the default generator when absent).
  at::Tensor sample(std::optional<at::Generator> gen = std::nullopt) const;
};

class AutoencoderKLImpl : public torch::nn::Module {
 public:
  explicit AutoencoderKLImpl(const AutoencoderKLConfig& c);
  // x: [B, in_channels, H, W] image in [-1, 1] (H, W multiples of 2^(levels-1), 8 for SD) → the posterior
  // over the unscaled latent, [B, latent_channels, H/8, W/8] each.
  DiagonalGaussian encode(const at::Tensor& x);
  // z: [B, latent_channels, h, w] unscaled latent → [B, out_channels, 8h, 8w] image, about [-1, 1] (not
  // clamped).
  at::Tensor decode(const at::Tensor& z);
  double scaling_factor() const { return config_.scaling_factor; }
  const AutoencoderKLConfig& config() const { return config_; }

  VAEEncoder encoder{nullptr};
  VAEDecoder decoder{nullptr};
  torch::nn::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};  // null when the config disables them

 private:
  AutoencoderKLConfig config_;
};
TORCH_MODULE(AutoencoderKL);

// The deprecated diffusers names of the VAE mid-block attention (…mid_block.attentions.N.{query, key, value,
// proj_attn}.{weight, bias}) → the current ones ({to_q, to_k, to_v, to_out.0}); every other name unchanged.
// This is the single table of VAE name conversions.
std::string vae_current_tensor_name(const std::string& name);

// A diffusers vae/ folder: config.json + diffusion_pytorch_model.safetensors (or .fp16.safetensors; every
// float dtype becomes float32). Strict (see load_vae_from). The model is in eval mode, on the CPU.
AutoencoderKL load_vae(const std::string& vae_dir);

// The tensors prefix + <parameter name>, in current or deprecated attention names (vae_current_tensor_name);
// the attention projections may also be stored as 1×1 conv weights [C, C, 1, 1]. Strict: a missing tensor, a
// shape other than the config's, a parameter stored twice (old and new name) or an unexpected tensor under
// the prefix is an InputError naming source_name and the tensor. Tensors outside the prefix are ignored.
AutoencoderKL load_vae_from(const std::map<std::string, at::Tensor>& tensors, const std::string& prefix,
                            const AutoencoderKLConfig& config, const std::string& source_name);
AutoencoderKL load_vae_from(const SafetensorsFile& file, const std::string& prefix,
                            const AutoencoderKLConfig& config);

}  // namespace nd
