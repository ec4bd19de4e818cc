// DDPM ancestral sampling (Ho et al. 2020) as diffusers' DDPMScheduler v0.25.1.
//
// step: prev_t = t − T // n (T // T = 1 before set_timesteps()); ᾱ_prev = ᾱ[prev_t] or 1 when prev_t < 0;
//   α_t = ᾱ_t/ᾱ_prev, β_t = 1 − α_t; x0 from the model output (thresholded/clipped when enabled);
//   mean = √ᾱ_prev·β_t/(1−ᾱ_t)·x0 + √α_t·(1−ᾱ_prev)/(1−ᾱ_t)·x_t;
//   prev = mean + std·noise when t > 0, with (variance_type)
//     fixed_small     std = √max((1−ᾱ_prev)/(1−ᾱ_t)·β_t, 1e-20)   (Stable Diffusion's)
//     fixed_small_log the same, computed as exp(½·log(var))
//     fixed_large     std = √β_t
//     fixed_large_log std = √β_t (diffusers would take √log β_t = NaN here; we take the evident intent)
//     learned_range   the model output has 2·C channels [out, v]: log var = f·log β_t + (1−f)·log var_small,
//                     f = (v + 1)/2, std = exp(½·log var)
// Defaults of this class: clip_sample true, timestep_spacing "leading", variance_type "fixed_small".
#pragma once
#include "diffusion/scheduler.h"

namespace nd {

class DDPMScheduler : public Scheduler {
 public:
  explicit DDPMScheduler(const SchedulerConfig& config);

  const char* name() const override { return "DDPMScheduler"; }
  void set_timesteps(int num_inference_steps) override;
  StepResult step_full(const at::Tensor& model_output, int64_t t, const at::Tensor& sample,
                       at::Generator* gen = nullptr, const at::Tensor& variance_noise = {}) override;

  // The timestep before t in this run (negative after the last one).
  int64_t previous_timestep(int64_t t) const;
};

}  // namespace nd
