// Everything a `nerfdream fit` run is made of, resolved from defaults, an optional JSON file and flags.
// The resolved config is written next to every output and into every checkpoint (format_version).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "field/nerf_field.h"
#include "render/renderer.h"

namespace nd {

constexpr int kFitConfigVersion = 1;

struct DataConfig {
  std::string path;   // a transforms.json dataset (directory or file), or empty with `synth`
  std::string synth;  // a synth-world caption rendered into <out>/data instead
  int synth_train_views = 100;
  int synth_test_views = 20;
  int synth_resolution = 128;
  int downscale = 1;
  int holdout_every = 8;                // for single-file datasets: every Nth frame is a test frame
  std::string background = "random";    // training background for RGBA images: random | white | black
  std::string pixel_sampling = "auto";  // center | jitter | auto (center for synth, jitter for photos)
};

struct OptimConfig {
  int64_t steps = 5000;
  double seconds = 0;  // wall-clock budget for training (0 = none); training stops at whichever comes first
  int batch_rays = 4096;         // the most rays per step
  int target_samples = 1 << 16;  // Instant-NGP's adaptive batch: rays per step = target / samples per ray
                                 // (at most batch_rays); 0 = always batch_rays
  double lr_grid = 3e-2;  // Instant-NGP uses 1e-2 for 35k GPU steps; a one-minute CPU fit gains from more
  double lr_mlp = 1e-2;
  double lr_final_ratio = 0.1;  // exponential decay of both rates to this fraction at the end
  double beta1 = 0.9, beta2 = 0.99, eps = 1e-15;
};

struct FitConfig {
  int format_version = kFitConfigVersion;
  DataConfig data;
  FieldConfig field;
  RenderConfig render;
  OptimConfig optim;
  uint64_t seed = 0;
  int checkpoint_every = 0;  // steps between checkpoints (0 = only at the end)
  int eval_views = 0;        // test views evaluated at the end (0 = all)
  // Lower the hash grid's finest resolution to what the training pixels can teach: a grid much finer
  // than the pixels' footprint only learns noise in a short fit (see match_grid_to_pixels in fit.cpp).
  bool match_grid_to_pixels = true;
};

nlohmann::json to_json(const FitConfig& c);
// Strict: unknown keys, wrong types and out-of-range values are an InputError naming the key.
FitConfig fit_config_from_json(const nlohmann::json& j);
// Checks value ranges (also after flags changed fields).
void validate(const FitConfig& c);

}  // namespace nd
