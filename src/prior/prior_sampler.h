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
  // Classifier-free guidance scale (1 = none). 1 by default: the shipped tiny prior samples the right
  // shape, color and view unguided (eval-prior: shape 0.94–0.95), while guidance pulls its samples towards
  // cube-like blobs (shape 0.50 at 2, 0.07 at 5) — its unconditional branch is weak (see its README).
  double guidance_scale = 1.0;
  std::string scheduler = "ddim";  // ddim | ddpm | pndm | euler
  double eta = 0.0;                // DDIM's η (0 deterministic, 1 DDPM-like)
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
