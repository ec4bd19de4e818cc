// Everything a `nerfdream generate` run is made of (text → NeRF → mesh), resolved from defaults, an
// optional JSON file and flags; written as config.json next to the outputs and into every checkpoint.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "field/nerf_field.h"
#include "guidance/iterative_dataset_update.h"
#include "guidance/sds.h"
#include "render/renderer.h"

namespace nd {

constexpr int kGenerateConfigVersion = 1;

struct ShadingSchedule {
  int64_t albedo_warmup_steps = 100;     // albedo only at first (DreamFusion), so color settles before shape
  double lambertian_probability = 0.75;  // after warm-up: lambertian (else albedo)...
  double textureless_probability = 0.5;  // ...and of the shaded steps, this fraction textureless
  double ambient_min = 0.15, ambient_max = 0.45;  // ambient ratio, as in the prior's training data
};

struct RegularizerConfig {
  double opacity = 1e-3;      // Σ_rays √(opacity² + 0.01) / rays: DreamFusion's sparsity
  double entropy = 1e-3;      // binary entropy of the opacity: pushes pixels to empty or solid
  double orientation = 1e-2;  // Σ w · max(0, n·d)²: normals must not face away from the camera
};

struct GenerateOptimConfig {
  int64_t steps = 1200;
  double lr_grid = 1e-2;  // the hash grid ~10× the MLPs (stable-dreamfusion / threestudio anchors)
  double lr_mlp = 1e-3;
  double beta1 = 0.9, beta2 = 0.99, eps = 1e-15;
};

struct MeshConfig {
  int resolution = 256;  // marching-cubes grid over [-bound, bound]^3
  // Isosurface of σ. Objects here are about one unit across: a ray through 0.35 units at σ = 2 is already
  // half opaque, so σ ≈ 2 is where renders show the surface. A distilled field's edge is a soft ramp,
  // and at stable-dreamfusion's 10 the mesh kept only the core (measured on the idu cube: 57 % of the
  // true volume at 10, 73 % at 2, while its renders were the right size).
  double density_threshold = 2;
  double keep_component_fraction = 0.05;  // drop pieces smaller than this fraction of the largest
  double simplify_ratio = 1.0;            // < 1: keep this fraction of the triangles (meshoptimizer)
  bool fill_cavities = true;              // fill enclosed empty space first: no invisible inner surfaces
  int64_t max_triangles = 200000;         // > 0: simplify further to at most about this many (0: no cap)
};

struct GenerateConfig {
  int format_version = kGenerateConfigVersion;
  std::string prompt;
  std::string model;            // "": the tiny prior; else a Stable Diffusion checkpoint (latent SDS)
  std::string negative_prompt;  // Stable Diffusion's unconditional branch ("" as diffusers)
  // sds (score distillation, DreamFusion; the default: with the shipped prior, mean synth IoU 0.75 against
  // 0.67 for idu, same color error) | idu (iterative dataset update)
  std::string method = "sds";
  int render_resolution = 0;  // views' size; 0: the model's (32 for the tiny prior, 64 for SD)
  FieldConfig field;
  RenderConfig render;
  SDSConfig guidance;
  ShadingSchedule shading;
  RegularizerConfig regularizers;
  IDUConfig idu;  // --method idu
  GenerateOptimConfig optim;
  MeshConfig mesh;
  int views_per_step = 1;  // rendered views per SDS step (one batched prior call)
  uint64_t seed = 0;

  GenerateConfig();  // the tuned defaults (field and renderer sized for the prior's 32² views)
};

nlohmann::json to_json(const GenerateConfig& c);
// Strict: unknown keys, wrong types and out-of-range values are an InputError naming the key.
GenerateConfig generate_config_from_json(const nlohmann::json& j);
void validate(const GenerateConfig& c);

}  // namespace nd
