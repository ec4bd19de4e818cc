// sd_unet_step: one UNet2DConditionModel forward at batch 2 (classifier-free guidance: uncond + cond) on
// 64×64 latents (a 512² image) with a 77-token context, at the golden sd1-tiny config (random weights: speed
// does not depend on them). Then an ESTIMATE for SD 1.5 (860M parameters) at the same input: its analytic
// FLOP count (diffusion/unet_flops.h) divided by the FLOP rate measured here. The tiny model's thin layers
// run far below the CPU's peak, so that estimate is pessimistic; the same line also reports the estimate from
// the rate of SD 1.5's own first down block (320 channels, 64×64), measured here when not --quick.
// --quick: 32×32 latents (a 256² image) and no SD 1.5 block, to stay within 30 s.
#include <cstdio>

#include "bench/bench_common.h"
#include "core/threads.h"
#include "diffusion/unet2d_condition.h"
#include "diffusion/unet_flops.h"

using namespace nd;

namespace {

// ../shared/golden/sd1-tiny/unet/config.json (the architecture keys).
UNet2DConditionConfig sd1_tiny_config() {
  return UNet2DConditionConfig::from_json(nlohmann::json::parse(R"({
    "in_channels": 4, "out_channels": 4, "block_out_channels": [32, 64], "layers_per_block": 2,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "attention_head_dim": 8, "cross_attention_dim": 32,
    "norm_num_groups": 32, "norm_eps": 1e-5, "use_linear_projection": false, "sample_size": 8})"),
                                          "sd1-tiny");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = bench::has_flag(argc, argv, "--quick");
  set_threads(0);
  keep_freed_memory();
  at::manual_seed(0);
  at::NoGradGuard no_grad;
  const int64_t B = 2, S = quick ? 32 : 64, L = 77;

  const UNet2DConditionConfig tiny = sd1_tiny_config();
  UNet2DConditionModel unet(tiny);
  unet->eval();
  const at::Tensor x = at::randn({B, 4, S, S});
  const at::Tensor t = at::tensor(std::vector<int64_t>{501, 501});
  const at::Tensor ctx = at::randn({B, L, tiny.cross_attention_dim.back()});
  const int rounds = 3;  // after one warm-up call: ~20 s per call at 64×64 on 2 busy cores
  std::fprintf(stderr, "sd_unet_step: sd1-tiny UNet, batch %lld, %lldx%lld latents, %d rounds...\n",
               static_cast<long long>(B), static_cast<long long>(S), static_cast<long long>(S), rounds);
  const double sec = bench::time_median([&] { unet->forward(x, t, ctx); }, rounds);
  const UNetCost tiny_cost = unet_cost(tiny, B, S, S, L);
  const double rate = tiny_cost.total_flops() / sec;
  std::fprintf(stderr, "  %.1f ms/step, %.2f GFLOP per call, %.1f GFLOP/s\n", sec * 1e3,
               tiny_cost.total_flops() / 1e9, rate / 1e9);
  bench::print_figure("sd_unet_step", sec * 1e3, "ms/step",
                      {{"model", "sd1-tiny (golden config, random weights)"},
                       {"params", tiny_cost.params},
                       {"batch", B},
                       {"latent", {4, S, S}},
                       {"context_tokens", L},
                       {"gflop_per_step", tiny_cost.total_flops() / 1e9},
                       {"achieved_gflop_per_s", rate / 1e9},
                       {"threads", num_threads()}});

  // SD 1.5: counted FLOPs ÷ measured rate.
  const UNet2DConditionConfig sd15 = sd15_unet_config();
  const UNetCost sd15_cost = unet_cost(sd15, B, S, S, L);
  nlohmann::json config = {{"estimate", true},
                           {"model", "SD 1.5 UNet (runwayml/stable-diffusion-v1-5 config), not run"},
                           {"method", "analytic FLOPs of the SD 1.5 config / FLOP rate achieved by sd1-tiny"},
                           {"params", sd15_cost.params},
                           {"batch", B},
                           {"latent", {4, S, S}},
                           {"gflop_per_step", sd15_cost.total_flops() / 1e9},
                           {"gflop_conv", sd15_cost.conv_flops / 1e9},
                           {"gflop_linear", sd15_cost.linear_flops / 1e9},
                           {"gflop_attention", sd15_cost.attention_flops / 1e9},
                           {"rate_gflop_per_s", rate / 1e9},
                           {"threads", num_threads()}};
  if (!quick) {
    // A better rate: SD 1.5's level-0 down block itself (2 resnets + 2 transformers at 320 ch, 4096 tokens).
    UNetDownBlock block(sd15, 0);
    block->eval();
    const at::Tensor bx = at::randn({B, sd15.block_out_channels[0], S, S});
    const at::Tensor temb = at::randn({B, sd15.time_embed_dim()});
    const at::Tensor bctx = at::randn({B, L, sd15.cross_attention_dim[0]});
    std::fprintf(stderr, "  timing SD 1.5 down_blocks.0 (%.0f GFLOP per call)...\n",
                 sd15_cost.block_flops.at("down_blocks.0") / 1e9);
    const double bsec = bench::time_median(
        [&] {
          std::vector<at::Tensor> skips;
          block->forward(bx, temb, bctx, skips);
        },
        1);
    const double brate = sd15_cost.block_flops.at("down_blocks.0") / bsec;
    config["sd15_down_block0_gflop_per_s"] = brate / 1e9;
    config["ms_per_step_at_sd15_block_rate"] = sd15_cost.total_flops() / brate * 1e3;
    std::fprintf(stderr, "  SD 1.5 down_blocks.0: %.0f ms, %.1f GFLOP/s\n", bsec * 1e3, brate / 1e9);
  }
  bench::print_figure("sd_unet_step_sd15_estimate", sd15_cost.total_flops() / rate * 1e3,
                      "ms/step (estimate)", config);
  return 0;
}
