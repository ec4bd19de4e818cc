// Pseudo numerical methods for diffusion models (Liu et al. 2022) as diffusers' PNDMScheduler v0.25.1:
// Stable Diffusion 1.x's shipped scheduler (skip_prk_steps = true: PLMS only).
//
// Transfer from t to t_prev with an ε estimate e (the exact DDIM step):
//   x_prev = √(ᾱ_prev/ᾱ_t)·x − (ᾱ_prev − ᾱ_t)·e / (ᾱ_t·√(1−ᾱ_prev) + √(ᾱ_t·(1−ᾱ_t)·ᾱ_prev))
// with ᾱ_prev = ᾱ[t_prev], or ᾱ[0] (set_alpha_to_one false, the default) / 1 when t_prev < 0.
// PLMS (skip_prk_steps): timesteps [t_{n-1}, t_{n-2}, t_{n-2}, t_{n-3}, ..., t_0] (n + 1 model calls; the
// second timestep is repeated). Call 0 steps t_{n-1} → t_{n-2} with e_0 and keeps x; call 1 redoes that step
// from the kept x with (e_0 + e_1)/2 (a Heun-like correction); later calls use the Adams–Bashforth
// combinations of the history ets = [e_0, e_2, e_3, ...]: (3e₁ − e₂)/2, (23e₁ − 16e₂ + 5e₃)/12,
// (55e₁ − 59e₂ + 37e₃ − 9e₄)/24 (newest first).
// PRK (skip_prk_steps false): 12 Runge–Kutta calls over the first 3 intervals (half-step timesteps), then
// PLMS; needs num_inference_steps >= 4. prediction_type epsilon or v_prediction (converted to ε); "sample" is
// an InputError. pred_original_sample (diffusers returns none): the x0 implied by the combined ε at the
// step's timestep.
#pragma once
#include "diffusion/scheduler.h"

namespace nd {

class PNDMScheduler : public Scheduler {
 public:
  explicit PNDMScheduler(const SchedulerConfig& config);

  const char* name() const override { return "PNDMScheduler"; }
  void set_timesteps(int num_inference_steps) override;
  StepResult step_full(const at::Tensor& model_output, int64_t t, const at::Tensor& sample,
                       at::Generator* gen = nullptr, const at::Tensor& variance_noise = {}) override;

  const std::vector<int64_t>& prk_timesteps() const { return prk_timesteps_; }
  const std::vector<int64_t>& plms_timesteps() const { return plms_timesteps_; }
  float final_alpha_cumprod() const { return final_alpha_cumprod_; }

 private:
  StepResult step_prk(const at::Tensor& model_output, int64_t t, const at::Tensor& sample);
  StepResult step_plms(const at::Tensor& model_output, int64_t t, const at::Tensor& sample);
  // The transfer above from `sample` at t to t_prev with ε estimate `eps` (v converted first).
  StepResult transfer(const at::Tensor& sample, int64_t t, int64_t t_prev, at::Tensor eps) const;

  float final_alpha_cumprod_ = 1.f;
  std::vector<int64_t> prk_timesteps_, plms_timesteps_;
  std::vector<at::Tensor> ets_;  // ε history, oldest first (at most 4 kept)
  at::Tensor cur_model_output_;  // PRK's running weighted sum (undefined = 0)
  at::Tensor cur_sample_;        // the sample a multi-call step starts from (undefined = none)
  int64_t counter_ = 0;
};

}  // namespace nd
