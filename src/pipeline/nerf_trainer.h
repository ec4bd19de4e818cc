// One NeRF being fitted to posed images: the field, its renderer and occupancy grid, the optimizer and
// the random generators. `step()` is one optimisation step on a batch of random pixels.
#pragma once
#include <ATen/ATen.h>

#include <random>

#include "camera/camera.h"
#include "data/transforms_dataset.h"
#include "field/nerf_field.h"
#include "io/checkpoint.h"
#include "optim/adam.h"
#include "pipeline/fit_config.h"
#include "render/renderer.h"

namespace nd {

class NerfTrainer {
 public:
  // train: the training views; bound: the scene box half-size (config.field.grid.bound is set to it);
  // jitter: random ray positions inside each pixel (else pixel centres).
  NerfTrainer(FitConfig config, const Dataset& train, double bound, bool jitter);

  // One step: sample rays, render, MSE against the pixels, backward, Adam. Returns the loss.
  // lr_scale multiplies both learning rates (the caller's schedule).
  double step(double lr_scale = 1.0);

  int64_t steps_done() const { return step_; }
  NerfFieldImpl& field() { return *field_; }
  VolumeRenderer& renderer() { return renderer_; }
  const FitConfig& config() const { return config_; }
  // Samples per ray in the last step (a measure of the occupancy grid's work).
  double last_samples_per_ray() const { return last_samples_per_ray_; }
  int64_t last_rays() const { return last_rays_; }

  Checkpoint checkpoint() const;
  // Restores parameters, grid, optimizer and generators; InputError (naming `path`) on any mismatch.
  void restore(const Checkpoint& ckpt, const std::string& path);

 private:
  FitConfig config_;
  const Dataset& train_;
  bool jitter_;
  bool has_alpha_;
  CameraBatch cameras_;
  at::Tensor pixels_flat_;  // [N·H·W, 4] uint8 view of the training images
  NerfField field_{nullptr};
  VolumeRenderer renderer_;
  std::unique_ptr<FusedAdam> adam_;
  std::mt19937_64 rng_;
  at::Generator gen_;
  int64_t step_ = 0;
  double last_samples_per_ray_ = 0;
  double samples_per_ray_ema_ = 0;  // drives the adaptive batch size
  int64_t last_rays_ = 0;
};

}  // namespace nd
