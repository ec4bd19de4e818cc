#include "synth/dataset_writer.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/image_io.h"
#include "synth/caption.h"

namespace nd {

namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;

// Uniform double in [0, 1) from the generator's top 53 bits (portable, unlike
// std::uniform_real_distribution).
double uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * (1.0 / 9007199254740992.0); }

void validate(const SynthDatasetOptions& o) {
  require(o.n_train >= 1, "synth dataset: n_train must be >= 1");
  require(o.n_test >= 0, "synth dataset: n_test must be >= 0");
  require(o.width >= 1 && o.height >= 1, "synth dataset: width and height must be >= 1");
  require(o.radius > 1.0, "synth dataset: radius must be > 1 (the camera must be outside the object)");
  require(o.fov_deg > 0 && o.fov_deg < 180, "synth dataset: fov_deg must be in (0, 180)");
  require(o.elevation_min >= -90 && o.elevation_max <= 90 && o.elevation_min <= o.elevation_max,
          "synth dataset: need -90 <= elevation_min <= elevation_max <= 90");
  require(o.supersample >= 1 && o.supersample <= 16, "synth dataset: supersample must be in [1, 16]");
}

// uint8 [H,W,4] straight-alpha RGBA of a render.
at::Tensor to_rgba8(const SynthImage& img) {
  auto rgba = at::cat({straight_rgb(img), img.alpha.unsqueeze(-1)}, -1);
  return (rgba * 255.0f).round().clamp(0, 255).to(at::kByte).contiguous();
}

std::string frame_name(int i, int n) {
  int digits = 3;
  for (int m = n - 1; m >= 1000; m /= 10) ++digits;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "r_%0*d.png", digits, i);
  return buf;
}

nlohmann::json split_json(const SynthObject& object, const std::vector<Camera>& cameras,
                          const std::string& split, const std::string& dir,
                          const SynthDatasetOptions& options) {
  const Intrinsics k = cameras.empty() ? pinhole_intrinsics(options.width, options.height, options.fov_deg)
                                       : cameras.front().intrinsics;
  nlohmann::json j;
  j["camera_angle_x"] = 2.0 * std::atan(0.5 * k.width / k.fx);
  j["w"] = k.width;
  j["h"] = k.height;
  j["fl_x"] = k.fx;
  j["fl_y"] = k.fy;
  j["cx"] = k.cx;
  j["cy"] = k.cy;
  j["aabb_scale"] = 1;
  j["scale"] = 0.5;
  j["offset"] = {0.5, 0.5, 0.5};
  j["frames"] = nlohmann::json::array();
  SynthRenderOptions render_options;
  render_options.light = options.light;
  render_options.supersample = options.supersample;
  fs::create_directories(fs::path(dir) / split);
  for (size_t i = 0; i < cameras.size(); ++i) {
    const std::string rel = split + "/" + frame_name(int(i), int(cameras.size()));
    save_png((fs::path(dir) / rel).string(), to_rgba8(render_synth(object, cameras[i], render_options)));
    nlohmann::json m = nlohmann::json::array();
    for (int r = 0; r < 4; ++r)
      m.push_back({cameras[i].c2w[4 * r], cameras[i].c2w[4 * r + 1], cameras[i].c2w[4 * r + 2],
                   cameras[i].c2w[4 * r + 3]});
    const auto ea = camera_elevation_azimuth(cameras[i]);
    j["frames"].push_back({{"file_path", rel},
                           {"transform_matrix", m},
                           {"elevation", ea[0]},
                           {"azimuth", ea[1]},
                           {"view", view_word(ea[0], ea[1])}});
  }
  return j;
}

}  // namespace

std::vector<Camera> sample_dataset_cameras(const SynthDatasetOptions& options, int n, uint64_t seed) {
  validate(options);
  std::mt19937_64 rng(seed);
  const double s0 = std::sin(options.elevation_min * kPi / 180),
               s1 = std::sin(options.elevation_max * kPi / 180);
  std::vector<Camera> cameras;
  cameras.reserve(std::max(n, 0));
  for (int i = 0; i < n; ++i) {
    const double azimuth = -180.0 + 360.0 * uniform01(rng);
    const double elevation = std::asin(s0 + (s1 - s0) * uniform01(rng)) * 180 / kPi;
    cameras.push_back(
        orbit_camera(options.radius, elevation, azimuth, options.fov_deg, options.width, options.height));
  }
  return cameras;
}

std::array<double, 2> camera_elevation_azimuth(const Camera& camera) {
  const auto p = camera.position();
  const double r = std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
  if (r == 0) return {0, 0};
  return {std::asin(std::clamp(p[1] / r, -1.0, 1.0)) * 180 / kPi, std::atan2(p[0], p[2]) * 180 / kPi};
}

void write_synth_dataset(const std::string& caption, const std::string& out_dir,
                         const SynthDatasetOptions& options) {
  validate(options);
  require(!out_dir.empty(), "synth dataset: empty output directory");
  const ParsedCaption parsed = parse_caption(caption);
  require(
      parsed.view.empty(),
      "caption \"" + caption + "\": a dataset caption takes no view suffix (each frame records its view)");
  fs::path target = fs::path(out_dir);
  if (!target.has_filename()) target = target.parent_path();  // "out/" → "out"
  std::error_code ec;
  const bool exists = fs::exists(target, ec);
  if (exists) {
    require(fs::is_directory(target), out_dir + ": exists and is not a directory");
    require(options.overwrite || fs::is_empty(target),
            out_dir + ": directory is not empty (choose another output directory or allow overwriting)");
  }

  const fs::path tmp = target.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp, ec);
  try {
    fs::create_directories(tmp);
    const auto train = sample_dataset_cameras(options, options.n_train, options.seed);
    const auto test = sample_dataset_cameras(options, options.n_test, options.seed ^ kSynthTestSeedMix);
    const std::string dir = tmp.string();
    write_file_atomically((tmp / "transforms_train.json").string(),
                          split_json(parsed.object, train, "train", dir, options).dump(2) + "\n");
    write_file_atomically((tmp / "transforms_test.json").string(),
                          split_json(parsed.object, test, "test", dir, options).dump(2) + "\n");
    write_file_atomically((tmp / "caption.txt").string(), parsed.object.caption + "\n");
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }

  // Swap the finished directory in; an old one (overwrite, or an empty one) is moved aside first.
  const fs::path old = target.string() + ".old-" + std::to_string(::getpid());
  if (exists) {
    fs::rename(target, old, ec);
    if (ec) {
      fs::remove_all(tmp, ec);
      throw InputError("cannot replace " + out_dir + ": " + ec.message());
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    const std::string why = ec.message();
    if (exists) fs::rename(old, target, ec);
    fs::remove_all(tmp, ec);
    throw InputError("cannot write " + out_dir + ": " + why);
  }
  if (exists) fs::remove_all(old, ec);
}

}  // namespace nd
