#include "diffusion/scheduler_pndm.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace nd {

namespace {
SchedulerConfig resolve(SchedulerConfig c) {
  if (!c.set_alpha_to_one) c.set_alpha_to_one = false;
  if (!c.timestep_spacing) c.timestep_spacing = TimestepSpacing::kLeading;
  require(c.prediction_type != PredictionType::kSample,
          c.source + ": prediction_type: 'sample' is not supported by PNDMScheduler (epsilon, v_prediction)");
  return c;
}
}  // namespace

// PNDM takes no rescale_betas_zero_snr in diffusers: the key is ignored.
PNDMScheduler::PNDMScheduler(const SchedulerConfig& config)
    : Scheduler(resolve(config), config.make_noise_schedule(/*allow_rescale=*/false)) {
  final_alpha_cumprod_ = *config_.set_alpha_to_one ? 1.f : schedule_.alpha_cumprod(0);
}

void PNDMScheduler::set_timesteps(int num_inference_steps) {
  check_steps(num_inference_steps);
  const int64_t T = schedule_.num_train_timesteps(), n = num_inference_steps;
  require(config_.skip_prk_steps || n >= 4,
          config_.source +
              ": PNDMScheduler with skip_prk_steps false needs at least 4 inference steps, got " +
              std::to_string(n));
  num_inference_steps_ = num_inference_steps;
  // diffusers' _timesteps: the same values as DDIM's, ascending.
  std::vector<int64_t> asc = spaced_timesteps(*config_.timestep_spacing, T, n, config_.steps_offset);
  std::reverse(asc.begin(), asc.end());

  prk_timesteps_.clear();
  plms_timesteps_.clear();
  if (config_.skip_prk_steps) {
    // concatenate([ts[:-1], ts[-2:-1], ts[-1:]])[::-1]: the second-highest timestep appears twice.
    std::vector<int64_t> fwd(asc.begin(), asc.end() - 1);
    if (n >= 2) fwd.push_back(asc[n - 2]);
    fwd.push_back(asc[n - 1]);
    plms_timesteps_.assign(fwd.rbegin(), fwd.rend());
  } else {
    // ts[-4:].repeat(2) + tile([0, T//n//2], 4), minus the last, each repeated twice, [1:-1], reversed.
    const int64_t half = T / n / 2;
    std::vector<int64_t> raw;
    for (int64_t k = n - 4; k < n; ++k) {
      raw.push_back(asc[k]);
      raw.push_back(asc[k] + half);
    }
    raw.pop_back();
    std::vector<int64_t> twice;
    for (int64_t v : raw) twice.insert(twice.end(), {v, v});
    std::vector<int64_t> mid(twice.begin() + 1, twice.end() - 1);
    prk_timesteps_.assign(mid.rbegin(), mid.rend());
    plms_timesteps_.assign(asc.rbegin() + 3, asc.rend());  // ts[:-3][::-1]
  }
  std::vector<int64_t> all = prk_timesteps_;
  all.insert(all.end(), plms_timesteps_.begin(), plms_timesteps_.end());
  set_timesteps_list(std::move(all));
  ets_.clear();
  cur_model_output_ = at::Tensor();
  cur_sample_ = at::Tensor();
  counter_ = 0;
}

StepResult PNDMScheduler::step_full(const at::Tensor& model_output, int64_t t, const at::Tensor& sample,
                                    at::Generator* gen, const at::Tensor& variance_noise) {
  TORCH_CHECK(num_inference_steps_ > 0, "PNDMScheduler: call set_timesteps() before step()");
  TORCH_CHECK(model_output.sizes() == sample.sizes(), "PNDMScheduler: model_output ", model_output.sizes(),
              " and sample ", sample.sizes(), " differ");
  check_timestep(t);
  if (counter_ < static_cast<int64_t>(prk_timesteps_.size()) && !config_.skip_prk_steps)
    return step_prk(model_output, t, sample);
  return step_plms(model_output, t, sample);
}

StepResult PNDMScheduler::step_prk(const at::Tensor& model_output, int64_t t, const at::Tensor& sample) {
  const int64_t T = schedule_.num_train_timesteps();
  const int64_t diff_to_prev = counter_ % 2 ? 0 : T / num_inference_steps_ / 2;
  const int64_t prev_t = t - diff_to_prev;
  const int64_t t_from = prk_timesteps_[counter_ / 4 * 4];
  at::Tensor eps = model_output;
  const auto accumulate = [this](const at::Tensor& x) {
    cur_model_output_ = cur_model_output_.defined() ? cur_model_output_ + x : x;
  };
  switch (counter_ % 4) {
    case 0:
      accumulate(model_output * (1.0 / 6));
      ets_.push_back(model_output);
      cur_sample_ = sample;
      break;
    case 1:
    case 2:
      accumulate(model_output * (1.0 / 3));
      break;
    case 3:
      eps = cur_model_output_ + model_output * (1.0 / 6);
      cur_model_output_ = at::Tensor();
      break;
  }
  const at::Tensor& from = cur_sample_.defined() ? cur_sample_ : sample;
  StepResult r = transfer(from, t_from, prev_t, eps);
  ++counter_;
  return r;
}

StepResult PNDMScheduler::step_plms(const at::Tensor& model_output, int64_t t, const at::Tensor& sample) {
  TORCH_CHECK(config_.skip_prk_steps || ets_.size() >= 3, "PNDMScheduler: the PRK steps must run first");
  const int64_t ratio = schedule_.num_train_timesteps() / num_inference_steps_;
  int64_t prev_t = t - ratio;
  if (counter_ != 1) {
    if (ets_.size() > 3) ets_.erase(ets_.begin(), ets_.end() - 3);
    ets_.push_back(model_output);
  } else {
    // The repeated timestep: redo the first step, from t + ratio, with the averaged ε.
    prev_t = t;
    t = t + ratio;
  }
  at::Tensor eps = model_output;
  at::Tensor from = sample;
  const size_t k = ets_.size();
  if (k == 1 && counter_ == 0) {
    cur_sample_ = sample;
  } else if (k == 1 && counter_ == 1) {
    eps = (model_output + ets_[0]) / 2;
    from = cur_sample_;
    cur_sample_ = at::Tensor();
  } else if (k == 2) {
    eps = (ets_[1] * 3 - ets_[0]) / 2;
  } else if (k == 3) {
    eps = (ets_[2] * 23 - ets_[1] * 16 + ets_[0] * 5) / 12;
  } else {
    eps = (ets_[3] * 55 - ets_[2] * 59 + ets_[1] * 37 - ets_[0] * 9) * (1.0 / 24);
  }
  StepResult r = transfer(from, t, prev_t, eps);
  ++counter_;
  return r;
}

StepResult PNDMScheduler::transfer(const at::Tensor& sample, int64_t t, int64_t t_prev,
                                   at::Tensor eps) const {
  check_timestep(t);
  const float a_t = schedule_.alpha_cumprod(t);
  const float a_prev = t_prev >= 0 ? schedule_.alpha_cumprod(t_prev) : final_alpha_cumprod_;
  const float b_t = 1.f - a_t;
  const float b_prev = 1.f - a_prev;
  if (config_.prediction_type == PredictionType::kVPrediction)
    eps = eps * std::sqrt(a_t) + sample * std::sqrt(b_t);
  const float sample_coef = std::sqrt(a_prev / a_t);
  const float denom = a_t * std::sqrt(b_prev) + std::sqrt(a_t * b_t * a_prev);
  at::Tensor prev = sample * sample_coef - (eps * (a_prev - a_t)) / denom;
  at::Tensor x0 = (sample - eps * std::sqrt(b_t)) / std::sqrt(a_t);
  return {prev, x0};
}

}  // namespace nd
