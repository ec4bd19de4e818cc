#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/threads.h"
#include "synth/caption.h"
#include "synth/synth_renderer.h"

namespace nd {
namespace {

constexpr double kPi = 3.14159265358979323846;

TEST(SynthRenderer, SphereSilhouetteAreaDepthAndNormal) {
  set_threads(0);
  const auto sphere = parse_caption("a blue sphere").object;
  const double d = 3.2, R = 0.55, fov = 40;
  const int size = 256;
  SynthRenderOptions opt;
  opt.supersample = 2;
  const auto cam = orbit_camera(d, 20, 30, fov, size, size);
  const auto img = render_synth(sphere, cam, opt);
  ASSERT_EQ(img.rgb.sizes(), (at::IntArrayRef{size, size, 3}));
  ASSERT_EQ(img.alpha.sizes(), (at::IntArrayRef{size, size}));
  // The silhouette is a disc of angular radius θ, tan θ = R / sqrt(d² − R²), i.e. f·tan θ pixels.
  const double f = cam.intrinsics.fy;
  const double radius_px = f * R / std::sqrt(d * d - R * R);
  const double area = img.alpha.sum().item<double>();
  EXPECT_NEAR(area / (kPi * radius_px * radius_px), 1.0, 0.01);
  // White background, colors in [0,1].
  EXPECT_FLOAT_EQ(img.rgb[0][0][0].item<float>(), 1.f);
  EXPECT_EQ(img.depth[0][0].item<float>(), 0.f);
  EXPECT_GE(img.rgb.min().item<float>(), 0.f);
  EXPECT_LE(img.rgb.max().item<float>(), 1.f);

  // Odd size: the centre pixel looks straight at the origin.
  const auto centre_cam = orbit_camera(d, 20, 30, fov, 33, 33);
  const auto c = render_synth(sphere, centre_cam, SynthRenderOptions{});
  EXPECT_NEAR(c.depth[16][16].item<float>(), d - R, 1e-5);
  EXPECT_EQ(c.alpha[16][16].item<float>(), 1.f);
  const auto pos = centre_cam.position();
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(c.normal[16][16][i].item<float>(), pos[i] / d, 1e-5);
  // Shading: albedo × (ambient + (1 − ambient)·max(0, n·l)).
  const SynthLight light;
  double ndotl = 0;
  for (int i = 0; i < 3; ++i) ndotl += pos[i] / d * light.direction_to_light[i];
  const double shade = light.ambient + (1 - light.ambient) * std::max(0.0, ndotl);
  const auto blue = color_albedo("blue");
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(c.rgb[16][16][i].item<float>(), blue[i] * shade, 1e-5);
}

TEST(SynthRenderer, SupersampleCoverageAndStraightColor) {
  set_threads(0);
  const auto tree = parse_caption("a tree").object;
  const auto cam = orbit_camera(3.2, 15, -40, 40, 48, 40);
  const auto one = render_synth(tree, cam, {});
  // Without supersampling, coverage is all-or-nothing.
  EXPECT_TRUE(((one.alpha == 0) | (one.alpha == 1)).all().item<bool>());
  SynthRenderOptions opt;
  opt.supersample = 3;
  const auto three = render_synth(tree, cam, opt);
  EXPECT_TRUE(((three.alpha > 0) & (three.alpha < 1)).any().item<bool>());  // edge pixels
  EXPECT_NEAR(three.alpha.mean().item<double>(), one.alpha.mean().item<double>(), 0.02);
  // Straight color composited on white reproduces the render.
  const auto straight = straight_rgb(three);
  auto a = three.alpha.unsqueeze(-1);
  EXPECT_TRUE(at::allclose(a * straight + (1 - a), three.rgb, 0, 1e-5));
  // Normals are unit where covered, zero where empty.
  auto nn = three.normal.norm(2, -1);
  EXPECT_TRUE(at::allclose(nn.masked_select(three.alpha > 0), at::ones({1}), 0, 1e-4));
  EXPECT_EQ(nn.masked_select(three.alpha == 0).abs().max().item<float>(), 0.f);
}

TEST(SynthRenderer, InlineRaysMatchCameraRays) {
  // A negligible distortion sends the renderer through nd::camera_rays instead of its inline rays.
  const auto obj = parse_caption("a mushroom").object;
  const auto cam = orbit_camera(3.2, 25, 70, 40, 40, 36);
  auto distorted = cam;
  distorted.intrinsics.k1 = 1e-12;
  SynthRenderOptions opt;
  opt.supersample = 2;
  const auto a = render_synth(obj, cam, opt), b = render_synth(obj, distorted, opt);
  EXPECT_LE((a.alpha - b.alpha).abs().sum().item<float>(), 0.5f);  // at most a couple of grazing sub-rays
  auto both = (a.alpha == 1) & (b.alpha == 1);
  EXPECT_LT((a.depth - b.depth).masked_select(both).abs().max().item<float>(), 1e-4f);
  EXPECT_LT((a.rgb - b.rgb).masked_select(both.unsqueeze(-1)).abs().max().item<float>(), 1e-4f);
}

TEST(SynthRenderer, FrontAndBackOfTheChairDiffer) {
  // From the back (azimuth 180) the backrest hides most of the chair; from the front the seat shows.
  const auto chair = parse_caption("a chair").object;
  const auto front = render_synth(chair, orbit_camera(3.2, 0, 0, 40, 64, 64), {});
  const auto back = render_synth(chair, orbit_camera(3.2, 0, 180, 40, 64, 64), {});
  // The backrest is nearer to the back camera (its back face at z = -0.45) than to the front camera
  // (its front face at z = -0.33, seen over the seat): depths differ by about 0.78.
  const int row = 20;  // above the seat, on the backrest
  ASSERT_EQ(front.alpha[row][32].item<float>(), 1.f);
  EXPECT_NEAR(back.depth[row][32].item<float>() - front.depth[row][32].item<float>(), -0.78, 0.02);
}

TEST(SynthRenderer, Timing128) {
  set_threads(0);
  const auto obj = parse_caption("a red torus on top of a blue cone").object;
  const auto cam = orbit_camera(3.2, 30, 45, 40, 128, 128);
  render_synth(obj, cam, {});  // warm-up
  const int reps = 20;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) render_synth(obj, cam, {});
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
  std::printf("[timing] render_synth 128x128 (torus on cone, supersample 1, %d threads): %.2f ms\n",
              num_threads(), ms);
  EXPECT_LT(ms, 200.0);
}

}  // namespace
}  // namespace nd
