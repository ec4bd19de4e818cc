// One text-to-3D optimisation: a NeRF field, its renderer and occupancy grid, a diffusion model behind the
// DiffusionGuide interface (the tiny prior, or Stable Diffusion in latent space), Adam and the random
// generators. Two methods:
//
// sds (DreamFusion) — each step(): sample views from the model's camera range, a light around the camera
// and a shading mode (albedo during the warm-up; then lambertian with p, textureless for a fraction of the
// shaded steps), render the views on white, score them with SDS under the view-dependent prompt
// ("<prompt>, <front|side|back|overhead> view", the spec's rule) and the camera, add the regularisers
// (opacity sparsity, opacity entropy, orientation), backward, Adam.
//
// idu (iterative dataset update, guidance/iterative_dataset_update.h) — when the schedule says so, sample
// or SDEdit the next orbit view with the model and add it to the collection; each step() fits random
// pixels of the collection (photometric loss + the opacity regularisers).
#pragma once
#include <ATen/ATen.h>

#include <random>
#include <string>
#include <vector>

#include "field/nerf_field.h"
#include "guidance/diffusion_guide.h"
#include "guidance/iterative_dataset_update.h"
#include "guidance/sds.h"
#include "io/checkpoint.h"
#include "optim/adam.h"
#include "pipeline/generate_config.h"
#include "render/renderer.h"

namespace nd {

struct TextTo3DStep {
  double loss = 0;  // total
  double sds = 0, opacity = 0, entropy = 0, orientation = 0;
  double photometric = 0;  // idu: mean squared error against the collected views
  double samples_per_ray = 0;
  double mean_opacity = 0;
  Shading shading = Shading::Albedo;
};

// The prompt with the view word of a camera: unchanged when it already names a view.
std::string view_dependent_prompt(const std::string& prompt, double elevation, double azimuth);

class TextTo3D {
 public:
  // Validates the prompt against the model (the tiny prior's InputError lists its vocabulary).
  TextTo3D(const GenerateConfig& config, DiffusionGuide& guide);

  TextTo3DStep step();
  int64_t steps_done() const { return step_; }

  NerfFieldImpl& field() { return *field_; }
  VolumeRenderer& renderer() { return renderer_; }
  const GenerateConfig& config() const { return config_; }                     // render_resolution resolved
  const IterativeDatasetUpdate* dataset_update() const { return idu_.get(); }  // idu only

  // An image of the current field from a view: [H,W,3] in [0,1], on white.
  at::Tensor render_view(const View& view, int resolution, const ShadingParams& shading);
  ShadingParams idu_shading() const;  // how idu renders the NeRF to compare it with its views
  // The prior's light for a view: from around the camera (deterministic for a seed).
  ShadingParams light_for(const View& view, Shading mode, std::mt19937_64& rng) const;

  Checkpoint checkpoint() const;
  void restore(const Checkpoint& ckpt, const std::string& path);  // InputError naming path on mismatch

 private:
  TextTo3DStep sds_step();
  TextTo3DStep idu_step();
  void update_dataset(const IterativeDatasetUpdate::Due& due);
  // Adds the weighted regularisers of a render to loss and stats.
  at::Tensor regularize(const RenderResult& out, int64_t rays, at::Tensor loss, TextTo3DStep& stats) const;

  GenerateConfig config_;
  DiffusionGuide& guide_;
  SDSGuidance guidance_;
  std::unique_ptr<IterativeDatasetUpdate> idu_;
  NerfField field_{nullptr};
  VolumeRenderer renderer_;
  std::unique_ptr<FusedAdam> adam_;
  std::mt19937_64 rng_;
  at::Generator gen_;
  int64_t step_ = 0;
};

}  // namespace nd
