#include "diffusion/scheduler_euler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace nd {

namespace {
SchedulerConfig resolve(SchedulerConfig c) {
  if (!c.timestep_spacing) c.timestep_spacing = TimestepSpacing::kLinspace;
  return c;
}

// np.interp(x, arange(len(fp)), fp) in float64.
double interp_unit_grid(double x, const std::vector<float>& fp) {
  const int64_t last = static_cast<int64_t>(fp.size()) - 1;
  if (x <= 0) return fp[0];
  if (x >= static_cast<double>(last)) return fp[last];
  const int64_t j = static_cast<int64_t>(std::floor(x));
  if (x == static_cast<double>(j)) return fp[j];
  const double slope = static_cast<double>(fp[j + 1]) - static_cast<double>(fp[j]);
  return slope * (x - static_cast<double>(j)) + static_cast<double>(fp[j]);
}
}  // namespace

EulerDiscreteScheduler::EulerDiscreteScheduler(const SchedulerConfig& config)
    : Scheduler(resolve(config), config.make_noise_schedule()) {
  const int64_t T = schedule_.num_train_timesteps();
  std::vector<float> ac(schedule_.alphas_cumprod().data_ptr<float>(),
                        schedule_.alphas_cumprod().data_ptr<float>() + T);
  // With zero terminal SNR ᾱ_{T−1} = 0 would make σ infinite: diffusers sets it to 2^−24.
  if (config_.rescale_betas_zero_snr) ac[T - 1] = std::ldexp(1.f, -24);
  train_sigmas_.resize(T);
  log_sigmas_.resize(T);
  for (int64_t i = 0; i < T; ++i) {
    train_sigmas_[i] = std::sqrt((1.f - ac[i]) / ac[i]);
    log_sigmas_[i] = std::log(train_sigmas_[i]);
  }
  // Before set_timesteps(): every training timestep, descending.
  std::vector<float> ts(T);
  std::vector<float> sig(T + 1, 0.f);
  for (int64_t i = 0; i < T; ++i) {
    ts[i] = static_cast<float>(T - 1 - i);
    sig[i] = train_sigmas_[T - 1 - i];
  }
  set_run(ts, std::move(sig));
}

void EulerDiscreteScheduler::set_churn(double s_churn, double s_tmin, double s_tmax, double s_noise) {
  require(s_churn >= 0 && s_noise >= 0, "euler churn: s_churn and s_noise must be >= 0");
  s_churn_ = s_churn;
  s_tmin_ = s_tmin;
  s_tmax_ = s_tmax;
  s_noise_ = s_noise;
}

double EulerDiscreteScheduler::sigma_to_timestep(double sigma) const {
  const double log_sigma = std::log(std::max(sigma, 1e-10));
  const int64_t T = static_cast<int64_t>(log_sigmas_.size());
  // diffusers: low = the last index whose log σ is <= log_sigma (0 if none), at most T − 2. numpy 1.x
  // compares in float32 (a float64 scalar meets a float32 array).
  const float ls32 = static_cast<float>(log_sigma);
  int64_t low = 0;
  for (int64_t i = 0; i < T; ++i)
    if (ls32 - log_sigmas_[i] >= 0.f) low = i;
  low = std::min(low, T - 2);
  const double lo = log_sigmas_[low], hi = log_sigmas_[low + 1];
  double w = (lo - log_sigma) / (lo - hi);
  w = std::min(std::max(w, 0.0), 1.0);
  return (1 - w) * static_cast<double>(low) + w * static_cast<double>(low + 1);
}

void EulerDiscreteScheduler::set_timesteps(int num_inference_steps) {
  check_steps(num_inference_steps);
  num_inference_steps_ = num_inference_steps;
  const int64_t T = schedule_.num_train_timesteps(), n = num_inference_steps;

  std::vector<float> ts(n);  // float32 timesteps, descending
  switch (*config_.timestep_spacing) {
    case TimestepSpacing::kLinspace: {
      const double step = n > 1 ? static_cast<double>(T - 1) / (n - 1) : 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const double v = (n > 1 && i == n - 1) ? static_cast<double>(T - 1) : i * step;
        ts[n - 1 - i] = static_cast<float>(v);
      }
      break;
    }
    case TimestepSpacing::kLeading: {
      const int64_t ratio = T / n;
      for (int64_t i = 0; i < n; ++i)
        ts[n - 1 - i] = static_cast<float>(i * ratio) + static_cast<float>(config_.steps_offset);
      break;
    }
    case TimestepSpacing::kTrailing: {
      const std::vector<double> a = numpy_arange(static_cast<double>(T), 0.0, -static_cast<double>(T) / n, n);
      TORCH_CHECK(static_cast<int64_t>(a.size()) == n,
                  "EulerDiscreteScheduler: trailing spacing gave too few steps");
      for (int64_t i = 0; i < n; ++i) ts[i] = static_cast<float>(std::nearbyint(a[i])) - 1.f;
      break;
    }
  }
  for (float t : ts)
    require(t >= 0 && t <= static_cast<float>(T - 1),
            config_.source + ": steps_offset " + std::to_string(config_.steps_offset) + " with " +
                std::to_string(n) + " steps gives timestep " + std::to_string(t) + ", outside [0, " +
                std::to_string(T - 1) + "]");

  std::vector<double> sig;  // float64 like numpy's until the final float32 cast
  if (config_.interpolation_type == "log_linear") {
    const at::Tensor s = at::linspace(static_cast<double>(std::log(train_sigmas_[T - 1])),
                                      static_cast<double>(std::log(train_sigmas_[0])), n + 1, at::kFloat)
                             .exp();
    const float* p = s.data_ptr<float>();
    sig.assign(p, p + n + 1);
  } else {
    for (int64_t i = 0; i < n; ++i) sig.push_back(interp_unit_grid(ts[i], train_sigmas_));
  }
  if (config_.use_karras_sigmas) {
    const double sigma_min = config_.sigma_min.value_or(sig.back());
    const double sigma_max = config_.sigma_max.value_or(sig.front());
    const double rho = 7.0;
    const double min_inv = std::pow(sigma_min, 1 / rho), max_inv = std::pow(sigma_max, 1 / rho);
    sig.assign(n, 0.0);
    ts.assign(n, 0.f);
    for (int64_t i = 0; i < n; ++i) {
      const double ramp = n > 1 ? (i == n - 1 ? 1.0 : i * (1.0 / (n - 1))) : 0.0;
      sig[i] = std::pow(max_inv + ramp * (min_inv - max_inv), rho);
      ts[i] = static_cast<float>(sigma_to_timestep(sig[i]));
    }
  }
  std::vector<float> sig32(sig.begin(), sig.end());
  sig32.push_back(0.f);
  set_run(ts, std::move(sig32));
}

void EulerDiscreteScheduler::set_run(const std::vector<float>& timesteps, std::vector<float> sigmas) {
  sigmas_ = std::move(sigmas);
  step_index_ = -1;
  const bool continuous =
      config_.timestep_type == "continuous" && config_.prediction_type == PredictionType::kVPrediction;
  std::vector<int64_t> ids;
  std::vector<double> model_ts;
  if (continuous) {
    // EDM-style v models take c_noise = 0.25·log σ, one per σ before the final 0.
    for (size_t i = 0; i + 1 < sigmas_.size(); ++i) {
      model_ts.push_back(static_cast<double>(0.25f * std::log(sigmas_[i])));
      ids.push_back(static_cast<int64_t>(std::nearbyint(sigma_to_timestep(sigmas_[i]))));
    }
  } else {
    for (float t : timesteps) {
      model_ts.push_back(static_cast<double>(t));
      ids.push_back(static_cast<int64_t>(std::nearbyint(t)));
    }
  }
  set_timesteps_list(std::move(ids));
  model_timesteps_ = std::move(model_ts);
}

int64_t EulerDiscreteScheduler::index_for_timestep(int64_t t) const {
  std::vector<int64_t> hits;
  for (size_t i = 0; i < timesteps_.size() && hits.size() < 2; ++i)
    if (timesteps_[i] == t) hits.push_back(static_cast<int64_t>(i));
  TORCH_CHECK(!hits.empty(), "EulerDiscreteScheduler: timestep ", t, " is not one of this run's timesteps");
  // diffusers takes the second match so that a run started mid-schedule never skips a σ.
  return hits.size() > 1 ? hits[1] : hits[0];
}

void EulerDiscreteScheduler::init_step_index(int64_t t) {
  step_index_ = static_cast<int>(index_for_timestep(t));
}

float EulerDiscreteScheduler::init_noise_sigma() const {
  const float max_sigma = *std::max_element(sigmas_.begin(), sigmas_.end());
  if (*config_.timestep_spacing == TimestepSpacing::kLeading) return std::sqrt(max_sigma * max_sigma + 1.f);
  return max_sigma;
}

at::Tensor EulerDiscreteScheduler::scale_model_input(const at::Tensor& sample, int64_t t) {
  if (step_index_ < 0) init_step_index(t);
  const float sigma = sigmas_[step_index_];
  return sample / std::sqrt(sigma * sigma + 1.f);
}

at::Tensor EulerDiscreteScheduler::add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t t) const {
  return x0 + noise * sigmas_[index_for_timestep(t)];
}

StepResult EulerDiscreteScheduler::step_full(const at::Tensor& model_output, int64_t t,
                                             const at::Tensor& sample, at::Generator* gen,
                                             const at::Tensor& variance_noise) {
  TORCH_CHECK(model_output.sizes() == sample.sizes(), "EulerDiscreteScheduler: model_output ",
              model_output.sizes(), " and sample ", sample.sizes(), " differ");
  if (step_index_ < 0) init_step_index(t);
  TORCH_CHECK(step_index_ + 1 < static_cast<int>(sigmas_.size()), "EulerDiscreteScheduler: the run is over");
  // diffusers upcasts the sample to float32 for the update (float64 stays float64 here).
  const at::ScalarType compute = sample.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor x = sample.to(compute);
  const at::Tensor out = model_output.to(compute);
  const float sigma = sigmas_[step_index_];
  double gamma = 0.0;
  if (s_tmin_ <= sigma && sigma <= s_tmax_)
    gamma = std::min(s_churn_ / static_cast<double>(sigmas_.size() - 1), std::sqrt(2.0) - 1);
  const float sigma_hat = sigma * static_cast<float>(gamma + 1);
  if (gamma > 0) {
    const at::Tensor eps = step_noise(x, gen, variance_noise) * s_noise_;
    x = x + eps * std::sqrt(sigma_hat * sigma_hat - sigma * sigma);
  }
  at::Tensor x0;
  switch (config_.prediction_type) {
    case PredictionType::kSample:
      x0 = out;
      break;
    case PredictionType::kEpsilon:
      x0 = x - out * sigma_hat;
      break;
    case PredictionType::kVPrediction:
      x0 = out * (-sigma / std::sqrt(sigma * sigma + 1.f)) + x / (sigma * sigma + 1.f);
      break;
  }
  const at::Tensor derivative = (x - x0) / sigma_hat;
  const float dt = sigmas_[step_index_ + 1] - sigma_hat;
  const at::Tensor prev = (x + derivative * dt).to(model_output.scalar_type());
  ++step_index_;
  return {prev, x0.to(model_output.scalar_type())};
}

}  // namespace nd
