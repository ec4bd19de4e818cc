// Walks the same structure as unet2d_condition.cpp / unet_blocks.cpp builds, counting as it goes.
#include "diffusion/unet_flops.h"

#include <nlohmann/json.hpp>

namespace nd {

namespace {

struct Counter {
  const UNet2DConditionConfig& c;
  int64_t B, L;
  UNetCost cost;
  double* block = nullptr;  // the current block's FLOP total

  void add(double& kind, double flops) {
    kind += flops;
    *block += flops;
  }
  // k×k conv, Cin → Cout, output hw pixels.
  void conv(int64_t cin, int64_t cout, int64_t k, int64_t hw) {
    cost.params += cout * cin * k * k + cout;
    add(cost.conv_flops, 2.0 * B * hw * cout * cin * k * k);
  }
  void linear(int64_t in, int64_t out, int64_t tokens, bool bias = true) {
    cost.params += in * out + (bias ? out : 0);
    add(cost.linear_flops, 2.0 * tokens * in * out);
  }
  void norm(int64_t channels) { cost.params += 2 * channels; }

  void resnet(int64_t in, int64_t out, int64_t hw) {
    norm(in);
    conv(in, out, 3, hw);
    const bool scale_shift = c.resnet_time_scale_shift == "scale_shift";
    linear(c.time_embed_dim(), scale_shift ? 2 * out : out, B);
    norm(out);
    conv(out, out, 3, hw);
    if (in != out) conv(in, out, 1, hw);
  }
  void attention(int64_t dim, int64_t context_dim, int64_t q_tokens, int64_t kv_tokens) {
    const int64_t kv_in = context_dim ? context_dim : dim;
    linear(dim, dim, B * q_tokens, false);                                  // to_q
    linear(kv_in, dim, B * kv_tokens, false);                               // to_k
    linear(kv_in, dim, B * kv_tokens, false);                               // to_v
    add(cost.attention_flops, 2.0 * 2.0 * B * q_tokens * kv_tokens * dim);  // Q Kᵀ and A V over all heads
    linear(dim, dim, B * q_tokens);                                         // to_out.0
  }
  void transformer(int64_t ch, size_t level, int64_t hw) {
    const int64_t D = c.cross_attention_dim[level];
    norm(ch);
    if (c.use_linear_projection)
      linear(ch, ch, B * hw);
    else
      conv(ch, ch, 1, hw);
    for (int i = 0; i < c.transformer_layers_per_block[level]; ++i) {
      norm(ch);
      if (c.only_cross_attention[level])
        attention(ch, D, hw, L);
      else
        attention(ch, 0, hw, hw);
      norm(ch);
      attention(ch, D, hw, L);
      norm(ch);
      linear(ch, 8 * ch, B * hw);  // GEGLU proj: 2 × 4·ch
      linear(4 * ch, ch, B * hw);
    }
    if (c.use_linear_projection)
      linear(ch, ch, B * hw);
    else
      conv(ch, ch, 1, hw);
  }
  void begin(const std::string& name) { block = &cost.block_flops[name]; }
};

}  // namespace

UNetCost unet_cost(const UNet2DConditionConfig& c, int64_t batch, int64_t h, int64_t w, int64_t context_len) {
  Counter k{c, batch, context_len, {}};
  const int n = static_cast<int>(c.levels());
  std::vector<int64_t> hw(n);  // pixels per level (stride-2 convs with padding 1: ceil)
  for (int64_t i = 0, hh = h, ww = w; i < n; ++i, hh = (hh + 1) / 2, ww = (ww + 1) / 2) hw[i] = hh * ww;
  const int64_t C0 = c.block_out_channels[0], T = c.time_embed_dim();

  k.begin("time_embedding");
  k.linear(C0, T, batch);
  k.linear(T, T, batch);
  k.begin("conv_in");
  k.conv(c.in_channels, C0, c.conv_in_kernel, hw[0]);
  for (int i = 0; i < n; ++i) {
    k.begin("down_blocks." + std::to_string(i));
    const int64_t out = c.block_out_channels[i], in = i ? c.block_out_channels[i - 1] : C0;
    for (int r = 0; r < c.layers_per_block[i]; ++r) {
      k.resnet(r == 0 ? in : out, out, hw[i]);
      if (c.down_block_types[i] == "CrossAttnDownBlock2D") k.transformer(out, i, hw[i]);
    }
    if (i + 1 < n) k.conv(out, out, 3, hw[i + 1]);
  }
  if (!c.mid_block_type.empty()) {
    k.begin("mid_block");
    const int64_t ch = c.block_out_channels.back();
    k.resnet(ch, ch, hw[n - 1]);
    k.transformer(ch, n - 1, hw[n - 1]);
    k.resnet(ch, ch, hw[n - 1]);
  }
  for (int u = 0; u < n; ++u) {
    k.begin("up_blocks." + std::to_string(u));
    const int level = n - 1 - u;
    const int64_t out = c.block_out_channels[level], in = c.block_out_channels[level > 0 ? level - 1 : 0];
    const int64_t prev_out = u == 0 ? c.block_out_channels.back() : c.block_out_channels[level + 1];
    const int layers = c.layers_per_block[level] + 1;
    for (int r = 0; r < layers; ++r) {
      const int64_t skip = r == layers - 1 ? in : out;
      k.resnet((r == 0 ? prev_out : out) + skip, out, hw[level]);
      if (c.up_block_types[u] == "CrossAttnUpBlock2D") k.transformer(out, level, hw[level]);
    }
    if (u + 1 < n) k.conv(out, out, 3, hw[level - 1]);
  }
  k.begin("conv_out");
  k.norm(C0);
  k.conv(C0, c.out_channels, c.conv_out_kernel, hw[0]);
  return k.cost;
}

UNet2DConditionConfig sd15_unet_config() {
  const nlohmann::json j = {
      {"_class_name", "UNet2DConditionModel"},
      {"act_fn", "silu"},
      {"attention_head_dim", 8},
      {"block_out_channels", {320, 640, 1280, 1280}},
      {"center_input_sample", false},
      {"cross_attention_dim", 768},
      {"down_block_types",
       {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"}},
      {"downsample_padding", 1},
      {"flip_sin_to_cos", true},
      {"freq_shift", 0},
      {"in_channels", 4},
      {"layers_per_block", 2},
      {"mid_block_scale_factor", 1},
      {"norm_eps", 1e-5},
      {"norm_num_groups", 32},
      {"out_channels", 4},
      {"sample_size", 64},
      {"up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"}}};
  return UNet2DConditionConfig::from_json(j, "SD 1.5 unet/config.json");
}

}  // namespace nd
