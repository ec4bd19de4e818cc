#include "diffusion/unet2d_condition.h"

#include "core/error.h"
#include "io/safetensors.h"

namespace nd {
namespace {

ResnetBlock2DOptions resnet_options(const UNet2DConditionConfig& c, int in, int out, double scale = 1.0) {
  ResnetBlock2DOptions o;
  o.in_channels = in;
  o.out_channels = out;
  o.temb_channels = c.time_embed_dim();
  o.groups = c.norm_num_groups;
  o.eps = c.norm_eps;
  o.output_scale_factor = scale;
  o.scale_shift = c.resnet_time_scale_shift == "scale_shift";
  return o;
}

// The Transformer2DModel of a level: heads = num_attention_heads[level], head dim = channels / heads.
Transformer2DOptions transformer_options(const UNet2DConditionConfig& c, int channels, size_t level) {
  Transformer2DOptions o;
  o.in_channels = channels;
  o.heads = c.num_attention_heads[level];
  o.dim_head = channels / o.heads;
  o.num_layers = c.transformer_layers_per_block[level];
  o.cross_attention_dim = c.cross_attention_dim[level];
  o.groups = c.norm_num_groups;
  o.use_linear_projection = c.use_linear_projection;
  o.only_cross_attention = c.only_cross_attention[level];
  return o;
}

}  // namespace

// ------------------------------------------------------------------------------------------------ blocks

UNetDownBlockImpl::UNetDownBlockImpl(const UNet2DConditionConfig& c, int level) {
  const bool cross = c.down_block_types[level] == "CrossAttnDownBlock2D";
  const bool last = level + 1 == static_cast<int>(c.levels());
  const int out = c.block_out_channels[level];
  const int in = level == 0 ? c.block_out_channels[0] : c.block_out_channels[level - 1];
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (cross) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int i = 0; i < c.layers_per_block[level]; ++i) {
    resnets_.push_back(ResnetBlock2D(resnet_options(c, i == 0 ? in : out, out)));
    resnets->push_back(resnets_.back());
    if (cross) {
      attentions_.push_back(Transformer2DModel(transformer_options(c, out, level)));
      attentions->push_back(attentions_.back());
    }
  }
  if (!last) {
    downsamplers = register_module("downsamplers", torch::nn::ModuleList());
    downsample_ = Downsample2D(out, out, c.downsample_padding);
    downsamplers->push_back(downsample_);
  }
}

at::Tensor UNetDownBlockImpl::forward(const at::Tensor& x, const at::Tensor& temb, const at::Tensor& context,
                                      std::vector<at::Tensor>& skips) {
  at::Tensor h = x;
  for (size_t i = 0; i < resnets_.size(); ++i) {
    h = resnets_[i](h, temb);
    if (!attentions_.empty()) h = attentions_[i](h, context);
    skips.push_back(h);
  }
  if (downsample_) {
    h = downsample_(h);
    skips.push_back(h);
  }
  return h;
}

UNetMidBlock2DCrossAttnImpl::UNetMidBlock2DCrossAttnImpl(const UNet2DConditionConfig& c) {
  const int ch = c.block_out_channels.back();
  const size_t level = c.levels() - 1;
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnets_.push_back(ResnetBlock2D(resnet_options(c, ch, ch, c.mid_block_scale_factor)));
  resnets->push_back(resnets_.back());
  // One attention/resnet pair (diffusers: num_layers = 1).
  attentions_.push_back(Transformer2DModel(transformer_options(c, ch, level)));
  attentions->push_back(attentions_.back());
  resnets_.push_back(ResnetBlock2D(resnet_options(c, ch, ch, c.mid_block_scale_factor)));
  resnets->push_back(resnets_.back());
}

at::Tensor UNetMidBlock2DCrossAttnImpl::forward(const at::Tensor& x, const at::Tensor& temb,
                                                const at::Tensor& context) {
  at::Tensor h = resnets_[0](x, temb);
  for (size_t i = 0; i < attentions_.size(); ++i) h = resnets_[i + 1](attentions_[i](h, context), temb);
  return h;
}

UNetUpBlockImpl::UNetUpBlockImpl(const UNet2DConditionConfig& c, int index) {
  const int n = static_cast<int>(c.levels());
  const int level = n - 1 - index;
  const bool cross = c.up_block_types[index] == "CrossAttnUpBlock2D";
  const int out = c.block_out_channels[level];
  const int in = c.block_out_channels[level > 0 ? level - 1 : 0];  // the skip width of the level above
  const int prev_out = index == 0 ? c.block_out_channels.back() : c.block_out_channels[level + 1];
  const int num_layers = c.layers_per_block[level] + 1;
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (cross) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int i = 0; i < num_layers; ++i) {
    const int skip = i == num_layers - 1 ? in : out;
    resnets_.push_back(ResnetBlock2D(resnet_options(c, (i == 0 ? prev_out : out) + skip, out)));
    resnets->push_back(resnets_.back());
    if (cross) {
      attentions_.push_back(Transformer2DModel(transformer_options(c, out, level)));
      attentions->push_back(attentions_.back());
    }
  }
  if (index + 1 < n) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    upsample_ = Upsample2D(out, out);
    upsamplers->push_back(upsample_);
  }
}

at::Tensor UNetUpBlockImpl::forward(const at::Tensor& x, std::vector<at::Tensor>& skips,
                                    const at::Tensor& temb, const at::Tensor& context,
                                    at::IntArrayRef upsample_size) {
  at::Tensor h = x;
  for (size_t i = 0; i < resnets_.size(); ++i) {
    TORCH_CHECK(!skips.empty(), "UNetUpBlock: ran out of skip connections");
    h = resnets_[i](at::cat({h, skips.back()}, 1), temb);
    skips.pop_back();
    if (!attentions_.empty()) h = attentions_[i](h, context);
  }
  if (upsample_) h = upsample_(h, upsample_size);
  return h;
}

// ------------------------------------------------------------------------------------------------- model

UNet2DConditionModelImpl::UNet2DConditionModelImpl(const UNet2DConditionConfig& c) : config_(c) {
  config_.validate("UNet2DConditionConfig");
  const int c0 = c.block_out_channels[0];
  conv_in = register_module(
      "conv_in",
      torch::nn::Conv2d(
          torch::nn::Conv2dOptions(c.in_channels, c0, c.conv_in_kernel).padding((c.conv_in_kernel - 1) / 2)));
  time_embedding = register_module("time_embedding", TimestepEmbedding(c0, c.time_embed_dim()));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  for (size_t i = 0; i < c.levels(); ++i) {
    down_.push_back(UNetDownBlock(c, static_cast<int>(i)));
    down_blocks->push_back(down_.back());
  }
  if (!c.mid_block_type.empty()) mid_block = register_module("mid_block", UNetMidBlock2DCrossAttn(c));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  for (size_t i = 0; i < c.levels(); ++i) {
    up_.push_back(UNetUpBlock(c, static_cast<int>(i)));
    up_blocks->push_back(up_.back());
  }
  conv_norm_out = register_module(
      "conv_norm_out",
      torch::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, c0).eps(c.norm_eps)));
  conv_out = register_module("conv_out",
                             torch::nn::Conv2d(torch::nn::Conv2dOptions(c0, c.out_channels, c.conv_out_kernel)
                                                   .padding((c.conv_out_kernel - 1) / 2)));
}

at::Tensor UNet2DConditionModelImpl::time_proj(const at::Tensor& timesteps, int64_t batch) const {
  TORCH_CHECK(timesteps.dim() == 0 ||
                  (timesteps.dim() == 1 && (timesteps.size(0) == batch || timesteps.size(0) == 1)),
              "UNet2DConditionModel: timesteps must be [] or [", batch, "], got ", timesteps.sizes());
  const at::Tensor t = timesteps.reshape({-1}).expand({batch});
  return timestep_embedding(t, config_.block_out_channels[0], config_.flip_sin_to_cos, config_.freq_shift);
}

at::Tensor UNet2DConditionModelImpl::time_embed(const at::Tensor& timesteps, int64_t batch) {
  const at::Tensor& w = time_embedding->linear_1->weight;
  return time_embedding(time_proj(timesteps.to(w.device()), batch).to(w.scalar_type()));
}

at::Tensor UNet2DConditionModelImpl::forward(const at::Tensor& sample, const at::Tensor& timesteps,
                                             const at::Tensor& encoder_hidden_states) {
  const UNet2DConditionConfig& c = config_;
  TORCH_CHECK(sample.dim() == 4 && sample.size(1) == c.in_channels,
              "UNet2DConditionModel: sample must be [B, ", c.in_channels, ", h, w], got ", sample.sizes());
  const int64_t B = sample.size(0);
  TORCH_CHECK(encoder_hidden_states.dim() == 3 && encoder_hidden_states.size(0) == B,
              "UNet2DConditionModel: encoder_hidden_states must be [", B, ", L, D], got ",
              encoder_hidden_states.sizes());
  const at::Tensor temb = time_embed(timesteps, B);
  at::Tensor h = conv_in(c.center_input_sample ? 2 * sample - 1.0 : sample);

  std::vector<at::Tensor> skips{h};
  for (auto& block : down_) h = block(h, temb, encoder_hidden_states, skips);
  if (mid_block) h = mid_block(h, temb, encoder_hidden_states);

  // Sizes that are not multiples of 2^(levels-1): each upsampler then matches its skip state's size exactly.
  const int64_t factor = int64_t{1} << (c.levels() - 1);
  const bool forward_size = sample.size(2) % factor != 0 || sample.size(3) % factor != 0;
  for (size_t i = 0; i < up_.size(); ++i) {
    std::vector<int64_t> size;
    const size_t n = up_[i]->num_resnets();
    TORCH_CHECK(skips.size() >= n, "UNet2DConditionModel: skip connections do not match the up blocks");
    if (forward_size && i + 1 < up_.size()) {
      const at::Tensor& next = skips[skips.size() - n - 1];  // the skip state the next block starts with
      size = {next.size(2), next.size(3)};
    }
    h = up_[i](h, skips, temb, encoder_hidden_states, size);
  }
  return conv_out(at::silu(conv_norm_out(h)));
}

// ------------------------------------------------------------------------------------------------ loading

UNet2DConditionModel load_unet_from(const std::map<std::string, at::Tensor>& tensors,
                                    const std::string& prefix, const UNet2DConditionConfig& config,
                                    const std::string& source_name) {
  config.validate(source_name);
  UNet2DConditionModel model(config);
  model->eval();
  load_parameters_strict(*model, tensor_source(tensors, source_name), prefix,
                         {"UNet2DConditionModel", {}, {}});
  return model;
}

UNet2DConditionModel load_unet_from(const SafetensorsFile& file, const std::string& prefix,
                                    const UNet2DConditionConfig& config) {
  config.validate(file.path());
  UNet2DConditionModel model(config);
  model->eval();
  load_parameters_strict(*model, tensor_source(file), prefix, {"UNet2DConditionModel", {}, {}});
  return model;
}

UNet2DConditionModel load_unet(const std::string& unet_dir) {
  const UNet2DConditionConfig config = UNet2DConditionConfig::from_file(unet_dir + "/config.json");
  return load_unet_from(SafetensorsFile::open(diffusers_weights_path(unet_dir)), "", config);
}

}  // namespace nd
