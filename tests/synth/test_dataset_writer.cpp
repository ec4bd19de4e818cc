#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/threads.h"
#include "io/image_io.h"
#include "synth/dataset_writer.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

fs::path temp_root(const std::string& name) {
  auto p = fs::temp_directory_path() / ("nd_synth_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}

SynthDatasetOptions tiny() {
  SynthDatasetOptions o;
  o.n_train = 3;
  o.n_test = 2;
  o.width = 24;
  o.height = 20;
  o.seed = 5;
  o.supersample = 2;
  return o;
}

TEST(DatasetWriter, WritesParseableTransformsAndImages) {
  set_threads(0);
  const auto root = temp_root("write");
  const auto dir = root / "ds";
  const auto opt = tiny();
  write_synth_dataset("A Red Cone On Top Of A Blue Cube", dir.string(), opt);
  EXPECT_EQ(read_file((dir / "caption.txt").string()), "a red cone on top of a blue cube\n");
  EXPECT_FALSE(fs::exists(dir.string() + ".tmp-" + std::to_string(::getpid())));
  const SynthObject object = parse_caption("a red cone on top of a blue cube").object;
  for (const auto& [split, n, seed] :
       {std::tuple<std::string, int, uint64_t>{"train", 3, 5}, {"test", 2, 5 ^ kSynthTestSeedMix}}) {
    const auto j = nlohmann::json::parse(read_file((dir / ("transforms_" + split + ".json")).string()));
    EXPECT_EQ(j["w"], 24);
    EXPECT_EQ(j["h"], 20);
    EXPECT_EQ(j["aabb_scale"], 1);
    EXPECT_DOUBLE_EQ(j["scale"].get<double>(), 0.5);
    EXPECT_EQ(j["offset"], nlohmann::json({0.5, 0.5, 0.5}));
    const double fl_y = j["fl_y"].get<double>();
    EXPECT_NEAR(2 * std::atan(10.0 / fl_y) * 180 / M_PI, 40.0, 1e-9);  // vertical fov
    EXPECT_NEAR(j["camera_angle_x"].get<double>(), 2 * std::atan(12.0 / j["fl_x"].get<double>()), 1e-12);
    EXPECT_DOUBLE_EQ(j["cx"].get<double>(), 12.0);
    ASSERT_EQ(j["frames"].size(), size_t(n));
    const auto cams = sample_dataset_cameras(opt, n, seed);
    for (int i = 0; i < n; ++i) {
      const auto& fr = j["frames"][i];
      const std::string rel = fr["file_path"];
      EXPECT_EQ(rel, split + "/r_00" + std::to_string(i) + ".png");
      // The matrix is the orbit camera at the frame's elevation and azimuth.
      const auto cam = orbit_camera(3.2, fr["elevation"], fr["azimuth"], 40, 24, 20);
      for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) {
          EXPECT_NEAR(fr["transform_matrix"][r][c].get<double>(), cam.c2w[4 * r + c], 1e-9);
          EXPECT_NEAR(cams[i].c2w[4 * r + c], cam.c2w[4 * r + c], 1e-9);
        }
      EXPECT_EQ(fr["view"], view_word(fr["elevation"], fr["azimuth"]));
      // The RGBA PNG composited on white reproduces the render.
      const auto rgba = load_image((dir / rel).string());
      ASSERT_EQ(rgba.sizes(), (at::IntArrayRef{20, 24, 4}));
      SynthRenderOptions ro;
      ro.supersample = 2;
      const auto ref = render_synth(object, cams[i], ro);
      auto f = rgba.to(at::kFloat) / 255.0f;
      auto a = f.slice(2, 3, 4);
      auto composite = a * f.slice(2, 0, 3) + (1 - a);
      EXPECT_LT((composite - ref.rgb).abs().max().item<float>(), 1.5f / 255.0f);
      EXPECT_LT((a.squeeze(-1) - ref.alpha).abs().max().item<float>(), 0.5f / 255.0f + 1e-6f);
      EXPECT_GT(ref.alpha.sum().item<float>(), 10.f);
    }
  }
  fs::remove_all(root);
}

TEST(DatasetWriter, DeterministicForASeedAndRefusesNonEmptyDir) {
  set_threads(0);
  const auto root = temp_root("determinism");
  auto opt = tiny();
  opt.n_train = 2;
  opt.n_test = 1;
  write_synth_dataset("a chair", (root / "a").string(), opt);
  write_synth_dataset("a chair", (root / "b").string(), opt);
  for (const char* f : {"transforms_train.json", "transforms_test.json", "train/r_000.png", "train/r_001.png",
                        "test/r_000.png"})
    EXPECT_EQ(read_file((root / "a" / f).string()), read_file((root / "b" / f).string())) << f;
  opt.seed = 6;
  write_synth_dataset("a chair", (root / "c").string(), opt);
  EXPECT_NE(read_file((root / "a/transforms_train.json").string()),
            read_file((root / "c/transforms_train.json").string()));

  // A non-empty directory is refused (and left alone); overwrite replaces it; an empty one is fine.
  try {
    write_synth_dataset("a chair", (root / "a").string(), opt);
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not empty"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file((root / "a/transforms_train.json").string()),
            read_file((root / "b/transforms_train.json").string()));
  opt.overwrite = true;
  write_synth_dataset("a chair", (root / "a").string(), opt);
  EXPECT_EQ(read_file((root / "a/transforms_train.json").string()),
            read_file((root / "c/transforms_train.json").string()));
  fs::create_directories(root / "empty");
  opt.overwrite = false;
  write_synth_dataset("a tree", (root / "empty").string(), opt);
  EXPECT_TRUE(fs::exists(root / "empty/caption.txt"));
  EXPECT_THROW(write_synth_dataset("a tree, front view", (root / "d").string(), opt), InputError);
  EXPECT_THROW(write_synth_dataset("a teapot", (root / "d").string(), opt), InputError);
  EXPECT_FALSE(fs::exists(root / "d"));
  for (const auto& e : fs::directory_iterator(root))  // no temporary directories left behind
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  fs::remove_all(root);
}

TEST(DatasetWriter, CameraDistribution) {
  SynthDatasetOptions opt;
  const int n = 4000;
  const auto cams = sample_dataset_cameras(opt, n, 123);
  double sum_sin = 0, sum_az = 0;
  for (const auto& c : cams) {
    const auto ea = camera_elevation_azimuth(c);
    EXPECT_GE(ea[0], -10 - 1e-9);
    EXPECT_LE(ea[0], 80 + 1e-9);
    const auto p = c.position();
    EXPECT_NEAR(std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]), 3.2, 1e-9);
    sum_sin += std::sin(ea[0] * M_PI / 180);
    sum_az += ea[1];
  }
  // Uniform in area: sin e is uniform on [sin(-10°), sin(80°)].
  const double expected = 0.5 * (std::sin(-10 * M_PI / 180) + std::sin(80 * M_PI / 180));
  EXPECT_NEAR(sum_sin / n, expected, 0.02);
  EXPECT_NEAR(sum_az / n, 0.0, 5.0);
  const auto again = sample_dataset_cameras(opt, 3, 123);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(again[i].c2w, cams[i].c2w);
}

}  // namespace
}  // namespace nd
