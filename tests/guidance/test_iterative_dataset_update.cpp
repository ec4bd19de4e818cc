// The iterative dataset update's bookkeeping: the orbit, the schedule of samples / additions / refreshes,
// the pixels it hands to the fit, and its checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "guidance/iterative_dataset_update.h"
#include "test_support.h"

namespace nd {
namespace {

IDUConfig small_config() {
  IDUConfig c;
  c.views = 6;
  c.steps_per_view = 4;
  c.refresh_every = 3;
  return c;
}

TEST(IterativeDatasetUpdate, OrbitStartsInFrontAndAlternatesSides) {
  IterativeDatasetUpdate idu(small_config(), 8, ViewRange{});
  EXPECT_DOUBLE_EQ(idu.orbit_view(0).azimuth, 0);
  EXPECT_DOUBLE_EQ(idu.orbit_view(1).azimuth, 60);
  EXPECT_DOUBLE_EQ(idu.orbit_view(2).azimuth, -60);
  EXPECT_DOUBLE_EQ(idu.orbit_view(3).azimuth, 120);
  EXPECT_DOUBLE_EQ(idu.orbit_view(4).azimuth, -120);
  EXPECT_DOUBLE_EQ(idu.orbit_view(5).azimuth, -180);
  std::set<double> azimuths;
  for (int i = 0; i < 6; ++i) {
    const View v = idu.orbit_view(i);
    azimuths.insert(v.azimuth);
    EXPECT_GE(v.azimuth, -180);
    EXPECT_LT(v.azimuth, 180);
    EXPECT_DOUBLE_EQ(v.radius, 3.0);  // the middle of the prior's range
    EXPECT_DOUBLE_EQ(v.fov, 45.0);
  }
  EXPECT_EQ(azimuths.size(), 6u);  // the orbit is covered once
  // Two elevations, alternating by pairs: 40° in front, 15° for the first pair beside it.
  EXPECT_DOUBLE_EQ(idu.orbit_view(0).elevation, 40);
  EXPECT_DOUBLE_EQ(idu.orbit_view(1).elevation, 15);
  EXPECT_DOUBLE_EQ(idu.orbit_view(2).elevation, 15);
  EXPECT_DOUBLE_EQ(idu.orbit_view(3).elevation, 40);
}

TEST(IterativeDatasetUpdate, ScheduleSamplesAddsThenRefreshes) {
  using A = IterativeDatasetUpdate::Action;
  IterativeDatasetUpdate idu(small_config(), 8, ViewRange{});
  EXPECT_EQ(idu.due(0).action, A::kSample);
  EXPECT_EQ(idu.due(1).action, A::kNone);
  EXPECT_EQ(idu.due(4).action, A::kAdd);
  EXPECT_EQ(idu.due(4).index, 1);
  EXPECT_EQ(idu.due(20).index, 5);
  EXPECT_EQ(idu.due(24).action, A::kNone);  // the orbit is covered: refinement
  EXPECT_EQ(idu.due(27).action, A::kRefresh);
  EXPECT_EQ(idu.due(27).index, 0);
  EXPECT_EQ(idu.due(30).index, 1);
  EXPECT_EQ(idu.due(27 + 3 * 6).index, 0);  // round robin
  EXPECT_DOUBLE_EQ(idu.strength(A::kAdd), 0.6);
  EXPECT_DOUBLE_EQ(idu.strength(A::kRefresh), 0.3);
  IDUConfig never = small_config();
  never.refresh_every = 0;
  EXPECT_EQ(IterativeDatasetUpdate(never, 8, ViewRange{}).due(27).action, A::kNone);
}

TEST(IterativeDatasetUpdate, PixelsComeFromTheCollectedViews) {
  IterativeDatasetUpdate idu(small_config(), 8, ViewRange{});
  EXPECT_TRUE(idu.empty());
  idu.set(0, at::full({1, 3, 8, 8}, 0.25));
  idu.set(1, at::full({8, 8, 3}, 0.75));
  EXPECT_EQ(idu.collected(), 2);
  EXPECT_NE(test::input_error_of([&] { idu.set(3, at::zeros({8, 8, 3})); }), "<no InputError>");
  std::mt19937_64 rng(1);
  const auto batch = idu.sample_pixels(500, rng);
  ASSERT_EQ(batch.colors.sizes(), (std::vector<int64_t>{500, 3}));
  ASSERT_EQ(batch.rays.origins.sizes(), (std::vector<int64_t>{500, 3}));
  // Each pixel's color is one of the two views', and its ray starts at that view's camera.
  const View v0 = idu.orbit_view(0), v1 = idu.orbit_view(1);
  const Rays r0 = camera_rays_all(orbit_camera(v0.radius, v0.elevation, v0.azimuth, v0.fov, 8, 8));
  const Rays r1 = camera_rays_all(orbit_camera(v1.radius, v1.elevation, v1.azimuth, v1.fov, 8, 8));
  int from0 = 0, from1 = 0;
  for (int64_t i = 0; i < 500; ++i) {
    const float c = batch.colors[i][0].item<float>();
    const at::Tensor origin = c < 0.5 ? r0.origins[0] : r1.origins[0];
    EXPECT_LT(test::max_abs_diff(batch.rays.origins[i], origin), 1e-5);
    (c < 0.5 ? from0 : from1)++;
  }
  EXPECT_GT(from0, 150);
  EXPECT_GT(from1, 150);
}

TEST(IterativeDatasetUpdate, NearWhiteBackgroundBecomesWhite) {
  IterativeDatasetUpdate idu(small_config(), 2, ViewRange{});
  at::Tensor image = at::empty({2, 2, 3});
  image[0][0] = at::tensor({0.95f, 0.97f, 0.92f});  // background noise → white
  image[0][1] = at::tensor({0.95f, 0.5f, 0.95f});   // a color → kept
  image[1][0] = at::tensor({0.2f, 0.1f, 0.1f});
  image[1][1] = at::tensor({1.0f, 1.0f, 1.0f});
  idu.set(0, image);
  const at::Tensor stored = idu.images()[0];
  EXPECT_EQ(test::max_abs_diff(stored[0][0], at::ones({3})), 0);
  EXPECT_EQ(test::max_abs_diff(stored[0][1], image[0][1]), 0);
  EXPECT_EQ(test::max_abs_diff(stored[1][0], image[1][0]), 0);
  // The background mask of the fit: the pixels that are white now.
  std::mt19937_64 rng(0);
  const auto batch = idu.sample_pixels(64, rng);
  EXPECT_EQ(test::max_abs_diff(batch.background, (std::get<0>(batch.colors.min(1)) == 1).to(at::kFloat)), 0);
  EXPECT_GT(batch.background.sum().item<float>(), 10);
}

TEST(IterativeDatasetUpdate, CheckpointRoundTripAndMismatch) {
  IterativeDatasetUpdate a(small_config(), 8, ViewRange{});
  a.set(0, at::rand({8, 8, 3}));
  Checkpoint ckpt;
  a.save(ckpt);
  IterativeDatasetUpdate b(small_config(), 8, ViewRange{});
  b.restore(ckpt, "run.safetensors");
  EXPECT_EQ(b.collected(), 1);
  EXPECT_EQ(test::max_abs_diff(a.images(), b.images()), 0);
  IterativeDatasetUpdate other(small_config(), 16, ViewRange{});
  EXPECT_TRUE(test::contains(test::input_error_of([&] { other.restore(ckpt, "run.safetensors"); }),
                             "run.safetensors: incompatible checkpoint"));
  EXPECT_TRUE(test::contains(test::input_error_of([&] { b.restore(Checkpoint{}, "x"); }), "idu"));
}

TEST(IterativeDatasetUpdate, RejectsBadConfig) {
  auto bad = [](auto edit) {
    IDUConfig c;
    edit(c);
    return test::input_error_of([&] { validate(c); });
  };
  EXPECT_TRUE(test::contains(bad([](IDUConfig& c) { c.views = 0; }), "idu.views"));
  EXPECT_TRUE(test::contains(bad([](IDUConfig& c) { c.strength = 1.5; }), "idu.strength"));
  EXPECT_TRUE(test::contains(bad([](IDUConfig& c) { c.strength = 0; }), "idu.strength"));
  EXPECT_TRUE(test::contains(bad([](IDUConfig& c) { c.elevation_step = 100; }), "elevation"));
  EXPECT_TRUE(test::contains(bad([](IDUConfig& c) { c.rays_per_step = 1; }), "idu.rays_per_step"));
  EXPECT_TRUE(test::contains(bad([](IDUConfig& c) { c.white_threshold = 0.2; }), "idu.white_threshold"));
  EXPECT_TRUE(test::contains(bad([](IDUConfig& c) { c.shading = "textureless"; }), "idu.shading"));
  EXPECT_TRUE(test::contains(bad([](IDUConfig& c) { c.ambient = 1.5; }), "idu.ambient"));
  EXPECT_EQ(bad([](IDUConfig&) {}), "<no InputError>");
}

}  // namespace
}  // namespace nd
