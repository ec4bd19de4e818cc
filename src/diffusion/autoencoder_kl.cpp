#include "diffusion/autoencoder_kl.h"

#include <utility>

#include "core/error.h"
#include "io/safetensors.h"

namespace nd {
namespace {

constexpr double kVAEEps = 1e-6;  // every GroupNorm of the VAE

ResnetBlock2D vae_resnet(int in, int out, int groups) {
  ResnetBlock2DOptions o;
  o.in_channels = in;
  o.out_channels = out;
  o.groups = groups;
  o.eps = kVAEEps;
  return ResnetBlock2D(o);
}

torch::nn::Conv2d conv3x3(int in, int out) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1));
}

torch::nn::GroupNorm vae_group_norm(int groups, int channels) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels).eps(kVAEEps));
}

// The deprecated attention names (diffusers' old AttentionBlock) and their current ones.
const std::pair<const char*, const char*> kDeprecatedAttentionNames[] = {
    {"query", "to_q"}, {"key", "to_k"}, {"value", "to_v"}, {"proj_attn", "to_out.0"}};

// Attention projections: stored as [C, C, 1, 1] 1×1 conv weights by original-layout conversions.
bool is_attention_projection(const std::string& name) {
  return name.find("mid_block.attentions.") != std::string::npos &&
         name.find(".group_norm.") == std::string::npos;
}

}  // namespace

std::string vae_current_tensor_name(const std::string& name) {
  const std::string marker = "mid_block.attentions.";
  const size_t pos = name.find(marker);
  if (pos == std::string::npos) return name;
  const size_t index_end = name.find('.', pos + marker.size());  // after "<N>"
  if (index_end == std::string::npos) return name;
  const size_t part_end = name.find('.', index_end + 1);
  if (part_end == std::string::npos) return name;
  const std::string part = name.substr(index_end + 1, part_end - index_end - 1);
  for (const auto& [old_name, new_name] : kDeprecatedAttentionNames)
    if (part == old_name) return name.substr(0, index_end + 1) + new_name + name.substr(part_end);
  return name;
}

// ------------------------------------------------------------------------------------------------ blocks

VAEAttentionImpl::VAEAttentionImpl(int channels, int groups) {
  group_norm = register_module("group_norm", vae_group_norm(groups, channels));
  to_q = register_module("to_q", torch::nn::Linear(channels, channels));
  to_k = register_module("to_k", torch::nn::Linear(channels, channels));
  to_v = register_module("to_v", torch::nn::Linear(channels, channels));
  to_out = register_module("to_out", torch::nn::ModuleList());
  out_ = torch::nn::Linear(channels, channels);
  to_out->push_back(out_);
}

at::Tensor VAEAttentionImpl::forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4, "VAEAttention: x must be [B, C, H, W]");
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const at::Tensor tokens = group_norm(x).reshape({B, C, H * W}).transpose(1, 2);  // [B, H·W, C]
  const at::Tensor h = out_(multi_head_attention(to_q(tokens), to_k(tokens), to_v(tokens), 1));
  return h.transpose(1, 2).reshape({B, C, H, W}) + x;
}

VAEMidBlockImpl::VAEMidBlockImpl(int channels, int groups, bool add_attention) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  resnets_.push_back(vae_resnet(channels, channels, groups));
  if (add_attention) {
    attentions = register_module("attentions", torch::nn::ModuleList());
    attention_ = VAEAttention(channels, groups);
    attentions->push_back(attention_);
  }
  resnets_.push_back(vae_resnet(channels, channels, groups));
  for (auto& r : resnets_) resnets->push_back(r);
}

at::Tensor VAEMidBlockImpl::forward(const at::Tensor& x) {
  at::Tensor h = resnets_[0](x);
  if (attention_) h = attention_(h);
  return resnets_[1](h);
}

VAEBlockImpl::VAEBlockImpl(int in_channels, int out_channels, int num_layers, int groups, bool down,
                           bool resample) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  for (int i = 0; i < num_layers; ++i) {
    resnets_.push_back(vae_resnet(i == 0 ? in_channels : out_channels, out_channels, groups));
    resnets->push_back(resnets_.back());
  }
  if (resample && down) {
    downsamplers = register_module("downsamplers", torch::nn::ModuleList());
    down_ = Downsample2D(out_channels, out_channels, /*padding=*/0);
    downsamplers->push_back(down_);
  } else if (resample) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    up_ = Upsample2D(out_channels, out_channels);
    upsamplers->push_back(up_);
  }
}

at::Tensor VAEBlockImpl::forward(const at::Tensor& x) {
  at::Tensor h = x;
  for (auto& r : resnets_) h = r(h);
  if (down_) h = down_(h);
  if (up_) h = up_(h);
  return h;
}

VAEEncoderImpl::VAEEncoderImpl(const AutoencoderKLConfig& c) {
  const auto& boc = c.block_out_channels;
  conv_in = register_module("conv_in", conv3x3(c.in_channels, boc[0]));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  for (size_t i = 0; i < boc.size(); ++i) {
    const bool last = i + 1 == boc.size();
    blocks_.push_back(VAEBlock(i ? boc[i - 1] : boc[0], boc[i], c.layers_per_block, c.norm_num_groups,
                               /*down=*/true, !last));
    down_blocks->push_back(blocks_.back());
  }
  mid_block =
      register_module("mid_block", VAEMidBlock(boc.back(), c.norm_num_groups, c.mid_block_add_attention));
  conv_norm_out = register_module("conv_norm_out", vae_group_norm(c.norm_num_groups, boc.back()));
  conv_out = register_module("conv_out", conv3x3(boc.back(), 2 * c.latent_channels));
}

at::Tensor VAEEncoderImpl::forward(const at::Tensor& x) {
  at::Tensor h = conv_in(x);
  for (auto& b : blocks_) h = b(h);
  h = mid_block(h);
  return conv_out(at::silu(conv_norm_out(h)));
}

VAEDecoderImpl::VAEDecoderImpl(const AutoencoderKLConfig& c) {
  const auto& boc = c.block_out_channels;
  const size_t n = boc.size();
  conv_in = register_module("conv_in", conv3x3(c.latent_channels, boc.back()));
  mid_block =
      register_module("mid_block", VAEMidBlock(boc.back(), c.norm_num_groups, c.mid_block_add_attention));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  for (size_t i = 0; i < n; ++i) {
    const int in = boc[n - (i ? i : 1)], out = boc[n - 1 - i];  // previous level's output → this level's
    blocks_.push_back(
        VAEBlock(in, out, c.layers_per_block + 1, c.norm_num_groups, /*down=*/false, i + 1 < n));
    up_blocks->push_back(blocks_.back());
  }
  conv_norm_out = register_module("conv_norm_out", vae_group_norm(c.norm_num_groups, boc[0]));
  conv_out = register_module("conv_out", conv3x3(boc[0], c.out_channels));
}

at::Tensor VAEDecoderImpl::forward(const at::Tensor& z) {
  at::Tensor h = mid_block(conv_in(z));
  for (auto& b : blocks_) h = b(h);
  return conv_out(at::silu(conv_norm_out(h)));
}

at::Tensor DiagonalGaussian::sample(std::optional<at::Generator> gen) const {
  const c10::optional<at::Generator> g = gen ? c10::optional<at::Generator>(*gen) : c10::nullopt;
  return mean + std() * at::randn(mean.sizes(), g, mean.options());
}

// ------------------------------------------------------------------------------------------------- model

AutoencoderKLImpl::AutoencoderKLImpl(const AutoencoderKLConfig& c) : config_(c) {
  config_.validate("AutoencoderKLConfig");
  encoder = register_module("encoder", VAEEncoder(c));
  decoder = register_module("decoder", VAEDecoder(c));
  const int lc = c.latent_channels;
  if (c.use_quant_conv) quant_conv = register_module("quant_conv", torch::nn::Conv2d(2 * lc, 2 * lc, 1));
  if (c.use_post_quant_conv)
    post_quant_conv = register_module("post_quant_conv", torch::nn::Conv2d(lc, lc, 1));
}

DiagonalGaussian AutoencoderKLImpl::encode(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == config_.in_channels, "AutoencoderKL: x must be [B, ",
              config_.in_channels, ", H, W], got ", x.sizes());
  at::Tensor moments = encoder(x);
  if (quant_conv) moments = quant_conv(moments);
  const auto mv = moments.chunk(2, 1);
  return {mv[0], at::clamp(mv[1], -30.0, 20.0)};
}

at::Tensor AutoencoderKLImpl::decode(const at::Tensor& z) {
  TORCH_CHECK(z.dim() == 4 && z.size(1) == config_.latent_channels, "AutoencoderKL: z must be [B, ",
              config_.latent_channels, ", h, w], got ", z.sizes());
  return decoder(post_quant_conv ? post_quant_conv(z) : z);
}

// ------------------------------------------------------------------------------------------------ loading

namespace {

AutoencoderKL load_vae_from_source(const TensorSource& src, const std::string& prefix,
                                   const AutoencoderKLConfig& config) {
  config.validate(src.name);
  AutoencoderKL model(config);
  model->eval();
  load_parameters_strict(*model, src, prefix,
                         {"AutoencoderKL", vae_current_tensor_name, is_attention_projection});
  return model;
}

}  // namespace

AutoencoderKL load_vae_from(const std::map<std::string, at::Tensor>& tensors, const std::string& prefix,
                            const AutoencoderKLConfig& config, const std::string& source_name) {
  return load_vae_from_source(tensor_source(tensors, source_name), prefix, config);
}

AutoencoderKL load_vae_from(const SafetensorsFile& file, const std::string& prefix,
                            const AutoencoderKLConfig& config) {
  return load_vae_from_source(tensor_source(file), prefix, config);
}

AutoencoderKL load_vae(const std::string& vae_dir) {
  const AutoencoderKLConfig config = AutoencoderKLConfig::from_file(vae_dir + "/config.json");
  return load_vae_from(SafetensorsFile::open(diffusers_weights_path(vae_dir)), "", config);
}

}  // namespace nd
