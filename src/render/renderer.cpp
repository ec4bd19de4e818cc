#include "render/renderer.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/config_json.h"

namespace nd {

namespace {

// One list of keys for both JSON directions (core/config_json.h).
template <class IO, class C>
void visit(IO& io, C& c) {
  io.get("max_steps", c.march.max_steps);
  io.get("max_samples_per_ray", c.march.max_samples_per_ray);
  io.get("cone_angle", c.march.cone_angle);
  io.get("min_near", c.march.min_near);
  io.get("use_occupancy_grid", c.use_occupancy_grid);
  io.get("grid_resolution", c.grid_resolution);
  io.get("grid_update_every", c.grid_update_every);
  io.get("grid_warmup_steps", c.grid_warmup_steps);
  io.get("grid_decay", c.grid_decay);
  io.get("normal_eps", c.normal_eps);
}

}  // namespace

nlohmann::json to_json(const RenderConfig& c) {
  ConfigWriter w;
  visit(w, c);
  return w.json();
}

RenderConfig render_config_from_json(const nlohmann::json& j) {
  RenderConfig c;
  ConfigReader r(j, "render");
  visit(r, c);
  r.finish();
  require(c.march.max_steps >= 1, "render.max_steps: must be >= 1");
  require(c.march.max_samples_per_ray >= 1, "render.max_samples_per_ray: must be >= 1");
  require(c.march.cone_angle >= 0, "render.cone_angle: must be >= 0");
  require(c.grid_resolution >= 8 && c.grid_resolution <= 512, "render.grid_resolution: must be in 8..512");
  require(c.grid_update_every >= 1, "render.grid_update_every: must be >= 1");
  require(c.grid_warmup_steps >= 0, "render.grid_warmup_steps: must be >= 0");
  require(c.grid_decay > 0 && c.grid_decay <= 1, "render.grid_decay: must be in (0, 1]");
  require(c.normal_eps > 0, "render.normal_eps: must be > 0");
  return c;
}

VolumeRenderer::VolumeRenderer(const RenderConfig& config, double bound)
    : config_(config), bound_(bound), grid_(config.grid_resolution, bound) {
  grid_.set_warmup_steps(config.grid_warmup_steps);
}

RenderResult VolumeRenderer::render_rays(NerfFieldImpl& field, const Rays& rays, const at::Tensor& background,
                                         const ShadingParams& shading, std::mt19937_64* rng) {
  MarchOptions march = config_.march;
  march.jitter = rng != nullptr;
  RenderResult out;
  out.samples =
      march_rays(rays.origins, rays.dirs, bound_, config_.use_occupancy_grid ? &grid_ : nullptr, march, rng);
  const auto& s = out.samples;
  // Shaded color and density of every sample. Without gradients (rendering images), the field runs on
  // slices of samples so that memory stays bounded however many samples the rays carry.
  at::Tensor normals;
  auto shade_samples = [&](const at::Tensor& positions,
                           const at::Tensor& dirs) -> std::pair<at::Tensor, at::Tensor> {
    FieldOutput f = field.forward(positions, dirs);
    at::Tensor color = f.rgb;
    if (shading_needs_normals(shading.mode)) {
      normals = field.normals(positions, config_.normal_eps);
      color = shade(f.rgb, normals, shading, dirs);
    }
    return {f.sigma, color};
  };
  at::Tensor sigma, color;
  const int64_t n_samples = s.positions.size(0);
  constexpr int64_t kInferenceSlice = 1 << 18;
  if (at::GradMode::is_enabled() || n_samples <= kInferenceSlice) {
    std::tie(sigma, color) = shade_samples(s.positions, s.dirs);
    out.normals = normals;
  } else {
    std::vector<at::Tensor> sigmas, colors;
    for (int64_t a = 0; a < n_samples; a += kInferenceSlice) {
      const int64_t b = std::min(n_samples, a + kInferenceSlice);
      auto [sg, cl] = shade_samples(s.positions.slice(0, a, b), s.dirs.slice(0, a, b));
      sigmas.push_back(sg);
      colors.push_back(cl);
    }
    sigma = at::cat(sigmas);
    color = at::cat(colors);
  }
  CompositeResult c = composite(sigma, color, s.deltas, s.ts, s.ray_offsets, s.ray_counts);
  auto bg = background.dim() == 1 ? background.view({1, 3}) : background;
  out.rgb = c.rgb + (1 - c.opacity).unsqueeze(1) * bg;
  out.depth = c.depth;
  out.opacity = c.opacity;
  out.weights = c.weights;
  return out;
}

RenderedImage VolumeRenderer::render_image(NerfFieldImpl& field, const Camera& camera,
                                           const at::Tensor& background, const ShadingParams& shading,
                                           int64_t chunk) {
  torch::NoGradGuard no_grad;
  const int w = camera.intrinsics.width, h = camera.intrinsics.height;
  Rays all = camera_rays_all(camera);
  const int64_t n = all.origins.size(0);
  std::vector<at::Tensor> rgb, depth, opacity;
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t end = std::min(n, start + chunk);
    Rays part{all.origins.slice(0, start, end), all.dirs.slice(0, start, end)};
    auto bg = background.dim() == 1 ? background : background.slice(0, start, end);
    RenderResult r = render_rays(field, part, bg, shading, nullptr);
    rgb.push_back(r.rgb);
    depth.push_back(r.depth);
    opacity.push_back(r.opacity);
  }
  return {at::cat(rgb).view({h, w, 3}), at::cat(depth).view({h, w}), at::cat(opacity).view({h, w})};
}

void VolumeRenderer::update_occupancy(NerfFieldImpl& field, int64_t step, std::mt19937_64& rng) {
  if (!config_.use_occupancy_grid) return;
  // A cell is worth sampling when one marching step through it has optical thickness > 0.01.
  const double min_step = 2.0 * std::sqrt(3.0) * bound_ / config_.march.max_steps;
  grid_.update([&](const at::Tensor& p) { return field.density(p); }, step, rng, config_.grid_decay, 0.01,
               min_step);
}

}  // namespace nd
