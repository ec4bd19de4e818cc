// One text-to-3D optimisation (DreamFusion's loop on the tiny prior): a NeRF field, its renderer and
// occupancy grid, the SDS guidance, Adam and the random generators.
//
// Each step(): sample views from the prior's camera range, a light around the camera and a shading mode
// (albedo during the warm-up; then lambertian with p, textureless for a fraction of the shaded steps),
// render the views at the prior's resolution on white, score them with SDS under the view-dependent prompt
// ("<prompt>, <front|side|back|overhead> view", the spec's rule) and the camera, add the regularisers
// (opacity sparsity, opacity entropy, orientation), backward, Adam.
#pragma once
#include <ATen/ATen.h>

#include <random>
#include <string>
#include <vector>

#include "field/nerf_field.h"
#include "guidance/sds.h"
#include "io/checkpoint.h"
#include "optim/adam.h"
#include "pipeline/generate_config.h"
#include "prior/tiny_prior.h"
#include "render/renderer.h"

namespace nd {

struct TextTo3DStep {
  double loss = 0;  // total
  double sds = 0, opacity = 0, entropy = 0, orientation = 0;
  double samples_per_ray = 0;
  double mean_opacity = 0;
  Shading shading = Shading::Albedo;
};

// The prompt with the view word of a camera: unchanged when it already names a view.
std::string view_dependent_prompt(const std::string& prompt, double elevation, double azimuth);

class TextTo3D {
 public:
  // Validates the prompt against the prior's vocabulary (InputError listing it).
  TextTo3D(const GenerateConfig& config, TinyPrior& prior);

  TextTo3DStep step();
  int64_t steps_done() const { return step_; }

  NerfFieldImpl& field() { return *field_; }
  VolumeRenderer& renderer() { return renderer_; }
  const GenerateConfig& config() const { return config_; }

  // An image of the current field from a view: [H,W,3] in [0,1], on white.
  at::Tensor render_view(const View& view, int resolution, const ShadingParams& shading);
  // The prior's light for a view: from around the camera (deterministic for a seed).
  ShadingParams light_for(const View& view, Shading mode, std::mt19937_64& rng) const;

  Checkpoint checkpoint() const;
  void restore(const Checkpoint& ckpt, const std::string& path);  // InputError naming path on mismatch

 private:
  GenerateConfig config_;
  TinyPrior& prior_;
  SDSGuidance guidance_;
  NerfField field_{nullptr};
  VolumeRenderer renderer_;
  std::unique_ptr<FusedAdam> adam_;
  std::mt19937_64 rng_;
  at::Generator gen_;
  int64_t step_ = 0;
};

}  // namespace nd
