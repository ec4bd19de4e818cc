// Synth datasets on disk: exact renders of one caption's object from random orbit cameras, in the
// Instant-NGP / NeRF-Blender layout:
//   <out_dir>/transforms_train.json, transforms_test.json, train/r_000.png…, test/r_000.png…, caption.txt
// Each json has camera_angle_x (horizontal fov, radians), w, h, fl_x, fl_y, cx, cy, aabb_scale = 1,
// scale = 0.5 and offset = [0.5, 0.5, 0.5] (so Instant-NGP's unit cube is exactly our [-1,1]^3), and
// frames[] with file_path (relative to the json), transform_matrix (4×4 camera-to-world, OpenGL axes, as
// nd::orbit_camera gives) and the extras elevation, azimuth (degrees) and view (the spec's view word).
// Images are 8-bit RGBA PNGs with straight alpha: rgb is the object's shaded color where alpha > 0 (white
// elsewhere) and alpha the pixel coverage, so compositing on white reproduces render_synth's rgb.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "camera/camera.h"
#include "synth/synth_renderer.h"

namespace nd {

struct SynthDatasetOptions {
  int n_train = 100, n_test = 20, width = 128, height = 128;
  double radius = 3.2, fov_deg = 40;               // orbit radius; vertical field of view
  double elevation_min = -10, elevation_max = 80;  // degrees
  uint64_t seed = 0;  // train cameras use seed, test cameras seed ^ kSynthTestSeedMix
  int supersample = 1;
  SynthLight light;        // fixed default: from above-front-right, ambient 0.3
  bool overwrite = false;  // replace an existing non-empty out_dir instead of refusing
};

constexpr uint64_t kSynthTestSeedMix = 0x9E3779B97F4A7C15ULL;

// n orbit cameras at options.radius looking at the origin: azimuth uniform in [-180, 180), elevation
// uniform in area (sin e uniform) between elevation_min and elevation_max. Deterministic for a seed
// (std::mt19937_64, doubles from its top 53 bits: no implementation-defined distributions).
std::vector<Camera> sample_dataset_cameras(const SynthDatasetOptions& options, int n, uint64_t seed);

// Elevation and azimuth (degrees) of an orbit camera's position (a in (-180, 180]).
std::array<double, 2> camera_elevation_azimuth(const Camera& camera);

// Renders and writes the dataset of `caption` (a caption of the grammar, no view suffix). Atomic: writes
// "<out_dir>.tmp-<pid>" and renames it onto out_dir at the end. Throws InputError for a bad caption or
// option, or when out_dir exists and is not empty (unless options.overwrite).
void write_synth_dataset(const std::string& caption, const std::string& out_dir,
                         const SynthDatasetOptions& options = {});

}  // namespace nd
