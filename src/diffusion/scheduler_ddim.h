// DDIM (Song et al. 2021) as diffusers' DDIMScheduler v0.25.1: deterministic for eta = 0, DDPM-like
// ancestral sampling for eta = 1.
//
// step: prev_t = t − T // n;  ᾱ_prev = ᾱ[prev_t], or (prev_t < 0) 1 when set_alpha_to_one else ᾱ[0];
//   x0, ε from the model output (epsilon / sample / v_prediction), x0 thresholded or clipped when enabled;
//   σ = eta·√((1−ᾱ_prev)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_prev));
//   prev = √ᾱ_prev·x0 + √(1 − ᾱ_prev − σ²)·ε (+ σ·noise when eta > 0).
// Defaults of this class: clip_sample true, set_alpha_to_one true, timestep_spacing "leading".
#pragma once
#include "diffusion/scheduler.h"

namespace nd {

class DDIMScheduler : public Scheduler {
 public:
  explicit DDIMScheduler(const SchedulerConfig& config);

  const char* name() const override { return "DDIMScheduler"; }
  void set_timesteps(int num_inference_steps) override;
  StepResult step_full(const at::Tensor& model_output, int64_t t, const at::Tensor& sample,
                       at::Generator* gen = nullptr, const at::Tensor& variance_noise = {}) override;

  // diffusers' step() arguments, kept for the whole run: eta (0 = DDIM, 1 = DDPM-like) and whether ε is
  // re-derived from the clipped x0.
  void set_eta(double eta);
  double eta() const { return eta_; }
  void set_use_clipped_model_output(bool use) { use_clipped_model_output_ = use; }
  float final_alpha_cumprod() const { return final_alpha_cumprod_; }

 private:
  float final_alpha_cumprod_ = 1.f;
  double eta_ = 0.0;
  bool use_clipped_model_output_ = false;
};

}  // namespace nd
