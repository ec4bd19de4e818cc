// The volume renderer: rays → (occupancy-grid ray marching) → samples → field → shading → compositing.
//
//   rays [R] ──march_rays──▶ packed samples [S] ──field──▶ σ [S], albedo [S,3] ──shade──▶ c [S,3]
//        ──composite──▶ rgb [R,3], depth [R], opacity [R] ──+ (1 − opacity)·background──▶ image
#pragma once
#include <ATen/ATen.h>

#include <nlohmann/json.hpp>
#include <random>

#include "camera/camera.h"
#include "field/nerf_field.h"
#include "render/composite.h"
#include "render/occupancy_grid.h"
#include "render/ray_marcher.h"
#include "render/shading.h"

namespace nd {

struct RenderConfig {
  MarchOptions march;              // step size, samples per ray, cone angle
  bool use_occupancy_grid = true;  // skip empty space (false: sample the whole box, for tests and debugging)
  int grid_resolution = 128;
  int grid_update_every = 16;  // steps between occupancy-grid updates while training
  int grid_warmup_steps = 64;  // updates before this step evaluate every cell (Instant-NGP: 256; a full
                               // sweep of 128³ cells costs ~1 s on 2 cores, so fewer here)
  double grid_decay = 0.95;
  double normal_eps = 1e-2;  // finite-difference step for normals
};
nlohmann::json to_json(const RenderConfig& c);
RenderConfig render_config_from_json(const nlohmann::json& j);  // strict

struct RenderResult {
  at::Tensor rgb;      // [R,3] composited over the background
  at::Tensor depth;    // [R] expected distance along the ray (Σ w t)
  at::Tensor opacity;  // [R] Σ w
  at::Tensor weights;  // [S]
  at::Tensor normals;  // [S,3] outward unit normals, when the shading mode needed them (else undefined)
  RaySamples samples;
};

struct RenderedImage {
  at::Tensor rgb;      // [H,W,3]
  at::Tensor depth;    // [H,W]
  at::Tensor opacity;  // [H,W]
};

class VolumeRenderer {
 public:
  VolumeRenderer(const RenderConfig& config, double bound);

  // rays: origins/dirs [R,3]; background: [R,3] or [3] colors; rng: jitter the samples (training) when set.
  // Differentiable w.r.t. the field's parameters.
  RenderResult render_rays(NerfFieldImpl& field, const Rays& rays, const at::Tensor& background,
                           const ShadingParams& shading, std::mt19937_64* rng);

  // A whole image, in chunks of rays, without gradients.
  RenderedImage render_image(NerfFieldImpl& field, const Camera& camera, const at::Tensor& background,
                             const ShadingParams& shading, int64_t chunk = 1 << 15);

  // Refreshes the occupancy grid from the field's density (call every grid_update_every training steps).
  void update_occupancy(NerfFieldImpl& field, int64_t step, std::mt19937_64& rng);

  OccupancyGrid& grid() { return grid_; }
  const OccupancyGrid& grid_const() const { return grid_; }
  const RenderConfig& config() const { return config_; }

 private:
  RenderConfig config_;
  double bound_;
  OccupancyGrid grid_;
};

}  // namespace nd
