// Euler's method on the probability-flow ODE in σ-space (Karras et al. 2022, k-diffusion's sample_euler) as
// diffusers' EulerDiscreteScheduler v0.25.1.
//
// σ_t = √((1 − ᾱ_t)/ᾱ_t); the sampler's x = x_t/√ᾱ_t = x0 + σ·ε, so the model input is x/√(σ² + 1)
// (scale_model_input) and the initial noise has std init_noise_sigma() = σ_max ("linspace"/"trailing"
// spacing) or √(σ_max² + 1) ("leading").
// set_timesteps(n): float timesteps by timestep_spacing (default "linspace": linspace(0, T−1, n) reversed),
//   σ at them by linear interpolation of the training σ's (interpolation_type "linear"), or n + 1 σ's
//   log-spaced from σ_max to σ_min ("log_linear"); use_karras_sigmas replaces them by Karras' ρ = 7 ramp
//   between σ_min and σ_max (config sigma_min/sigma_max override) and maps each σ back to a fractional
//   timestep; a final σ = 0 is appended.
// step at index i: σ̂ = σ_i(1 + γ) (γ > 0 only with churn), x0 from the model output (ε: x − σ̂·ε;
//   v: −σ/√(σ²+1)·v + x/(σ²+1); sample), x_next = x + (x − x0)/σ̂ · (σ_{i+1} − σ̂).
// Timesteps: model_timesteps() holds diffusers' float timesteps (timestep_type "continuous" with
// v_prediction: 0.25·log σ); timesteps() holds them rounded to the nearest integer (for "continuous": the
// nearest training timestep) as identifiers for step()/scale_model_input()/add_noise(). As in diffusers the
// step index is found from t on the first call of a run (the second match when t occurs twice) and then
// advances by one per step(), so call them with the run's timesteps in order.
#pragma once
#include <limits>

#include "diffusion/scheduler.h"

namespace nd {

class EulerDiscreteScheduler : public Scheduler {
 public:
  explicit EulerDiscreteScheduler(const SchedulerConfig& config);

  const char* name() const override { return "EulerDiscreteScheduler"; }
  void set_timesteps(int num_inference_steps) override;
  StepResult step_full(const at::Tensor& model_output, int64_t t, const at::Tensor& sample,
                       at::Generator* gen = nullptr, const at::Tensor& variance_noise = {}) override;
  at::Tensor scale_model_input(const at::Tensor& sample, int64_t t) override;
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t t) const override;
  float init_noise_sigma() const override;

  // σ of this run: one per timestep, then 0 (log_linear: n + 1 σ's, then 0).
  const std::vector<float>& sigmas() const { return sigmas_; }
  // σ of every training timestep, ascending in t: [T].
  const std::vector<float>& train_sigmas() const { return train_sigmas_; }
  // The fractional training timestep whose σ is `sigma` (interpolating log σ linearly), in [0, T − 1].
  double sigma_to_timestep(double sigma) const;
  int step_index() const { return step_index_; }  // -1 until the run's first step/scale_model_input

  // Stochastic churn (diffusers' step() arguments s_churn, s_tmin, s_tmax, s_noise), kept for the run.
  void set_churn(double s_churn, double s_tmin = 0.0, double s_tmax = std::numeric_limits<double>::infinity(),
                 double s_noise = 1.0);

 private:
  int64_t index_for_timestep(int64_t t) const;
  void init_step_index(int64_t t);
  void set_run(const std::vector<float>& timesteps, std::vector<float> sigmas);

  std::vector<float> train_sigmas_;  // [T]
  std::vector<float> log_sigmas_;    // [T] log of train_sigmas_ (float32, as numpy)
  std::vector<float> sigmas_;
  int step_index_ = -1;
  double s_churn_ = 0.0, s_tmin_ = 0.0, s_tmax_ = std::numeric_limits<double>::infinity(), s_noise_ = 1.0;
};

}  // namespace nd
