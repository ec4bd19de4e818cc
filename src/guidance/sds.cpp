#include "guidance/sds.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>

#include "core/config_json.h"
#include "core/error.h"

namespace nd {

nlohmann::json to_json(const SDSConfig& c) {
  return {{"guidance_scale", c.guidance_scale},
          {"t_min", c.t_min},
          {"t_max", c.t_max},
          {"t_max_end", c.t_max_end},
          {"camera_conditioning", c.camera_conditioning}};
}

SDSConfig sds_config_from_json(const nlohmann::json& j) {
  SDSConfig c;
  ConfigReader r(j, "guidance");
  r.get("guidance_scale", c.guidance_scale);
  r.get("t_min", c.t_min);
  r.get("t_max", c.t_max);
  r.get("t_max_end", c.t_max_end);
  r.get("camera_conditioning", c.camera_conditioning);
  r.finish();
  validate(c);
  return c;
}

void validate(const SDSConfig& c) {
  require(c.guidance_scale >= 0 && c.guidance_scale <= 1000, "guidance.guidance_scale must be in [0, 1000]");
  require(0 <= c.t_min && c.t_min < c.t_max && c.t_max <= 1, "guidance: need 0 <= t_min < t_max <= 1");
  require(c.t_min < c.t_max_end && c.t_max_end <= 1, "guidance: need t_min < t_max_end <= 1");
}

at::Tensor pixel_space(const at::Tensor& images) { return images * 2 - 1; }

SDSGuidance::SDSGuidance(const NoiseSchedule& schedule, GuidedEpsilon epsilon, const SDSConfig& config,
                         ImageEncoder encode)
    : schedule_(schedule), epsilon_(std::move(epsilon)), encode_(std::move(encode)), config_(config) {}

SDSGuidance::SDSGuidance(DiffusionGuide& guide, const SDSConfig& config)
    : SDSGuidance(
          guide.schedule(),
          [&guide](const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& cond,
                   const at::Tensor& views,
                   double scale) { return guide.guided_epsilon(x_t, t, cond, views, scale); },
          config, [&guide](const at::Tensor& images) { return guide.encode(images); }) {
  if (!guide.camera_conditioned()) config_.camera_conditioning = false;
}

SDSResult SDSGuidance::step(const at::Tensor& image, const at::Tensor& cond, const at::Tensor& views,
                            double progress, at::Generator& gen) {
  const at::Tensor x = encode_(image);
  const int64_t b = x.size(0);
  const int64_t steps = schedule_.num_train_timesteps();
  const double p = std::clamp(progress, 0.0, 1.0);
  const double t_hi = config_.t_max + (config_.t_max_end - config_.t_max) * p;
  const int64_t lo = static_cast<int64_t>(config_.t_min * steps);
  const int64_t hi = std::max(lo + 1, static_cast<int64_t>(t_hi * steps));
  const at::Tensor t = at::randint(lo, std::min(hi, steps - 1) + 1, {b}, gen, at::kLong);
  const at::Tensor noise = at::randn(x.sizes(), gen, at::TensorOptions(at::kFloat));
  return distill(x, cond, views, t, noise);
}

SDSResult SDSGuidance::step_with(const at::Tensor& image, const at::Tensor& cond, const at::Tensor& views,
                                 const at::Tensor& t, const at::Tensor& noise) {
  return distill(encode_(image), cond, views, t, noise);
}

SDSResult SDSGuidance::distill(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& views,
                               const at::Tensor& t_cpu, const at::Tensor& noise_cpu) {
  const int64_t b = x.size(0);
  TORCH_CHECK(x.dim() == 4 && t_cpu.dim() == 1 && t_cpu.size(0) == b && noise_cpu.sizes() == x.sizes(),
              "SDS: x must be [B,C,H,W] with t [B] and noise like x, got ", x.sizes(), " and ",
              noise_cpu.sizes());
  at::Tensor gradient;
  const at::Tensor t = t_cpu.to(x.device());
  {
    torch::NoGradGuard no_grad;
    const at::Tensor xd = x.detach();
    const at::Tensor noise = noise_cpu.to(xd.options());
    const at::Tensor x_t = schedule_.add_noise(xd, noise, t);
    const at::Tensor feats =
        config_.camera_conditioning ? view_features(views) : at::zeros({b, kViewFeatures}, at::kFloat);
    const at::Tensor eps = epsilon_(x_t, t, cond, feats, config_.guidance_scale);
    const at::Tensor w = 1 - schedule_.alpha_cumprod_view(t, xd);
    gradient = w * (eps.to(xd.options()) - noise);
    gradient = at::nan_to_num(gradient, 0.0, 0.0, 0.0);
  }
  const at::Tensor target = (x - gradient).detach();
  const at::Tensor loss = 0.5 * (x - target).pow(2).sum() / static_cast<double>(b);
  return {loss, gradient, t_cpu};
}

}  // namespace nd
