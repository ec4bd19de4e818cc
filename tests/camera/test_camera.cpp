#include <gtest/gtest.h>

#include <cmath>

#include "camera/camera.h"

namespace nd {
namespace {

TEST(Camera, OrbitCameraLooksAtOrigin) {
  for (double e : {-10.0, 0.0, 30.0, 89.0, 90.0}) {
    for (double a : {0.0, 45.0, 90.0, 180.0, -120.0}) {
      auto cam = orbit_camera(3.0, e, a, 40.0, 33, 33);
      // The centre pixel's ray passes through the origin.
      auto rays = camera_rays(cam, at::tensor({16.5f, 16.5f}).view({1, 2}));
      auto o = rays.origins[0], d = rays.dirs[0];
      auto closest = o - d * (o * d).sum();
      EXPECT_LT(closest.norm().item<float>(), 1e-5) << e << " " << a;
      EXPECT_NEAR(o.norm().item<float>(), 3.0, 1e-5);
    }
  }
}

TEST(Camera, SpecPositions) {
  auto front = orbit_camera(2.0, 0.0, 0.0, 40.0, 8, 8).position();
  EXPECT_NEAR(front[2], 2.0, 1e-12);
  auto right = orbit_camera(2.0, 0.0, 90.0, 40.0, 8, 8).position();
  EXPECT_NEAR(right[0], 2.0, 1e-12);
  auto top = orbit_camera(2.0, 90.0, 0.0, 40.0, 8, 8).position();
  EXPECT_NEAR(top[1], 2.0, 1e-12);
}

TEST(Camera, ImageUpIsWorldUp) {
  // A pixel in the top row looks above the centre for a camera at the horizon.
  auto cam = orbit_camera(3.0, 0.0, 0.0, 40.0, 32, 32);
  auto rays = camera_rays(cam, at::tensor({16.0f, 0.5f}).view({1, 2}));
  EXPECT_GT(rays.dirs[0][1].item<float>(), 0.1f);
  // And a pixel on the right looks towards +X (camera on +Z looking at -Z).
  rays = camera_rays(cam, at::tensor({31.5f, 16.0f}).view({1, 2}));
  EXPECT_GT(rays.dirs[0][0].item<float>(), 0.1f);
}

TEST(Camera, FieldOfView) {
  auto cam = orbit_camera(3.0, 0.0, 0.0, 60.0, 64, 64);
  auto rays = camera_rays(cam, at::tensor({32.0f, 0.0f, 32.0f, 64.0f}).view({2, 2}));
  const double cosang = (rays.dirs[0] * rays.dirs[1]).sum().item<float>();
  EXPECT_NEAR(std::acos(cosang) * 180.0 / M_PI, 60.0, 1e-3);
}

TEST(Camera, ViewWords) {
  EXPECT_STREQ(view_word(0, 0), "front");
  EXPECT_STREQ(view_word(0, 45), "front");
  EXPECT_STREQ(view_word(0, 46), "side");
  EXPECT_STREQ(view_word(0, -90), "side");
  EXPECT_STREQ(view_word(0, 135), "back");
  EXPECT_STREQ(view_word(0, 180), "back");
  EXPECT_STREQ(view_word(0, 540), "back");
  EXPECT_STREQ(view_word(60, 0), "overhead");
  EXPECT_STREQ(view_word(59.9, 170), "back");
}

TEST(Camera, UndistortInvertsDistort) {
  auto xy = at::rand({1000, 2}) * 1.2 - 0.6;
  auto k = at::tensor({-0.2f, 0.05f, 0.001f, -0.002f}).view({1, 4}).expand({1000, 4});
  auto back = undistort_normalized(distort_normalized(xy, k), k);
  EXPECT_LT((back - xy).abs().max().item<float>(), 1e-5);
}

TEST(Camera, DownscaleKeepsFieldOfView) {
  auto k = pinhole_intrinsics(1080, 1920, 50.0).downscaled(4);
  EXPECT_EQ(k.width, 270);
  EXPECT_EQ(k.height, 480);
  EXPECT_NEAR(2 * std::atan(0.5 * k.height / k.fy) * 180 / M_PI, 50.0, 1e-9);
}

}  // namespace
}  // namespace nd
