#include "guidance/iterative_dataset_update.h"

#include <cmath>

#include "core/error.h"

namespace nd {

void validate(const IDUConfig& c) {
  require(c.views >= 1 && c.views <= 64, "idu.views must be in [1, 64]");
  require(c.steps_per_view >= 1, "idu.steps_per_view must be >= 1");
  require(c.strength > 0 && c.strength <= 1, "idu.strength must be in (0, 1]");
  require(c.refine_strength >= 0 && c.refine_strength <= 1, "idu.refine_strength must be in [0, 1]");
  require(c.refresh_every >= 0, "idu.refresh_every must be >= 0");
  require(c.elevation >= -10 && c.elevation <= 90 && c.elevation + c.elevation_step >= -10 &&
              c.elevation + c.elevation_step <= 90,
          "idu: elevation and elevation + elevation_step must be in [-10, 90] degrees");
  require(c.sample_steps >= 1 && c.sample_steps <= 1000, "idu.sample_steps must be in [1, 1000]");
  require(c.sample_eta >= 0 && c.sample_eta <= 1, "idu.sample_eta must be in [0, 1]");
  require(c.guidance_scale >= 0 && c.guidance_scale <= 100, "idu.guidance_scale must be in [0, 100]");
  require(c.white_threshold >= 0.5 && c.white_threshold <= 1, "idu.white_threshold must be in [0.5, 1]");
  require(c.background_weight >= 0, "idu.background_weight must be >= 0");
  require(c.shading == "albedo" || c.shading == "lambertian",
          "idu.shading must be albedo or lambertian, not '" + c.shading + "'");
  require(c.ambient >= 0 && c.ambient <= 1, "idu.ambient must be in [0, 1]");
  require(c.rays_per_step >= 16 && c.rays_per_step <= (1 << 20), "idu.rays_per_step must be in [16, 2^20]");
}

IterativeDatasetUpdate::IterativeDatasetUpdate(const IDUConfig& config, int resolution,
                                               const ViewRange& range)
    : config_(config), resolution_(resolution), range_(range) {
  validate(config_);
  const int64_t v = config_.views, r = resolution_;
  images_ = at::ones({v, r, r, 3}, at::kFloat);
  std::vector<Camera> cameras;
  for (int i = 0; i < config_.views; ++i) {
    const View view = orbit_view(i);
    cameras.push_back(
        orbit_camera(view.radius, view.elevation, view.azimuth, view.fov, resolution_, resolution_));
  }
  cameras_ = pack_cameras(cameras);
}

View IterativeDatasetUpdate::orbit_view(int index) const {
  const double step = 360.0 / config_.views;
  const int k = (index + 1) / 2;                                       // 0, 1, 1, 2, 2, ...
  const double side = index % 2 == 1 ? 1 : -1;                         // +, −, +, −
  double azimuth = std::fmod(side * k * step + 540.0, 360.0) - 180.0;  // wrap into [-180, 180)
  if (azimuth < -180) azimuth += 360;
  View v;
  v.azimuth = azimuth;
  v.elevation = config_.elevation + (k % 2 == 1 ? config_.elevation_step : 0.0);
  v.radius = 0.5 * (range_.radius_min + range_.radius_max);
  v.fov = 0.5 * (range_.fov_min + range_.fov_max);
  return v;
}

IterativeDatasetUpdate::Due IterativeDatasetUpdate::due(int64_t step) const {
  const int64_t collect_end = static_cast<int64_t>(config_.views) * config_.steps_per_view;
  if (step < collect_end) {
    if (step % config_.steps_per_view != 0) return {};
    const int i = static_cast<int>(step / config_.steps_per_view);
    return {i == 0 ? Action::kSample : Action::kAdd, i};
  }
  if (config_.refresh_every <= 0 || config_.refine_strength <= 0 || step == collect_end) return {};
  const int64_t since = step - collect_end;
  if (since % config_.refresh_every != 0) return {};
  return {Action::kRefresh, static_cast<int>((since / config_.refresh_every - 1) % config_.views)};
}

double IterativeDatasetUpdate::strength(Action action) const {
  return action == Action::kRefresh ? config_.refine_strength : config_.strength;
}

void IterativeDatasetUpdate::set(int index, const at::Tensor& image) {
  require(index >= 0 && index <= collected_ && index < config_.views,
          "idu: view " + std::to_string(index) + " out of order");
  at::Tensor hwc = image.dim() == 4 ? image.squeeze(0).permute({1, 2, 0}) : image;
  TORCH_CHECK(hwc.size(0) == resolution_ && hwc.size(1) == resolution_ && hwc.size(2) == 3,
              "idu: image of the wrong size ", image.sizes());
  at::Tensor image01 = hwc.detach().to(at::kFloat).clamp(0, 1);
  if (config_.white_threshold < 1) {
    const at::Tensor background = std::get<0>(image01.min(2, /*keepdim=*/true)) >= config_.white_threshold;
    image01 = at::where(background, at::ones_like(image01), image01);
  }
  images_[index].copy_(image01);
  if (index == collected_) ++collected_;
}

IterativeDatasetUpdate::Batch IterativeDatasetUpdate::sample_pixels(int64_t n, std::mt19937_64& rng) const {
  TORCH_CHECK(collected_ > 0, "idu: no views collected yet");
  const uint64_t per_view = static_cast<uint64_t>(resolution_) * resolution_;
  const uint64_t total = static_cast<uint64_t>(collected_) * per_view;
  at::Tensor index = at::empty({n}, at::kLong), view = at::empty({n}, at::kLong);
  at::Tensor pixels = at::empty({n, 2}, at::kFloat);
  auto* pi = index.data_ptr<int64_t>();
  auto* pv = view.data_ptr<int64_t>();
  auto* pp = pixels.data_ptr<float>();
  const auto jitter = [&rng] { return static_cast<float>(static_cast<double>(rng() >> 11) * 0x1.0p-53); };
  for (int64_t i = 0; i < n; ++i) {
    pi[i] = static_cast<int64_t>(rng() % total);
    pv[i] = pi[i] / static_cast<int64_t>(per_view);
    const int64_t pixel = pi[i] % static_cast<int64_t>(per_view);
    pp[2 * i] = static_cast<float>(pixel % resolution_) + jitter();
    pp[2 * i + 1] = static_cast<float>(pixel / resolution_) + jitter();
  }
  const at::Tensor colors = images_.narrow(0, 0, collected_).reshape({-1, 3}).index_select(0, index);
  return {batch_rays(cameras_, view, pixels), colors, (std::get<0>(colors.min(1)) >= 1.0f).to(at::kFloat)};
}

void IterativeDatasetUpdate::save(Checkpoint& into) const {
  into.tensors["idu.images"] = images_;
  into.extra["idu.collected"] = std::to_string(collected_);
}

void IterativeDatasetUpdate::restore(const Checkpoint& from, const std::string& path) {
  const auto it = from.tensors.find("idu.images");
  const auto count = from.extra.find("idu.collected");
  require(it != from.tensors.end() && count != from.extra.end(),
          path + ": incompatible checkpoint: no iterative-dataset-update views (idu.*)");
  require(it->second.sizes() == images_.sizes(),
          path + ": incompatible checkpoint: idu.images has shape " + std::to_string(it->second.size(0)) +
              " views of " + std::to_string(it->second.size(1)) + "², this run " +
              std::to_string(images_.size(0)) + " of " + std::to_string(images_.size(1)) + "²");
  int collected = -1;
  try {
    collected = std::stoi(count->second);
  } catch (const std::exception&) {
  }
  require(collected >= 0 && collected <= config_.views,
          path + ": incompatible checkpoint: bad idu.collected");
  images_.copy_(it->second);
  collected_ = collected;
}

}  // namespace nd
