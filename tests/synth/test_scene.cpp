#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "synth/caption.h"
#include "synth/scene.h"

namespace nd {
namespace {

constexpr double kPi = 3.14159265358979323846;

SynthHit cast(const SynthObject& obj, std::array<double, 3> o, std::array<double, 3> d,
              bool* hit_out = nullptr) {
  SynthHit hit;
  const bool hit_any = intersect_ray(obj, o, d, &hit);
  if (hit_out) *hit_out = hit_any;
  return hit;
}

TEST(Scene, CubeInsideOutside) {
  const auto cube = parse_caption("a red cube").object;
  EXPECT_TRUE(inside(cube, 0, 0, 0));
  EXPECT_TRUE(inside(cube, 0.54f, -0.54f, 0.54f));
  EXPECT_FALSE(inside(cube, 0.56f, 0, 0));
  EXPECT_FALSE(inside(cube, 0, -0.56f, 0));
  EXPECT_FALSE(inside(cube, 0, 0, 0.9f));
  bool hit = false;
  auto h = cast(cube, {0.1, 0.2, 3}, {0, 0, -1}, &hit);
  ASSERT_TRUE(hit);
  EXPECT_NEAR(h.t, 3 - 0.55, 1e-6);
  EXPECT_FLOAT_EQ(h.normal[2], 1.f);
  EXPECT_FLOAT_EQ(h.albedo[0], 0.85f);
}

TEST(Scene, TorusHoleIsEmpty) {
  const auto torus = parse_caption("a yellow torus").object;
  // Single box 1.1: major radius 0.385, minor 0.165.
  EXPECT_FALSE(inside(torus, 0, 0, 0));
  EXPECT_FALSE(inside(torus, 0.2f, 0, 0));
  EXPECT_TRUE(inside(torus, 0.385f, 0, 0));
  EXPECT_TRUE(inside(torus, 0, 0.16f, -0.385f));
  EXPECT_FALSE(inside(torus, 0.385f, 0.17f, 0));
  bool hit = true;
  cast(torus, {0, 3, 0}, {0, -1, 0}, &hit);  // straight down the hole
  EXPECT_FALSE(hit);
  auto h = cast(torus, {0.385, 3, 0}, {0, -1, 0}, &hit);
  ASSERT_TRUE(hit);
  EXPECT_NEAR(h.t, 3 - 0.165, 1e-6);
  EXPECT_NEAR(h.normal[1], 1.0, 1e-6);
  // Along the equator through the hole: first hit at the outer rim.
  h = cast(torus, {-3, 0, 0}, {1, 0, 0}, &hit);
  ASSERT_TRUE(hit);
  EXPECT_NEAR(h.t, 3 - 0.55, 1e-6);
  EXPECT_NEAR(h.normal[0], -1.0, 1e-6);
  // Starting in the hole, looking out: the inner rim.
  h = cast(torus, {0, 0, 0}, {0, 0, 1}, &hit);
  ASSERT_TRUE(hit);
  EXPECT_NEAR(h.t, 0.22, 1e-6);
  EXPECT_NEAR(h.normal[2], -1.0, 1e-6);
}

TEST(Scene, SphereOccupancyVolume) {
  const auto sphere = parse_caption("a blue sphere").object;
  const int res = 64;
  auto grid = occupancy_grid(sphere, res);
  ASSERT_EQ(grid.sizes(), (at::IntArrayRef{res, res, res}));
  ASSERT_EQ(grid.scalar_type(), at::kBool);
  const double cell = std::pow(2.0 / res, 3);
  const double volume = grid.sum().item<int64_t>() * cell;
  const double exact = 4.0 / 3.0 * kPi * std::pow(0.55, 3);
  EXPECT_NEAR(volume / exact, 1.0, 0.02);
  // Indexing [ix][iy][iz], x = -1 + (ix + 0.5)·2/res: the cube's half-size 0.55 covers cells 14..49.
  auto cube = occupancy_grid(parse_caption("a red cube").object, res);
  EXPECT_TRUE(cube[14][32][32].item<bool>());
  EXPECT_FALSE(cube[13][32][32].item<bool>());
  auto stack = occupancy_grid(parse_caption("a red cube on top of a red cube").object, res);
  EXPECT_TRUE(stack[32][53][32].item<bool>());   // y = 0.672, inside the top cube (y up to 0.7)
  EXPECT_FALSE(stack[32][54][32].item<bool>());  // y = 0.703, above it
}

TEST(Scene, ChairBackrestIsOnMinusZ) {
  const auto chair = parse_caption("a chair").object;
  EXPECT_TRUE(inside(chair, 0, 0.4f, -0.4f));
  EXPECT_FALSE(inside(chair, 0, 0.4f, 0.4f));
  EXPECT_TRUE(inside(chair, 0, 0, 0.4f));           // seat
  EXPECT_TRUE(inside(chair, 0.39f, -0.5f, 0.39f));  // a front leg
  bool hit = false;
  auto back = cast(chair, {0, 0.4, -3}, {0, 0, 1}, &hit);
  ASSERT_TRUE(hit);
  EXPECT_NEAR(back.t, 3 - 0.45, 1e-6);
  auto front = cast(chair, {0, 0.4, 3}, {0, 0, -1}, &hit);
  ASSERT_TRUE(hit);
  EXPECT_NEAR(front.t, 3 + 0.33, 1e-6);
  EXPECT_NEAR(front.normal[2], 1.0, 1e-6);
}

TEST(Scene, KnownHitsAndNormals) {
  bool hit = false;
  // Cone (single, box 1.1): radius at height y is (0.55 - y) / 2; slant normal ∝ (0, 1, 2) locally.
  auto h = cast(parse_caption("a red cone").object, {0, 0, 3}, {0, 0, -1}, &hit);
  ASSERT_TRUE(hit);
  EXPECT_NEAR(h.t, 3 - 0.275, 1e-6);
  EXPECT_NEAR(h.normal[1], 1 / std::sqrt(5.0), 1e-6);
  EXPECT_NEAR(h.normal[2], 2 / std::sqrt(5.0), 1e-6);
  h = cast(parse_caption("a red cone").object, {0.1, -3, 0}, {0, 1, 0}, &hit);
  ASSERT_TRUE(hit);
  EXPECT_NEAR(h.t, 3 - 0.55, 1e-6);
  EXPECT_NEAR(h.normal[1], -1, 1e-6);
  // Cylinder side and cap.
  const auto cyl = parse_caption("a green cylinder").object;
  h = cast(cyl, {3, 0.3, 0}, {-1, 0, 0}, &hit);
  EXPECT_NEAR(h.t, 3 - 0.55, 1e-6);
  EXPECT_NEAR(h.normal[0], 1, 1e-6);
  h = cast(cyl, {0.2, 3, 0.2}, {0, -1, 0}, &hit);
  EXPECT_NEAR(h.t, 3 - 0.55, 1e-6);
  EXPECT_NEAR(h.normal[1], 1, 1e-6);
  // Mushroom cap: a hemisphere of radius 0.6 at the origin.
  const auto mushroom = parse_caption("a mushroom").object;
  h = cast(mushroom, {0.3, 3, 0}, {0, -1, 0}, &hit);
  ASSERT_TRUE(hit);
  const double y = std::sqrt(0.36 - 0.09);
  EXPECT_NEAR(h.t, 3 - y, 1e-6);
  EXPECT_NEAR(h.normal[0], 0.3 / 0.6, 1e-6);
  EXPECT_NEAR(h.normal[1], y / 0.6, 1e-6);
  EXPECT_FLOAT_EQ(h.albedo[0], 0.85f);
  h = cast(mushroom, {0.4, -3, 0}, {0, 1, 0}, &hit);  // under the cap, outside the stem
  EXPECT_NEAR(h.t, 3, 1e-6);
  EXPECT_NEAR(h.normal[1], -1, 1e-6);
  // Dumbbell: the bar lies along X (radius 0.08), the bells are spheres of radius 0.28 at x = ±0.55.
  const auto dumbbell = parse_caption("a dumbbell").object;
  h = cast(dumbbell, {0, 0, 3}, {0, 0, -1}, &hit);
  ASSERT_TRUE(hit);
  EXPECT_NEAR(h.t, 3 - 0.08, 1e-6);
  EXPECT_NEAR(h.normal[2], 1, 1e-6);
  h = cast(dumbbell, {0, 3, 0}, {0, -1, 0}, &hit);
  EXPECT_NEAR(h.t, 3 - 0.08, 1e-6);
  EXPECT_NEAR(h.normal[1], 1, 1e-6);
  h = cast(dumbbell, {3, 0, 0}, {-1, 0, 0}, &hit);
  EXPECT_NEAR(h.t, 3 - 0.83, 1e-6);
  EXPECT_TRUE(inside(dumbbell, 0.3f, 0, 0));
  EXPECT_FALSE(inside(dumbbell, 0.2f, 0.1f, 0));
}

// Every object of the grammar (a sample of stacks): the exact hit agrees with marching the inside test,
// the hit point lies on the hit part's surface, and the normal faces the ray.
TEST(Scene, IntersectionsAgreeWithMarchingInside) {
  std::vector<std::string> captions = {"a red cube",
                                       "a red sphere",
                                       "a red cylinder",
                                       "a red cone",
                                       "a red torus",
                                       "a tree",
                                       "a mushroom",
                                       "a table",
                                       "a chair",
                                       "a dumbbell",
                                       "a red torus on top of a blue cone",
                                       "a gray cone on top of a green torus"};
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> uni(-0.6, 0.6);
  int rays = 0, mismatches = 0;
  for (const auto& c : captions) {
    const SynthScene scene(parse_caption(c).object);
    for (int k = 0; k < 150; ++k) {
      std::array<double, 3> o{normal(rng), normal(rng), normal(rng)};
      const double on = std::sqrt(o[0] * o[0] + o[1] * o[1] + o[2] * o[2]);
      for (auto& x : o) x *= 2.5 / on;
      // Aim near the origin so that most rays hit.
      std::array<double, 3> d{uni(rng) - o[0], uni(rng) - o[1], uni(rng) - o[2]};
      const double dn = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
      for (auto& x : d) x /= dn;
      SynthHit hit;
      const bool got = scene.intersect(o, d, &hit);
      const double step = 2e-4;
      double march = -1;
      for (double t = 0; t < 5; t += step)
        if (scene.inside(o[0] + t * d[0], o[1] + t * d[1], o[2] + t * d[2])) {
          march = t;
          break;
        }
      ++rays;
      if (got != (march >= 0) || (got && std::abs(hit.t - march) > 2 * step)) {
        ++mismatches;  // only grazing rays may disagree
        continue;
      }
      if (!got) continue;
      const std::array<double, 3> p{o[0] + hit.t * d[0], o[1] + hit.t * d[1], o[2] + hit.t * d[2]};
      EXPECT_LT(scene.surface_distance(hit.part, p), 1e-6) << c;
      EXPECT_LT(hit.normal[0] * d[0] + hit.normal[1] * d[1] + hit.normal[2] * d[2], 1e-6) << c;
      const double nn =
          hit.normal[0] * hit.normal[0] + hit.normal[1] * hit.normal[1] + hit.normal[2] * hit.normal[2];
      EXPECT_NEAR(nn, 1.0, 1e-5);
      // Stepping out along the normal leaves the object; the distance grows accordingly.
      const std::array<double, 3> q{p[0] + 0.01 * hit.normal[0], p[1] + 0.01 * hit.normal[1],
                                    p[2] + 0.01 * hit.normal[2]};
      EXPECT_LE(scene.surface_distance(hit.part, q), 0.01 + 1e-6) << c;
      EXPECT_GT(scene.surface_distance(hit.part, q), 0.0) << c;
    }
  }
  EXPECT_LE(mismatches, rays / 200) << mismatches << " of " << rays;
}

TEST(Scene, NearestPartAlbedo) {
  const auto tree = parse_caption("a tree").object;
  auto pts = at::tensor({0.f, 0.9f, 0.f, 0.f, -0.9f, 0.f, 0.12f, -0.5f, 0.f, 0.3f, 0.f, 0.f}).view({4, 3});
  auto c = nearest_part_albedo(tree, pts);
  ASSERT_EQ(c.sizes(), (at::IntArrayRef{4, 3}));
  const auto green = color_albedo("green"), brown = color_albedo("brown");
  EXPECT_FLOAT_EQ(c[0][1].item<float>(), green[1]);
  EXPECT_FLOAT_EQ(c[1][1].item<float>(), brown[1]);
  EXPECT_FLOAT_EQ(c[2][1].item<float>(), brown[1]);
  EXPECT_FLOAT_EQ(c[3][1].item<float>(), green[1]);
  const auto mushroom = parse_caption("a mushroom").object;
  auto m = nearest_part_albedo(mushroom, at::tensor({0.f, 0.7f, 0.f, 0.2f, -0.5f, 0.f}).view({2, 3}));
  EXPECT_FLOAT_EQ(m[0][0].item<float>(), color_albedo("red")[0]);
  EXPECT_FLOAT_EQ(m[1][0].item<float>(), color_albedo("yellow")[0]);
}

TEST(Scene, PolynomialRoots) {
  // (x - 0.1)(x - 0.1001)(x - 0.5)(x - 0.9): close roots must both be found.
  const double r[4] = {0.1, 0.1001, 0.5, 0.9};
  // Expand the product.
  double c[5] = {1, 0, 0, 0, 0};
  int deg = 0;
  for (double root : r) {
    for (int i = deg + 1; i >= 1; --i) c[i] = c[i - 1] - root * c[i];
    c[0] = -root * c[0];
    ++deg;
  }
  double out[4];
  ASSERT_EQ(polynomial_roots(c, 4, 0, 1, out), 4);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[i], r[i], 1e-10);
  ASSERT_EQ(polynomial_roots(c, 4, 0.3, 1, out), 2);
  EXPECT_NEAR(out[0], 0.5, 1e-12);
  const double no_real[3] = {1, 0, 1};  // x² + 1
  EXPECT_EQ(polynomial_roots(no_real, 2, -10, 10, out), 0);
}

}  // namespace
}  // namespace nd
