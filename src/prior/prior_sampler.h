// Sampling from the tiny prior: text (+ camera) → images, with classifier-free guidance, through the
// same schedulers as Stable Diffusion (diffusion/scheduler.h); and img2img (SDEdit), which the iterative
// dataset update of `generate` uses.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "diffusion/scheduler_config.h"
#include "prior/tiny_prior.h"

namespace nd {

struct PriorSampleOptions {
  int steps = 50;
  double guidance_scale = 5.0;     // classifier-free guidance scale (1 = no guidance)
  std::string scheduler = "ddim";  // ddim | ddpm | pndm | euler
  // DDIM's η (0 deterministic, 1 DDPM-like). 1 by default: the tiny prior's ε is least accurate at small t
  // (Min-SNR training weights them least), and the deterministic ODE path carries that error into the
  // image as speckle and stray shapes, where the stochastic path's fresh noise washes it out.
  double eta = 1.0;
  uint64_t seed = 0;
};

// The scheduler config matching a prior's training process: its schedule and prediction type, x0 clipped
// to [-1, 1] (pixel space), trailing timestep spacing (the first step starts from pure noise).
SchedulerConfig prior_scheduler_config(const TinyPriorConfig& config);

// One image per prompt: [B,3,R,R] float32 in [0,1]. views: one per prompt, or empty for "no camera"
// (the prior's camera-free mode). Deterministic for a seed. InputError for bad options or prompts.
at::Tensor sample_prior(TinyPrior& prior, const std::vector<std::string>& prompts,
                        const std::vector<View>& views, const PriorSampleOptions& options);

// SDEdit: images [B,3,R,R] in [0,1] noised to strength s ∈ (0, 1] of the schedule, then denoised under the
// prompts (and views, or none). Returns [B,3,R,R] in [0,1].
at::Tensor img2img_prior(TinyPrior& prior, const at::Tensor& images, const std::vector<std::string>& prompts,
                         const std::vector<View>& views, double strength, const PriorSampleOptions& options);

}  // namespace nd
