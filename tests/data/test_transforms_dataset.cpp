#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "camera/camera.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/threads.h"
#include "data/transforms_dataset.h"
#include "io/image_io.h"
#include "test_support.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr int kW = 8, kH = 6;

using nd::test::TempDir;

// A deterministic uint8 [h,w,c] image, different for each seed.
at::Tensor pattern(int seed, int c = 4, int h = kH, int w = kW) {
  auto img = at::empty({h, w, c}, at::kByte);
  auto a = img.accessor<uint8_t, 3>();
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) a[y][x][k] = uint8_t((seed * 37 + y * 13 + x * 7 + k * 50) % 256);
  return img;
}

// An orbit camera's pose, as a transform_matrix.
Json pose(double elevation, double azimuth, double radius = 4.0) {
  const auto m = orbit_camera(radius, elevation, azimuth, 40, kW, kH).c2w;
  Json rows = Json::array();
  for (int r = 0; r < 4; ++r) rows.push_back({m[r * 4], m[r * 4 + 1], m[r * 4 + 2], m[r * 4 + 3]});
  return rows;
}

std::array<double, 16> matrix_of(const Json& rows) {
  std::array<double, 16> m{};
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) m[r * 4 + c] = rows[r][c].get<double>();
  return m;
}

void write_json(const std::string& path, const Json& j) { write_file_atomically(path, j.dump(2)); }

void write_png(const std::string& path, const at::Tensor& img) {
  fs::create_directories(fs::path(path).parent_path());
  save_png(path, img);
}

// Runs fn, expects an InputError whose one-line message contains every one of `parts`.
template <class F>
void expect_input_error(F fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no InputError thrown";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

// A valid single-file dataset of n RGBA frames "images/f_<i>.png", fl_x = 7; returns its json for editing.
Json simple_dataset(const std::string& dir, int n = 2) {
  Json j = {{"fl_x", 7.0}, {"frames", Json::array()}};
  for (int i = 0; i < n; ++i) {
    const std::string name = "images/f_" + std::to_string(i) + ".png";
    write_png(dir + "/" + name, pattern(i));
    j["frames"].push_back({{"file_path", name}, {"transform_matrix", pose(10, 40.0 * i)}});
  }
  return j;
}

TEST(TransformsDataset, BlenderStyleSplitFiles) {
  set_threads(0);
  const TempDir tmp;
  const std::string& dir = tmp.path;
  const double angle_x = 0.6911112070083618;
  Json train = {{"camera_angle_x", angle_x}, {"frames", Json::array()}};
  Json test = train;
  for (int i = 0; i < 3; ++i) {
    write_png(dir + "/train/r_" + std::to_string(i) + ".png", pattern(i));
    train["frames"].push_back({{"file_path", "./train/r_" + std::to_string(i)},  // no extension
                               {"rotation", 0.012566},
                               {"transform_matrix", pose(20, 60.0 * i)}});
  }
  for (int i = 0; i < 2; ++i) {
    write_png(dir + "/test/r_" + std::to_string(i) + ".png", pattern(10 + i));
    test["frames"].push_back(
        {{"file_path", "./test/r_" + std::to_string(i)}, {"transform_matrix", pose(-5, 33.0 * i)}});
  }
  write_json(dir + "/transforms_train.json", train);
  write_json(dir + "/transforms_test.json", test);
  write_json(dir + "/transforms_val.json", test);  // ignored: test wins

  auto splits = load_transforms_dataset(dir);
  EXPECT_EQ(splits.bound, 1.0);
  EXPECT_NE(splits.source.find("transforms_train.json"), std::string::npos) << splits.source;
  EXPECT_NE(splits.source.find("transforms_test.json"), std::string::npos) << splits.source;
  ASSERT_EQ(splits.train.size(), 3);
  ASSERT_EQ(splits.test.size(), 2);
  EXPECT_EQ(splits.train.width, kW);
  EXPECT_EQ(splits.train.height, kH);
  EXPECT_EQ(splits.train.images.sizes(), (std::vector<int64_t>{3, kH, kW, 4}));
  EXPECT_EQ(splits.train.images.scalar_type(), at::kByte);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(splits.train.images[i].equal(pattern(i))) << i;
    EXPECT_EQ(fs::path(splits.train.files[i]).filename(), "r_" + std::to_string(i) + ".png");
    const auto& k = splits.train.cameras[i].intrinsics;
    EXPECT_EQ(k.width, kW);
    EXPECT_EQ(k.height, kH);
    EXPECT_NEAR(k.fx, 0.5 * kW / std::tan(0.5 * angle_x), 1e-9);
    EXPECT_NEAR(k.fy, k.fx, 1e-12);
    EXPECT_NEAR(k.cx, 4.0, 1e-12);
    EXPECT_NEAR(k.cy, 3.0, 1e-12);
    EXPECT_FALSE(k.distorted());
    // Default normalisation: p' = 2·(0.33·p + 0.5) − 1 = 0.66·p; rotation unchanged.
    const auto file = matrix_of(train["frames"][i]["transform_matrix"]);
    const auto& c2w = splits.train.cameras[i].c2w;
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) EXPECT_EQ(c2w[r * 4 + c], file[r * 4 + c]);
      EXPECT_NEAR(c2w[r * 4 + 3], 0.66 * file[r * 4 + 3], 1e-12);
    }
  }
  EXPECT_TRUE(splits.test.images[1].equal(pattern(11)));
}

TEST(TransformsDataset, ValFileWhenNoTestFileAndNoTestAtAll) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  Json j = simple_dataset(dir, 2);
  write_json(dir + "/transforms_train.json", j);
  auto only_train = load_transforms_dataset(dir);
  EXPECT_EQ(only_train.train.size(), 2);
  EXPECT_EQ(only_train.test.size(), 0);
  EXPECT_EQ(only_train.test.images.size(0), 0);
  j["frames"].erase(0);
  write_json(dir + "/transforms_val.json", j);
  auto with_val = load_transforms_dataset(dir);
  ASSERT_EQ(with_val.test.size(), 1);
  EXPECT_EQ(fs::path(with_val.test.files[0]).filename(), "f_1.png");
  EXPECT_NE(with_val.source.find("transforms_val.json"), std::string::npos);
}

TEST(TransformsDataset, NgpStyleIntrinsicsDistortionHoldoutAndNormalisation) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  Json j = {{"fl_x", 7.0},
            {"fl_y", 6.5},
            {"cx", 3.9},
            {"cy", 3.1},
            {"w", kW},
            {"h", kH},
            {"k1", 0.1},
            {"k2", -0.05},
            {"p1", 0.01},
            {"p2", -0.02},
            {"aabb_scale", 4},
            {"scale", 0.5},
            {"offset", {0.5, 0.4, 0.6}},
            {"camera_model", "OPENCV"},
            {"frames", Json::array()}};
  // Written in reverse order: the holdout uses frames sorted by file_path.
  for (int i = 9; i >= 0; --i) {
    const std::string name = "images/f_0" + std::to_string(i) + ".png";
    write_png(dir + "/" + name, pattern(i, 3));
    j["frames"].push_back({{"file_path", name}, {"transform_matrix", pose(15, 36.0 * i, 2.0 + 0.1 * i)}});
  }
  write_json(dir + "/transforms.json", j);
  auto s = load_transforms_dataset(dir);
  EXPECT_EQ(s.bound, 4.0);
  EXPECT_NE(s.source.find("every 8th frame"), std::string::npos) << s.source;
  ASSERT_EQ(s.test.size(), 2);
  ASSERT_EQ(s.train.size(), 8);
  EXPECT_EQ(fs::path(s.test.files[0]).filename(), "f_00.png");
  EXPECT_EQ(fs::path(s.test.files[1]).filename(), "f_08.png");
  EXPECT_EQ(fs::path(s.train.files[0]).filename(), "f_01.png");
  // RGB files get alpha 255.
  EXPECT_TRUE(s.train.images[0].narrow(2, 0, 3).equal(pattern(1, 3)));
  EXPECT_EQ(s.train.images.select(3, 3).min().item<int>(), 255);
  const auto& k = s.test.cameras[1].intrinsics;
  EXPECT_EQ(k.fx, 7.0);
  EXPECT_EQ(k.fy, 6.5);
  EXPECT_EQ(k.cx, 3.9);
  EXPECT_EQ(k.cy, 3.1);
  EXPECT_EQ(k.k1, 0.1);
  EXPECT_EQ(k.k2, -0.05);
  EXPECT_EQ(k.p1, 0.01);
  EXPECT_EQ(k.p2, -0.02);
  // Frame 8 (written 2nd in the file): p' = 2·(0.5·p + offset) − 1.
  const auto file = matrix_of(j["frames"][1]["transform_matrix"]);
  const double offset[3] = {0.5, 0.4, 0.6};
  for (int a = 0; a < 3; ++a)
    EXPECT_NEAR(s.test.cameras[1].c2w[a * 4 + 3], 2 * (0.5 * file[a * 4 + 3] + offset[a]) - 1, 1e-12);

  // Options: another holdout, none, scale/offset overrides, the json named directly.
  DatasetOptions o;
  o.holdout_every = 3;
  EXPECT_EQ(load_transforms_dataset(dir, o).test.size(), 4);  // frames 0, 3, 6, 9
  o.holdout_every = 0;
  EXPECT_EQ(load_transforms_dataset(dir, o).train.size(), 10);
  o.scale = 1.0;
  o.offset = std::array<double, 3>{0, 0, 0};
  auto raw = load_transforms_dataset(dir + "/transforms.json", o);
  ASSERT_EQ(raw.train.size(), 10);
  const auto f9 = matrix_of(j["frames"][0]["transform_matrix"]);  // f_09: last in sorted order
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(raw.train.cameras[9].c2w[a * 4 + 3], 2 * f9[a * 4 + 3] - 1, 1e-12);
}

TEST(TransformsDataset, MaxFramesSpreadsEvenly) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  write_json(dir + "/transforms.json", simple_dataset(dir, 10));
  DatasetOptions o;
  o.holdout_every = 0;
  o.max_frames = 3;
  auto s = load_transforms_dataset(dir, o);
  ASSERT_EQ(s.train.size(), 3);
  EXPECT_EQ(fs::path(s.train.files[0]).filename(), "f_0.png");
  EXPECT_EQ(fs::path(s.train.files[1]).filename(), "f_3.png");
  EXPECT_EQ(fs::path(s.train.files[2]).filename(), "f_6.png");
  EXPECT_TRUE(s.train.images[2].equal(pattern(6)));
}

TEST(TransformsDataset, IntrinsicsScaledToTheRealImageSize) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  Json j = simple_dataset(dir, 1);
  j["w"] = 16, j["h"] = 12, j["fl_x"] = 10.0, j["cx"] = 8.5, j["cy"] = 6.0;
  write_json(dir + "/transforms.json", j);
  auto k = load_transforms_dataset(dir).train.cameras[0].intrinsics;
  EXPECT_EQ(k.width, kW);
  EXPECT_NEAR(k.fx, 5.0, 1e-12);
  EXPECT_NEAR(k.fy, 5.0, 1e-12);
  EXPECT_NEAR(k.cx, 4.25, 1e-12);
  EXPECT_NEAR(k.cy, 3.0, 1e-12);
  // Per axis: only the width differs.
  j["h"] = kH;
  j.erase("cy");
  write_json(dir + "/transforms.json", j);
  k = load_transforms_dataset(dir).train.cameras[0].intrinsics;
  EXPECT_NEAR(k.fx, 5.0, 1e-12);
  EXPECT_NEAR(k.fy, 10.0, 1e-12);
  EXPECT_NEAR(k.cy, 3.0, 1e-12);
}

TEST(TransformsDataset, PerFrameIntrinsicsOverrideTheTopLevel) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  Json j = simple_dataset(dir, 3);
  j.erase("fl_x");
  j["camera_angle_x"] = 1.0;
  j["camera_angle_y"] = 0.8;
  j["k1"] = 0.05;
  j["frames"][1].update({{"fl_x", 20.0}, {"cx", 3.0}, {"k1", 0.1}, {"p2", 0.02}, {"w", kW}, {"h", kH}});
  j["frames"][2].update({{"x_fov", 60.0}});
  write_json(dir + "/transforms.json", j);
  DatasetOptions o;
  o.holdout_every = 0;
  auto cams = load_transforms_dataset(dir, o).train.cameras;
  ASSERT_EQ(cams.size(), 3u);
  const auto &k0 = cams[0].intrinsics, &k1 = cams[1].intrinsics, &k2 = cams[2].intrinsics;
  EXPECT_NEAR(k0.fx, 0.5 * kW / std::tan(0.5), 1e-9);
  EXPECT_NEAR(k0.fy, 0.5 * kH / std::tan(0.4), 1e-9);
  EXPECT_EQ(k0.k1, 0.05);
  EXPECT_EQ(k0.cx, 4.0);
  EXPECT_EQ(k1.fx, 20.0);                              // the frame's fl_x beats the file's camera_angle_x
  EXPECT_NEAR(k1.fy, 0.5 * kH / std::tan(0.4), 1e-9);  // y: the frame has none, the file's camera_angle_y
  EXPECT_EQ(k1.cx, 3.0);
  EXPECT_EQ(k1.cy, 3.0);
  EXPECT_EQ(k1.k1, 0.1);
  EXPECT_EQ(k1.p2, 0.02);
  EXPECT_NEAR(k2.fx, 0.5 * kW / std::tan(30.0 * M_PI / 180.0), 1e-9);
}

TEST(TransformsDataset, JpegGrayRgbAndRgbaFrames) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  auto y = at::linspace(0, 1, kH).view({kH, 1, 1}).expand({kH, kW, 1});
  auto x = at::linspace(0, 1, kW).view({1, kW, 1}).expand({kH, kW, 1});
  auto smooth = at::cat({x, y, (x + y) / 2}, 2);
  save_jpeg(dir + "/a.jpg", smooth, 100);
  save_jpeg(dir + "/b.jpeg", smooth, 100);
  save_png(dir + "/c.png", pattern(3, 1));  // gray
  save_png(dir + "/d.png", pattern(4, 4));  // RGBA
  Json j = {{"fl_x", 7.0}, {"frames", Json::array()}};
  for (const char* name : {"a.jpg", "b", "c.png", "d.png"})  // "b": the extension is found (.jpeg)
    j["frames"].push_back({{"file_path", name}, {"transform_matrix", pose(0, 0)}});
  write_json(dir + "/transforms.json", j);
  DatasetOptions o;
  o.holdout_every = 0;
  auto s = load_transforms_dataset(dir, o).train;
  ASSERT_EQ(s.size(), 4);
  EXPECT_EQ(fs::path(s.files[1]).filename(), "b.jpeg");
  auto expected = at::floor(smooth * 255 + 0.5);
  for (int i : {0, 1}) {
    EXPECT_LT((s.images[i].narrow(2, 0, 3).to(at::kFloat) - expected).abs().mean().item<float>(), 4.0f);
    EXPECT_EQ(s.images[i].select(2, 3).min().item<int>(), 255);
  }
  for (int c = 0; c < 3; ++c) EXPECT_TRUE(s.images[2].select(2, c).equal(pattern(3, 1).select(2, 0)));
  EXPECT_EQ(s.images[2].select(2, 3).min().item<int>(), 255);
  EXPECT_TRUE(s.images[3].equal(pattern(4, 4)));
}

TEST(TransformsDataset, DownscaleImagesAndIntrinsics) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  Json j = simple_dataset(dir, 2);
  j["cx"] = 3.5;
  j["cy"] = 2.5;
  write_json(dir + "/transforms.json", j);
  DatasetOptions o;
  o.holdout_every = 0;
  o.downscale = 2;
  auto s = load_transforms_dataset(dir, o).train;
  EXPECT_EQ(s.width, 4);
  EXPECT_EQ(s.height, 3);
  ASSERT_EQ(s.images.sizes(), (std::vector<int64_t>{2, 3, 4, 4}));
  EXPECT_TRUE(s.images[1].equal(downscale_image(pattern(1), 2)));
  auto k = s.cameras[0].intrinsics;
  EXPECT_EQ(k.width, 4);
  EXPECT_EQ(k.height, 3);
  EXPECT_DOUBLE_EQ(k.fx, 3.5);
  EXPECT_DOUBLE_EQ(k.fy, 3.5);
  EXPECT_DOUBLE_EQ(k.cx, 1.75);
  EXPECT_DOUBLE_EQ(k.cy, 1.25);
  // 6 rows / 4 = 1 row: the intrinsics are divided by exactly 4 (the dropped rows are at the bottom).
  o.downscale = 4;
  s = load_transforms_dataset(dir, o).train;
  EXPECT_EQ(s.images.sizes(), (std::vector<int64_t>{2, 1, 2, 4}));
  k = s.cameras[0].intrinsics;
  EXPECT_EQ(k.height, 1);
  EXPECT_DOUBLE_EQ(k.cy, 2.5 / 4);
  EXPECT_DOUBLE_EQ(k.fy, 7.0 / 4);
}

TEST(TransformsDataset, RgbaFloatAndCompositing) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  auto img = pattern(0);
  img[0][0][3] = 0;
  img[0][1][3] = 255;
  img[0][2][3] = 51;
  write_png(dir + "/images/f.png", img);
  write_json(dir + "/transforms.json",
             {{"fl_x", 7}, {"frames", {{{"file_path", "images/f.png"}, {"transform_matrix", pose(0, 0)}}}}});
  auto s = load_transforms_dataset(dir).train;
  auto f = s.rgba_float(0);
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{kH, kW, 4}));
  EXPECT_EQ(f.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(f, img.to(at::kFloat) / 255));
  auto rgb = composite_on(f, {0.25f, 0.5f, 1.0f});
  EXPECT_EQ(rgb.sizes(), (std::vector<int64_t>{kH, kW, 3}));
  EXPECT_TRUE(at::allclose(rgb[0][0], at::tensor({0.25f, 0.5f, 1.0f})));
  EXPECT_TRUE(at::allclose(rgb[0][1], f[0][1].narrow(0, 0, 3)));
  auto expected = f[0][2].narrow(0, 0, 3) * 0.2f + at::tensor({0.25f, 0.5f, 1.0f}) * 0.8f;
  EXPECT_TRUE(at::allclose(rgb[0][2], expected));
}

TEST(TransformsDataset, PrincipalPointRayRunsAlongMinusZ) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  Json j = simple_dataset(dir, 2);
  j["frames"][0]["transform_matrix"] = pose(35, -70, 3.0);
  j["frames"][1]["transform_matrix"] = pose(-20, 150, 5.0);
  j.update({{"cx", 4.3}, {"cy", 2.7}, {"k1", 0.2}, {"p1", 0.01}});
  write_json(dir + "/transforms.json", j);
  DatasetOptions o;
  o.holdout_every = 0;
  for (const auto& cam : load_transforms_dataset(dir, o).train.cameras) {
    const auto& k = cam.intrinsics;
    auto pixels = at::tensor({float(k.cx), float(k.cy), float(k.cx + 2), float(k.cy)}).view({2, 2});
    auto rays = camera_rays(cam, pixels);
    const auto& m = cam.c2w;
    for (int a = 0; a < 3; ++a) {
      EXPECT_NEAR(rays.dirs[0][a].item<float>(), -m[a * 4 + 2], 1e-5);
      EXPECT_NEAR(rays.origins[0][a].item<float>(), m[a * 4 + 3], 1e-5);
    }
    // A pixel right of the principal point leans towards the camera's +X.
    const double right = rays.dirs[1][0].item<float>() * m[0] + rays.dirs[1][1].item<float>() * m[4] +
                         rays.dirs[1][2].item<float>() * m[8];
    EXPECT_GT(right, 0.05);
  }
}

// ---- malformed input: one InputError line naming the file and the field ----

TEST(TransformsDatasetErrors, MissingPaths) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  expect_input_error([&] { load_transforms_dataset(dir + "/nope"); }, {dir + "/nope", "no such file"});
  expect_input_error([&] { load_transforms_dataset(dir); }, {dir, "transforms.json"});
}

TEST(TransformsDatasetErrors, InvalidJson) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  const std::string path = dir + "/transforms.json";
  write_file_atomically(path, "{\"frames\": [");
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "invalid JSON"});
  write_file_atomically(path, "{\"fl_x\": 1e999, \"frames\": []}");
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "invalid JSON", "1e999"});
  write_file_atomically(path, "[1, 2]");
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "JSON object"});
}

TEST(TransformsDatasetErrors, FramesMissingEmptyOrNotAnArray) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  const std::string path = dir + "/transforms.json";
  write_json(path, {{"fl_x", 7}});
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "frames: missing"});
  write_json(path, {{"fl_x", 7}, {"frames", Json::array()}});
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "frames: empty"});
  write_json(path, {{"fl_x", 7}, {"frames", Json::object()}});
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "frames: expected an array"});
  write_json(path, {{"fl_x", 7}, {"frames", {1}}});
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "frames[0]: expected an object"});
}

TEST(TransformsDatasetErrors, FrameFields) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  const std::string path = dir + "/transforms.json";
  const Json good = simple_dataset(dir, 2);
  auto with = [&](const std::function<void(Json&)>& edit) {
    Json j = good;
    edit(j);
    write_json(path, j);
  };
  with([](Json& j) { j["frames"][1].erase("file_path"); });
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "frames[1].file_path: missing"});
  with([](Json& j) { j["frames"][1]["file_path"] = 5; });
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "frames[1].file_path: expected"});
  with([](Json& j) { j["frames"][1].erase("transform_matrix"); });
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "frames[1].transform_matrix: missing"});
  with([](Json& j) { j["frames"][0]["transform_matrix"].erase(3); });  // 3×4
  expect_input_error([&] { load_transforms_dataset(dir); },
                     {path, "frames[0].transform_matrix: expected 4 rows"});
  with([](Json& j) { j["frames"][0]["transform_matrix"][1] = {1, 2, 3}; });
  expect_input_error([&] { load_transforms_dataset(dir); },
                     {path, "frames[0].transform_matrix: expected 4 rows"});
  with([](Json& j) { j["frames"][0]["transform_matrix"][2][1] = "x"; });
  expect_input_error([&] { load_transforms_dataset(dir); },
                     {path, "frames[0].transform_matrix[2][1]: expected a number"});
  // Python's json.dump writes NaN / Infinity for non-finite values.
  Json marked = good;
  marked["frames"][0]["transform_matrix"][0][3] = 12345.5;
  const std::string text = marked.dump();
  const size_t at = text.find("12345.5");
  write_file_atomically(path, std::string(text).replace(at, 7, "NaN"));
  expect_input_error([&] { load_transforms_dataset(dir); },
                     {path, "frames[0].transform_matrix[0][3]: non-finite value NaN"});
  write_file_atomically(path, std::string(text).replace(at, 7, "-Infinity"));
  expect_input_error([&] { load_transforms_dataset(dir); },
                     {path, "frames[0].transform_matrix[0][3]: non-finite"});
}

TEST(TransformsDatasetErrors, Intrinsics) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  const std::string path = dir + "/transforms.json";
  const Json good = simple_dataset(dir, 2);
  auto with = [&](const std::function<void(Json&)>& edit) {
    Json j = good;
    edit(j);
    write_json(path, j);
  };
  with([](Json& j) { j.erase("fl_x"); });
  expect_input_error([&] { load_transforms_dataset(dir); },
                     {path, "frames[1]: no focal length", "fl_x"} /* frame 0 is held out */);
  with([](Json& j) { j["fl_x"] = "abc"; });
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "fl_x: expected a number"});
  with([](Json& j) { j["frames"][1]["fl_y"] = -3; });
  expect_input_error([&] { load_transforms_dataset(dir); },
                     {path, "frames[1].fl_y: expected a focal length"});
  with([](Json& j) { j["camera_angle_x"] = 4.0; });
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "camera_angle_x"});
  with([](Json& j) { j["w"] = 0; });
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "w: expected a width"});
  with([](Json& j) { j["frames"][0]["k3"] = 0.1; });
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "frames[0].k3", "k1 k2 p1 p2"});
  with([](Json& j) { j["camera_model"] = "OPENCV_FISHEYE"; });
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "camera_model", "OPENCV_FISHEYE"});
  with([](Json& j) { j["is_fisheye"] = true; });
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "is_fisheye"});
}

TEST(TransformsDatasetErrors, ImagesMissingCorruptOrOfDifferentSizes) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  const std::string path = dir + "/transforms.json";
  Json j = simple_dataset(dir, 3);
  write_json(path, j);
  fs::remove(dir + "/images/f_2.png");
  expect_input_error([&] { load_transforms_dataset(dir); },
                     {path, "frames[2].file_path", "images/f_2.png", "not found"});
  write_file_atomically(dir + "/images/f_2.png", "garbage, not a PNG");
  expect_input_error([&] { load_transforms_dataset(dir); },
                     {path, "frames[2].file_path", "images/f_2.png", "cannot read image ("});
  // A PNG whose header is fine but whose pixel data is cut off.
  save_png(dir + "/images/big.png", pattern(9, 3, 48, 64));
  const std::string bytes = read_file(dir + "/images/big.png");
  write_file_atomically(dir + "/images/f_2.png", bytes.substr(0, bytes.size() / 2));
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "frames[2].file_path", "images/f_2.png"});
  save_png(dir + "/images/f_2.png", pattern(2, 4, 4, 6));
  expect_input_error([&] { load_transforms_dataset(dir); },
                     {path, "frames[2].file_path", "images/f_2.png", "6x4", "images/f_1.png", "8x6"});
}

TEST(TransformsDatasetErrors, BadOptionsAndNormalisationKeys) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  const std::string path = dir + "/transforms.json";
  const Json good = simple_dataset(dir, 2);
  write_json(path, good);
  DatasetOptions o;
  o.downscale = 0;
  expect_input_error([&] { load_transforms_dataset(dir, o); }, {"downscale", "0"});
  o.downscale = 7;  // 8x6 → 1x0
  expect_input_error([&] { load_transforms_dataset(dir, o); }, {"downscale 7", "8x6", path});
  o = {};
  o.holdout_every = 1;
  expect_input_error([&] { load_transforms_dataset(dir, o); }, {"holdout_every"});
  o = {};
  o.scale = 0.0;
  expect_input_error([&] { load_transforms_dataset(dir, o); }, {"scale"});
  o = {};
  o.offset = std::array<double, 3>{0, NAN, 0};
  expect_input_error([&] { load_transforms_dataset(dir, o); }, {"offset"});
  auto with = [&](const std::function<void(Json&)>& edit) {
    Json j = good;
    edit(j);
    write_json(path, j);
  };
  with([](Json& j) { j["scale"] = -1; });
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "scale: must be > 0"});
  with([](Json& j) { j["offset"] = {1, 2}; });
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "offset: expected 3 numbers"});
  with([](Json& j) { j["offset"] = {1, 2, "z"}; });
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "offset[2]"});
  with([](Json& j) { j["aabb_scale"] = 0; });
  expect_input_error([&] { load_transforms_dataset(dir); }, {path, "aabb_scale"});
}

TEST(TransformsDatasetErrors, TheTestFileIsNamed) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  Json j = simple_dataset(dir, 2);
  write_json(dir + "/transforms_train.json", j);
  j["frames"][1].erase("transform_matrix");
  write_json(dir + "/transforms_test.json", j);
  expect_input_error([&] { load_transforms_dataset(dir); },
                     {dir + "/transforms_test.json", "frames[1].transform_matrix: missing"});
}

}  // namespace
}  // namespace nd
