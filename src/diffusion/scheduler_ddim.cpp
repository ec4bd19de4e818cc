#include "diffusion/scheduler_ddim.h"

#include <cmath>

#include "core/error.h"

namespace nd {

namespace {
SchedulerConfig resolve(SchedulerConfig c) {
  if (!c.clip_sample) c.clip_sample = true;
  if (!c.set_alpha_to_one) c.set_alpha_to_one = true;
  if (!c.timestep_spacing) c.timestep_spacing = TimestepSpacing::kLeading;
  return c;
}
}  // namespace

DDIMScheduler::DDIMScheduler(const SchedulerConfig& config)
    : Scheduler(resolve(config), config.make_noise_schedule()) {
  final_alpha_cumprod_ = *config_.set_alpha_to_one ? 1.f : schedule_.alpha_cumprod(0);
}

void DDIMScheduler::set_eta(double eta) {
  require(std::isfinite(eta) && eta >= 0, "eta: must be >= 0, got " + std::to_string(eta));
  eta_ = eta;
}

void DDIMScheduler::set_timesteps(int num_inference_steps) {
  check_steps(num_inference_steps);
  num_inference_steps_ = num_inference_steps;
  set_timesteps_list(spaced_timesteps(*config_.timestep_spacing, schedule_.num_train_timesteps(),
                                      num_inference_steps, config_.steps_offset));
}

StepResult DDIMScheduler::step_full(const at::Tensor& model_output, int64_t t, const at::Tensor& sample,
                                    at::Generator* gen, const at::Tensor& variance_noise) {
  TORCH_CHECK(num_inference_steps_ > 0, "DDIMScheduler: call set_timesteps() before step()");
  TORCH_CHECK(model_output.sizes() == sample.sizes(), "DDIMScheduler: model_output ", model_output.sizes(),
              " and sample ", sample.sizes(), " differ");
  check_timestep(t);
  const int64_t prev_t = t - schedule_.num_train_timesteps() / num_inference_steps_;
  // Scalars in float32, in diffusers' order of operations (its 0-d float32 tensors).
  const float a_t = schedule_.alpha_cumprod(t);
  const float a_prev = prev_t >= 0 ? schedule_.alpha_cumprod(prev_t) : final_alpha_cumprod_;
  const float b_t = 1.f - a_t;
  const float sqrt_a = std::sqrt(a_t), sqrt_b = std::sqrt(b_t);

  at::Tensor x0, eps;
  switch (config_.prediction_type) {
    case PredictionType::kEpsilon:
      x0 = (sample - model_output * sqrt_b) / sqrt_a;
      eps = model_output;
      break;
    case PredictionType::kSample:
      x0 = model_output;
      eps = (sample - x0 * sqrt_a) / sqrt_b;
      break;
    case PredictionType::kVPrediction:
      x0 = sample * sqrt_a - model_output * sqrt_b;
      eps = model_output * sqrt_a + sample * sqrt_b;
      break;
  }
  if (config_.thresholding) {
    x0 = dynamic_threshold(x0, config_.dynamic_thresholding_ratio, config_.sample_max_value);
  } else if (*config_.clip_sample) {
    x0 = x0.clamp(-config_.clip_sample_range, config_.clip_sample_range);
  }

  const float b_prev = 1.f - a_prev;
  const float variance = (b_prev / b_t) * (1.f - a_t / a_prev);
  const float std_dev = static_cast<float>(eta_) * std::sqrt(variance);
  if (use_clipped_model_output_) eps = (sample - x0 * sqrt_a) / sqrt_b;

  const float dir_coef = std::sqrt(1.f - a_prev - std_dev * std_dev);
  at::Tensor prev = x0 * std::sqrt(a_prev) + eps * dir_coef;
  if (eta_ > 0) prev = prev + step_noise(model_output, gen, variance_noise) * std_dev;
  return {prev, x0};
}

}  // namespace nd
