#include "diffusion/noise_schedule.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace nd {

namespace {
constexpr double kPi = 3.14159265358979323846;  // Python's math.pi
}  // namespace

PredictionType parse_prediction_type(const std::string& word, const std::string& field) {
  if (word == "epsilon") return PredictionType::kEpsilon;
  if (word == "v_prediction") return PredictionType::kVPrediction;
  if (word == "sample" || word == "original_sample") return PredictionType::kSample;
  throw InputError(field + ": unknown prediction type '" + word +
                   "' (expected epsilon, v_prediction or sample)");
}

const char* prediction_type_name(PredictionType type) {
  switch (type) {
    case PredictionType::kEpsilon:
      return "epsilon";
    case PredictionType::kVPrediction:
      return "v_prediction";
    case PredictionType::kSample:
      return "sample";
  }
  return "?";
}

NoiseSchedule::NoiseSchedule(const at::Tensor& betas) {
  require(betas.defined() && betas.dim() == 1 && betas.numel() >= 1 && betas.is_floating_point(),
          "betas: expected a 1-D floating-point tensor with at least one entry");
  betas_ = betas.detach().to(at::kCPU, at::kFloat).contiguous().clone();
  const float* b = betas_.data_ptr<float>();
  const int64_t n = betas_.numel();
  for (int64_t i = 0; i < n; ++i)
    require(std::isfinite(b[i]) && b[i] >= 0.f && b[i] <= 1.f,
            "betas: entry " + std::to_string(i) + " is " + std::to_string(b[i]) + ", outside [0, 1]");
  // α = 1 − β in float32, the product accumulated in float64 and stored as float32 (torch.cumprod on CPU).
  alphas_cumprod_ = at::empty({n}, at::kFloat);
  float* ac = alphas_cumprod_.data_ptr<float>();
  double acc = 1.0;
  for (int64_t i = 0; i < n; ++i) {
    const float alpha = 1.f - b[i];
    acc *= static_cast<double>(alpha);
    ac[i] = static_cast<float>(acc);
  }
  alphas_cumprod_vec_.assign(ac, ac + n);
}

NoiseSchedule NoiseSchedule::linear(int64_t num_train_timesteps, double beta_start, double beta_end) {
  require(num_train_timesteps >= 1, "num_train_timesteps: must be >= 1");
  return NoiseSchedule(at::linspace(beta_start, beta_end, num_train_timesteps, at::kFloat));
}

NoiseSchedule NoiseSchedule::scaled_linear(int64_t num_train_timesteps, double beta_start, double beta_end) {
  require(num_train_timesteps >= 1, "num_train_timesteps: must be >= 1");
  require(beta_start >= 0 && beta_end >= 0, "beta_start/beta_end: must be >= 0 for scaled_linear");
  // Python's beta**0.5 is a float64 pow; the linspace itself runs in float32 like diffusers'.
  const at::Tensor s =
      at::linspace(std::pow(beta_start, 0.5), std::pow(beta_end, 0.5), num_train_timesteps, at::kFloat);
  return NoiseSchedule(s * s);
}

NoiseSchedule NoiseSchedule::squaredcos_cap_v2(int64_t num_train_timesteps, double max_beta) {
  require(num_train_timesteps >= 1, "num_train_timesteps: must be >= 1");
  const auto alpha_bar = [](double s) {
    const double c = std::cos((s + 0.008) / 1.008 * kPi / 2);
    return c * c;
  };
  std::vector<float> betas(num_train_timesteps);
  for (int64_t i = 0; i < num_train_timesteps; ++i) {
    const double t1 = static_cast<double>(i) / num_train_timesteps;
    const double t2 = static_cast<double>(i + 1) / num_train_timesteps;
    betas[i] = static_cast<float>(std::min(1 - alpha_bar(t2) / alpha_bar(t1), max_beta));
  }
  return NoiseSchedule(at::tensor(betas, at::kFloat));
}

at::Tensor NoiseSchedule::rescale_zero_terminal_snr(const at::Tensor& betas) {
  TORCH_CHECK(betas.dim() == 1 && betas.numel() >= 2, "rescale_zero_terminal_snr: betas must be [T], T >= 2");
  const at::Tensor b = betas.to(at::kCPU, at::kFloat);
  // Float32 tensor ops in diffusers' order (cumprod accumulates in float64 on CPU, as above).
  const at::Tensor alphas = 1 - b;
  at::Tensor sqrt_bar = alphas.to(at::kDouble).cumprod(0).to(at::kFloat).sqrt();
  const at::Tensor first = sqrt_bar[0].clone();
  const at::Tensor last = sqrt_bar[-1].clone();
  sqrt_bar = (sqrt_bar - last) * (first / (first - last));
  const at::Tensor bar = sqrt_bar * sqrt_bar;
  const at::Tensor ratio = bar.slice(0, 1) / bar.slice(0, 0, -1);
  return 1 - at::cat({bar.slice(0, 0, 1), ratio});
}

void NoiseSchedule::check_t(int64_t t) const {
  TORCH_CHECK(t >= 0 && t < num_train_timesteps(), "NoiseSchedule: timestep ", t, " outside [0, ",
              num_train_timesteps(), ")");
}

float NoiseSchedule::alpha_cumprod(int64_t t) const {
  check_t(t);
  return alphas_cumprod_vec_[t];
}

at::Tensor NoiseSchedule::alpha_cumprod_view(const at::Tensor& t, const at::Tensor& like) const {
  TORCH_CHECK(t.defined() && !t.is_floating_point() && !t.is_complex() && t.scalar_type() != at::kBool,
              "NoiseSchedule: timesteps must be an integer tensor");
  TORCH_CHECK(t.dim() <= 1, "NoiseSchedule: timesteps must be [] or [B], got ", t.sizes());
  const at::Tensor idx = t.to(at::kCPU, at::kLong).reshape({-1});
  if (idx.numel() > 0) {
    check_t(idx.min().item<int64_t>());
    check_t(idx.max().item<int64_t>());
  }
  at::Tensor a = alphas_cumprod_.index_select(0, idx);
  if (t.dim() == 0) {
    a = a.reshape({});
  } else {
    TORCH_CHECK(like.dim() >= 1, "NoiseSchedule: [B] timesteps need a tensor with a batch dimension");
    std::vector<int64_t> shape(like.dim(), 1);
    shape[0] = idx.numel();
    a = a.reshape(shape);
  }
  return a.to(like.device(), like.scalar_type());
}

NoiseSchedule::Coefs NoiseSchedule::coefs(const at::Tensor& t, const at::Tensor& like) const {
  const at::Tensor a = alpha_cumprod_view(t, like);
  return {a.sqrt(), (1 - a).sqrt()};
}

at::Tensor NoiseSchedule::add_noise(const at::Tensor& x0, const at::Tensor& noise,
                                    const at::Tensor& t) const {
  const Coefs c = coefs(t, x0);
  return c.sqrt_a * x0 + c.sqrt_b * noise;
}

at::Tensor NoiseSchedule::velocity(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const {
  const Coefs c = coefs(t, x0);
  return c.sqrt_a * noise - c.sqrt_b * x0;
}

at::Tensor NoiseSchedule::to_x0(PredictionType type, const at::Tensor& output, const at::Tensor& x_t,
                                const at::Tensor& t) const {
  switch (type) {
    case PredictionType::kSample:
      return output;
    case PredictionType::kEpsilon: {
      const Coefs c = coefs(t, x_t);
      return (x_t - c.sqrt_b * output) / c.sqrt_a;
    }
    case PredictionType::kVPrediction: {
      const Coefs c = coefs(t, x_t);
      return c.sqrt_a * x_t - c.sqrt_b * output;
    }
  }
  TORCH_CHECK(false, "NoiseSchedule: bad prediction type");
}

at::Tensor NoiseSchedule::to_epsilon(PredictionType type, const at::Tensor& output, const at::Tensor& x_t,
                                     const at::Tensor& t) const {
  if (type == PredictionType::kEpsilon) return output;
  const Coefs c = coefs(t, x_t);
  if (type == PredictionType::kSample) return (x_t - c.sqrt_a * output) / c.sqrt_b;
  return c.sqrt_a * output + c.sqrt_b * x_t;  // from v
}

at::Tensor NoiseSchedule::to_v(PredictionType type, const at::Tensor& output, const at::Tensor& x_t,
                               const at::Tensor& t) const {
  if (type == PredictionType::kVPrediction) return output;
  const Coefs c = coefs(t, x_t);
  if (type == PredictionType::kEpsilon) return (output - c.sqrt_b * x_t) / c.sqrt_a;
  return (c.sqrt_a * x_t - output) / c.sqrt_b;  // from x0
}

namespace {
at::Tensor t_tensor(int64_t t) { return at::scalar_tensor(t, at::kLong); }
}  // namespace

at::Tensor NoiseSchedule::add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t t) const {
  return add_noise(x0, noise, t_tensor(t));
}
at::Tensor NoiseSchedule::velocity(const at::Tensor& x0, const at::Tensor& noise, int64_t t) const {
  return velocity(x0, noise, t_tensor(t));
}
at::Tensor NoiseSchedule::to_x0(PredictionType type, const at::Tensor& output, const at::Tensor& x_t,
                                int64_t t) const {
  return to_x0(type, output, x_t, t_tensor(t));
}
at::Tensor NoiseSchedule::to_epsilon(PredictionType type, const at::Tensor& output, const at::Tensor& x_t,
                                     int64_t t) const {
  return to_epsilon(type, output, x_t, t_tensor(t));
}
at::Tensor NoiseSchedule::to_v(PredictionType type, const at::Tensor& output, const at::Tensor& x_t,
                               int64_t t) const {
  return to_v(type, output, x_t, t_tensor(t));
}

double NoiseSchedule::snr(int64_t t) const {
  const double a = alpha_cumprod(t);
  return a / (1.0 - a);
}

at::Tensor NoiseSchedule::snr(const at::Tensor& t) const {
  TORCH_CHECK(t.dim() <= 1, "NoiseSchedule::snr: timesteps must be [] or [B]");
  const at::Tensor like = at::empty({t.dim() == 0 ? 1 : t.numel()}, at::kFloat);
  const at::Tensor a = alpha_cumprod_view(t, like).reshape(t.sizes());
  return a / (1 - a);
}

}  // namespace nd
