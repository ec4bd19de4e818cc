// Analytic cost of one UNet2DConditionModel forward pass, from its config alone (no weights): parameter count
// and floating-point operations of the convolutions, linear layers and attention matmuls (2 FLOPs per
// multiply-add). Norms, activations, softmax and upsampling copies are not counted (well under 1% of SD's
// total). Used to extrapolate measured speed from a small model to SD 1.5 (bench/bench_sd_unet.cpp).
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "diffusion/diffusers_config.h"

namespace nd {

struct UNetCost {
  int64_t params = 0;  // every parameter (weights, biases, norm affines): equals the model's numel
  double conv_flops = 0, linear_flops = 0, attention_flops = 0;
  std::map<std::string, double> block_flops;  // "conv_in", "down_blocks.0", "mid_block", "up_blocks.1", ...
  double total_flops() const { return conv_flops + linear_flops + attention_flops; }
};

// batch B latents [B, in_channels, h, w] with a text context of context_len tokens.
UNetCost unet_cost(const UNet2DConditionConfig& config, int64_t batch, int64_t h, int64_t w,
                   int64_t context_len = 77);

// diffusers' unet/config.json of runwayml/stable-diffusion-v1-5 (859,520,964 parameters), for estimates.
UNet2DConditionConfig sd15_unet_config();

}  // namespace nd
