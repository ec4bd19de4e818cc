#include "diffusion/scheduler_ddpm.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace nd {

namespace {
SchedulerConfig resolve(SchedulerConfig c) {
  if (!c.clip_sample) c.clip_sample = true;
  if (!c.timestep_spacing) c.timestep_spacing = TimestepSpacing::kLeading;
  const std::string& v = c.variance_type;
  require(v == "fixed_small" || v == "fixed_small_log" || v == "fixed_large" || v == "fixed_large_log" ||
              v == "learned_range",
          c.source + ": variance_type: '" + v +
              "' is not supported by DDPMScheduler (fixed_small, fixed_small_log, fixed_large, "
              "fixed_large_log, learned_range)");
  return c;
}
}  // namespace

DDPMScheduler::DDPMScheduler(const SchedulerConfig& config)
    : Scheduler(resolve(config), config.make_noise_schedule()) {}

void DDPMScheduler::set_timesteps(int num_inference_steps) {
  check_steps(num_inference_steps);
  num_inference_steps_ = num_inference_steps;
  set_timesteps_list(spaced_timesteps(*config_.timestep_spacing, schedule_.num_train_timesteps(),
                                      num_inference_steps, config_.steps_offset));
}

int64_t DDPMScheduler::previous_timestep(int64_t t) const {
  const int64_t T = schedule_.num_train_timesteps();
  const int64_t n = num_inference_steps_ > 0 ? num_inference_steps_ : T;
  return t - T / n;
}

StepResult DDPMScheduler::step_full(const at::Tensor& model_output, int64_t t, const at::Tensor& sample,
                                    at::Generator* gen, const at::Tensor& variance_noise) {
  check_timestep(t);
  at::Tensor out = model_output, predicted_variance;
  if (config_.variance_type == "learned_range") {
    TORCH_CHECK(model_output.dim() >= 2 && sample.dim() >= 2 && model_output.size(1) == 2 * sample.size(1),
                "DDPMScheduler (learned_range): model_output needs twice the sample's channels");
    auto parts = model_output.split(sample.size(1), 1);
    out = parts[0];
    predicted_variance = parts[1];
  }
  TORCH_CHECK(out.sizes() == sample.sizes(), "DDPMScheduler: model_output ", out.sizes(), " and sample ",
              sample.sizes(), " differ");

  const int64_t prev_t = previous_timestep(t);
  const float a_t = schedule_.alpha_cumprod(t);
  const float a_prev = prev_t >= 0 ? schedule_.alpha_cumprod(prev_t) : 1.f;
  const float b_t = 1.f - a_t;
  const float b_prev = 1.f - a_prev;
  const float cur_alpha = a_t / a_prev;
  const float cur_beta = 1.f - cur_alpha;

  at::Tensor x0;
  switch (config_.prediction_type) {
    case PredictionType::kEpsilon:
      x0 = (sample - out * std::sqrt(b_t)) / std::sqrt(a_t);
      break;
    case PredictionType::kSample:
      x0 = out;
      break;
    case PredictionType::kVPrediction:
      x0 = sample * std::sqrt(a_t) - out * std::sqrt(b_t);
      break;
  }
  if (config_.thresholding) {
    x0 = dynamic_threshold(x0, config_.dynamic_thresholding_ratio, config_.sample_max_value);
  } else if (*config_.clip_sample) {
    x0 = x0.clamp(-config_.clip_sample_range, config_.clip_sample_range);
  }

  // Posterior mean of q(x_{t_prev} | x_t, x0) (formula 7 of the DDPM paper).
  const float x0_coef = (std::sqrt(a_prev) * cur_beta) / b_t;
  const float sample_coef = std::sqrt(cur_alpha) * b_prev / b_t;
  at::Tensor prev = x0 * x0_coef + sample * sample_coef;

  if (t > 0) {
    const at::Tensor noise = step_noise(out, gen, variance_noise);
    const float var_small = std::max((b_prev / b_t) * cur_beta, 1e-20f);
    const std::string& type = config_.variance_type;
    if (type == "fixed_small") {
      prev = prev + noise * std::sqrt(var_small);
    } else if (type == "fixed_small_log") {
      prev = prev + noise * std::exp(0.5f * std::log(var_small));
    } else if (type == "fixed_large" || type == "fixed_large_log") {
      prev = prev + noise * std::sqrt(cur_beta);
    } else {  // learned_range: interpolate log-variance between the two fixed choices
      const at::Tensor frac = (predicted_variance + 1) / 2;
      const at::Tensor log_var = frac * std::log(cur_beta) + (1 - frac) * std::log(var_small);
      prev = prev + at::exp(0.5 * log_var) * noise;
    }
  }
  return {prev, x0};
}

}  // namespace nd
