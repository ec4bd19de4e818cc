#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/error.h"
#include "core/threads.h"
#include "render/occupancy_grid.h"
#include "render/ray_aabb.h"
#include "render/ray_marcher.h"

namespace nd {
namespace {

TEST(RayAabb, HitsAndMisses) {
  auto o = at::tensor({0.f,  0.f,  3.f,    // straight in along -z
                       0.f,  0.f,  0.f,    // from the centre
                       0.f,  2.f,  3.f,    // parallel to the box, above it (zero x/y direction)
                       0.f,  0.f,  3.f,    // pointing away
                       -3.f, -3.f, -3.f,   // along the diagonal
                       0.f,  0.f,  1.02f,  // just outside, hits only before min_near... see below
                       1.f,  0.f,  3.f})   // grazing the x = 1 face
               .view({-1, 3});
  const float s = 1.0f / std::sqrt(3.0f);
  auto d = at::tensor({0.f, 0.f, -1.f, 1.f, 0.f, 0.f, 0.f, 0.f, -1.f, 0.f, 0.f,
                       1.f, s,   s,    s,   0.f, 0.f, 1.f, 0.f, 0.f,  -1.f})
               .view({-1, 3});
  at::Tensor near, far;
  ray_aabb(o, d, 1.0, 0.05, near, far);
  ASSERT_EQ(near.sizes(), at::IntArrayRef({7}));
  EXPECT_NEAR(near[0].item<float>(), 2.0f, 1e-6);
  EXPECT_NEAR(far[0].item<float>(), 4.0f, 1e-6);
  EXPECT_NEAR(near[1].item<float>(), 0.05f, 1e-7);  // clamped to min_near
  EXPECT_NEAR(far[1].item<float>(), 1.0f, 1e-6);
  EXPECT_EQ(near[2].item<float>(), far[2].item<float>());
  EXPECT_EQ(near[3].item<float>(), far[3].item<float>());
  EXPECT_NEAR(near[4].item<float>(), 2 * std::sqrt(3.0f), 1e-5);
  EXPECT_NEAR(far[4].item<float>(), 4 * std::sqrt(3.0f), 1e-5);
  EXPECT_EQ(near[5].item<float>(), far[5].item<float>());  // the box is behind the origin
  EXPECT_NEAR(near[6].item<float>(), 2.0f, 1e-6);          // on the face: counts as a hit
  // float64 works too, and a large min_near removes the whole hit.
  ray_aabb(o.to(at::kDouble), d.to(at::kDouble), 1.0, 5.0, near, far);
  EXPECT_EQ(near.scalar_type(), at::kDouble);
  EXPECT_EQ(near[0].item<double>(), far[0].item<double>());
  EXPECT_NEAR(near[4].item<double>(), 5.0, 1e-12);
}

// Rays from a sphere of radius 3 towards random points of [-extent, extent]^3 (extent > 1: some miss).
void random_rays(int64_t R, uint64_t seed, at::Tensor& origins, at::Tensor& dirs, double extent = 1.3) {
  at::manual_seed(int64_t(seed));
  auto o = at::randn({R, 3});
  o = o / o.norm(2, 1, true) * 3.0;
  auto target = (at::rand({R, 3}) * 2 - 1) * extent;
  auto d = target - o;
  origins = o;
  dirs = d / d.norm(2, 1, true);
}

void expect_same_samples(const RaySamples& a, const RaySamples& b) {
  ASSERT_TRUE(at::equal(a.ray_counts, b.ray_counts));
  ASSERT_TRUE(at::equal(a.ray_offsets, b.ray_offsets));
  EXPECT_TRUE(at::equal(a.positions, b.positions));
  EXPECT_TRUE(at::equal(a.dirs, b.dirs));
  EXPECT_TRUE(at::equal(a.ts, b.ts));
  EXPECT_TRUE(at::equal(a.deltas, b.deltas));
}

TEST(RayMarcher, FullGridTilesNearToFar) {
  set_threads(0);
  at::Tensor o, d;
  random_rays(300, 1, o, d);
  MarchOptions opts;
  opts.max_steps = 256;
  OccupancyGrid full(16, 1.0);  // a new grid is fully occupied
  auto with_grid = march_rays(o, d, 1.0, &full, opts, nullptr);
  auto no_grid = march_rays(o, d, 1.0, nullptr, opts, nullptr);
  expect_same_samples(with_grid, no_grid);

  at::Tensor near, far;
  ray_aabb(o, d, 1.0, opts.min_near, near, far);
  const double dt = 2 * std::sqrt(3.0) / opts.max_steps;
  int64_t hits = 0;
  for (int64_t r = 0; r < o.size(0); ++r) {
    const int64_t off = no_grid.ray_offsets[r].item<int64_t>(), n = no_grid.ray_counts[r].item<int64_t>();
    const double nr = near[r].item<float>(), fr = far[r].item<float>();
    if (fr <= nr) {
      EXPECT_EQ(n, 0) << r;
      continue;
    }
    EXPECT_GE(double(n), (fr - nr) / dt - 1e-3) << r;  // ceil((far − near) / dt), up to rounding
    EXPECT_LT(double(n), (fr - nr) / dt + 1 + 1e-3) << r;
    ++hits;
    auto ts = no_grid.ts.slice(0, off, off + n).to(at::kDouble);
    auto dl = no_grid.deltas.slice(0, off, off + n).to(at::kDouble);
    auto start = ts - dl / 2, end = ts + dl / 2;
    EXPECT_NEAR(start[0].item<double>(), nr, 1e-5);
    EXPECT_NEAR(end[n - 1].item<double>(), fr, 1e-5);
    if (n > 1) {
      EXPECT_LT((start.slice(0, 1) - end.slice(0, 0, n - 1)).abs().max().item<double>(), 1e-5);
      EXPECT_LT((dl.slice(0, 0, n - 1) - dt).abs().max().item<double>(), 1e-6);
    }
    // Positions are origin + t·dir.
    auto expect = o[r].unsqueeze(0) + ts.to(at::kFloat).unsqueeze(1) * d[r].unsqueeze(0);
    EXPECT_LT((no_grid.positions.slice(0, off, off + n) - expect).abs().max().item<float>(), 1e-5);
  }
  EXPECT_GT(hits, 150);
}

// A res³ grid over [-1, 1]^3 whose occupied cells are exactly those of the sub-cube [-0.25, 0.25]^3 — and,
// with `speck`, one more cell near a corner, so that one block there is occupied by a single cell.
OccupancyGrid central_cube_grid(int res = 16, bool speck = false) {
  OccupancyGrid grid(res, 1.0);
  auto state = grid.state();
  auto centers = grid.cell_centers();
  at::Tensor occupied = centers.abs().amax(1) < 0.25f;
  if (speck) occupied[grid.cell_of(std::array<float, 3>{0.7f, -0.55f, 0.62f}.data())] = true;
  state["occupied"] = occupied.to(at::kByte);
  grid.load_state(state);
  return grid;
}

void check_culling_invariance(const MarchOptions& opts, uint64_t seed, int res = 16) {
  at::Tensor o, d;
  random_rays(400, seed, o, d, 0.4);  // most rays cross the occupied sub-cube
  auto grid = central_cube_grid(res, res >= 32);
  if (res == 16) EXPECT_NEAR(grid.occupied_fraction(), 64.0 / 4096.0, 1e-12);
  EXPECT_NE(grid.block_bytes(), nullptr);  // empty blocks are leapt over whole (none at 16³: all touch it)
  std::mt19937_64 rng_a(seed), rng_b(seed);
  auto culled = march_rays(o, d, 1.0, &grid, opts, &rng_a);
  auto all = march_rays(o, d, 1.0, nullptr, opts, &rng_b);
  ASSERT_GT(culled.ts.size(0), 2000);  // (cone steps are longer: fewer samples)
  EXPECT_LT(culled.ts.size(0), all.ts.size(0) / 3);
  // Every culled sample lies in the sub-cube (or the speck's cell).
  if (res < 32) EXPECT_LE(culled.positions.abs().max().item<float>(), 0.25f + 1e-6f);
  // And the culled samples are exactly the unculled ones that fall in occupied cells.
  std::vector<int64_t> keep, counts;
  const float* pos = all.positions.data_ptr<float>();
  const int64_t* offs = all.ray_offsets.data_ptr<int64_t>();
  const int64_t* cnts = all.ray_counts.data_ptr<int64_t>();
  for (int64_t r = 0; r < o.size(0); ++r) {
    int64_t c = 0;
    for (int64_t i = offs[r]; i < offs[r] + cnts[r]; ++i) {
      if (grid.is_occupied(pos + 3 * i)) {
        keep.push_back(i);
        ++c;
      }
    }
    counts.push_back(c);
  }
  auto idx = at::tensor(keep, at::kLong);
  ASSERT_TRUE(at::equal(culled.ray_counts, at::tensor(counts, at::kLong)));
  EXPECT_TRUE(at::equal(culled.positions, all.positions.index_select(0, idx)));
  EXPECT_TRUE(at::equal(culled.ts, all.ts.index_select(0, idx)));
  EXPECT_TRUE(at::equal(culled.deltas, all.deltas.index_select(0, idx)));
}

TEST(RayMarcher, CullingKeepsTheSamplesInOccupiedSpace) {
  set_threads(0);
  MarchOptions opts;
  opts.max_steps = 512;
  check_culling_invariance(opts, 2);
  opts.jitter = true;
  check_culling_invariance(opts, 3);
  opts.cone_angle = 1.0 / 64;
  opts.max_steps = 1024;
  check_culling_invariance(opts, 4);
  // Grids with blocks.
  for (double cone : {0.0, 1.0 / 256}) {
    opts.cone_angle = cone;
    check_culling_invariance(opts, 5, 64);
    check_culling_invariance(opts, 6, 128);
  }
}

TEST(RayMarcher, JitterIsDeterministicAndWithinOneStep) {
  at::Tensor o, d;
  random_rays(200, 5, o, d);
  MarchOptions opts;
  opts.max_steps = 128;
  opts.jitter = true;
  std::mt19937_64 a(9), b(9), c(10);
  auto sa = march_rays(o, d, 1.0, nullptr, opts, &a);
  set_threads(1);  // another thread split gives the same samples
  auto sb = march_rays(o, d, 1.0, nullptr, opts, &b);
  set_threads(0);
  expect_same_samples(sa, sb);
  auto sc = march_rays(o, d, 1.0, nullptr, opts, &c);
  EXPECT_FALSE(at::equal(sa.ts.slice(0, 0, 20), sc.ts.slice(0, 0, 20)));
  at::Tensor near, far;
  ray_aabb(o, d, 1.0, opts.min_near, near, far);
  const double dt = 2 * std::sqrt(3.0) / opts.max_steps;
  for (int64_t r = 0; r < o.size(0); ++r) {
    if (sa.ray_counts[r].item<int64_t>() == 0) continue;
    const int64_t off = sa.ray_offsets[r].item<int64_t>();
    const double start = sa.ts[off].item<float>() - sa.deltas[off].item<float>() / 2;
    EXPECT_GE(start, near[r].item<float>() - 1e-5);
    EXPECT_LT(start, near[r].item<float>() + dt + 1e-5);
  }
}

TEST(RayMarcher, ConeStepsGrowAndCapsHold) {
  at::Tensor o = at::tensor({0.f, 0.f, 3.f}).view({1, 3}), d = at::tensor({0.f, 0.f, -1.f}).view({1, 3});
  MarchOptions opts;
  opts.cone_angle = 0.01;
  auto s = march_rays(o, d, 1.0, nullptr, opts, nullptr);
  const int64_t n = s.ts.size(0);
  ASSERT_GT(n, 10);
  // t in [2, 4]: dt = t/100 in [0.02, 0.04], below the default cap 2√3/128 ≈ 0.027 only near the start.
  EXPECT_NEAR(s.deltas[0].item<float>(), 0.02f, 1e-5);
  EXPECT_NEAR(s.deltas[n - 2].item<float>(), 2 * std::sqrt(3.0f) / 128, 1e-6);
  EXPECT_TRUE((s.deltas.slice(0, 1, n - 1) >= s.deltas.slice(0, 0, n - 2) - 1e-7f).all().item<bool>());
  opts.cone_angle = 0;
  opts.max_samples_per_ray = 7;
  EXPECT_EQ(march_rays(o, d, 1.0, nullptr, opts, nullptr).ray_counts[0].item<int64_t>(), 7);
  opts.max_steps = 0;
  EXPECT_THROW(march_rays(o, d, 1.0, nullptr, opts, nullptr), InputError);
}

TEST(RayMarcher, Timing) {
  set_threads(0);
  at::Tensor o, d;
  random_rays(4096, 7, o, d);
  OccupancyGrid ball(128, 1.0);  // fit's grid
  std::mt19937_64 rng(1);
  ball.update([](const at::Tensor& p) { return (p.norm(2, 1) < 0.5f).to(at::kFloat) * 100.0f; }, 0, rng);
  MarchOptions opts;
  opts.jitter = true;
  const OccupancyGrid* grids[2] = {nullptr, &ball};
  for (const OccupancyGrid* g : grids) {
    double best = 1e9;
    int64_t S = 0;
    for (int it = 0; it < 3; ++it) {
      const auto t0 = std::chrono::steady_clock::now();
      auto s = march_rays(o, d, 1.0, g, opts, &rng);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      S = s.ts.size(0);
    }
    std::printf("[timing] march_rays %s, 4096 rays, 1024 steps: %lld samples, %d threads: %.2f ms\n",
                g ? "ball grid 128^3" : "no grid", (long long)S, num_threads(), best * 1e3);
  }
}

}  // namespace
}  // namespace nd
