#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/error.h"
#include "core/threads.h"
#include "render/occupancy_grid.h"

namespace nd {
namespace {

// σ = 100 inside the ball of radius 0.5, 0 outside.
at::Tensor ball_density(const at::Tensor& p) { return (p.norm(2, 1) < 0.5f).to(at::kFloat) * 100.0f; }

TEST(OccupancyGrid, CellIndexConvention) {
  OccupancyGrid grid(4, 2.0);
  EXPECT_DOUBLE_EQ(grid.cell_size(), 1.0);
  auto c = grid.cell_centers();
  // Cell (ix, iy, iz) = (1, 2, 3) → index 1 + 2·4 + 3·16 = 57, centre (-2 + 1.5, -2 + 2.5, -2 + 3.5).
  EXPECT_FLOAT_EQ(c[57][0].item<float>(), -0.5f);
  EXPECT_FLOAT_EQ(c[57][1].item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(c[57][2].item<float>(), 1.5f);
  for (int64_t i = 0; i < 64; ++i) EXPECT_EQ(grid.cell_of(c[i].contiguous().data_ptr<float>()), i);
  const float edge[3] = {2.0f, -2.0f, 2.0f}, outside[3] = {0.0f, 2.01f, 0.0f};
  EXPECT_EQ(grid.cell_of(edge), 3 + 0 + 3 * 16);
  EXPECT_TRUE(grid.is_occupied(edge));  // a new grid is fully occupied
  EXPECT_FALSE(grid.is_occupied(outside));
  EXPECT_DOUBLE_EQ(grid.occupied_fraction(), 1.0);
  EXPECT_THROW(OccupancyGrid(0, 1.0), InputError);
}

TEST(OccupancyGrid, BallIsMarkedAndCornersAreNot) {
  set_threads(0);
  OccupancyGrid grid(32, 1.0);
  std::mt19937_64 rng(3);
  int64_t calls = 0, max_chunk = 0;
  auto fn = [&](const at::Tensor& p) {
    ++calls;
    max_chunk = std::max(max_chunk, p.size(0));
    EXPECT_FALSE(at::GradMode::is_enabled());
    return ball_density(p);
  };
  grid.update(fn, 0, rng);
  EXPECT_EQ(calls, (32 * 32 * 32 + OccupancyGrid::kChunk - 1) / OccupancyGrid::kChunk);
  EXPECT_LE(max_chunk, OccupancyGrid::kChunk);
  auto centers = grid.cell_centers();
  const auto r = centers.norm(2, 1);
  const double half_diag = std::sqrt(3.0) * grid.cell_size() / 2;
  auto inside = r<0.5 - half_diag, outside = r> 0.5 + half_diag;
  auto occ = grid.occupied();
  EXPECT_TRUE(occ.masked_select(inside).all().item<bool>());
  EXPECT_FALSE(occ.masked_select(outside).any().item<bool>());
  EXPECT_TRUE(at::allclose(grid.density().masked_select(inside), at::full({1}, 100.0f)));
  const float corner[3] = {0.95f, 0.95f, -0.95f}, centre[3] = {0, 0, 0};
  EXPECT_FALSE(grid.is_occupied(corner));
  EXPECT_TRUE(grid.is_occupied(centre));
  const double ball_fraction = 4.0 / 3.0 * M_PI * 0.125 / 8.0;
  EXPECT_NEAR(grid.occupied_fraction(), ball_fraction, 0.03);

  // After the warm-up: occupied cells and random cells are evaluated, the ball stays marked and the
  // densities of evaluated cells decay towards the new estimate.
  auto before = grid.density().clone();
  grid.update(ball_density, 1000, rng, 0.5);
  EXPECT_TRUE(grid.occupied().masked_select(inside).all().item<bool>());
  EXPECT_FALSE(grid.occupied().masked_select(outside).any().item<bool>());
  // Now the ball is gone: evaluated (occupied) cells halve.
  grid.update([](const at::Tensor& p) { return at::zeros({p.size(0)}); }, 1000, rng, 0.5);
  EXPECT_TRUE(at::allclose(grid.density().masked_select(inside), at::full({1}, 50.0f)));
  EXPECT_TRUE(at::equal(grid.density().masked_select(outside), before.masked_select(outside)));

  grid.mark_all_occupied();
  EXPECT_DOUBLE_EQ(grid.occupied_fraction(), 1.0);
  EXPECT_EQ(grid.density().abs().sum().item<float>(), 0.0f);
}

TEST(OccupancyGrid, ThresholdIsMinOfMeanAndOpticalThickness) {
  // Uniform density 1 everywhere except one cell: mean ≈ 1, threshold 0.01 / min_step.
  OccupancyGrid grid(8, 1.0);
  std::mt19937_64 rng(1);
  auto fn = [](const at::Tensor& p) {
    auto s = at::ones({p.size(0)});
    return s.masked_fill((p.amin(1) > 0.75f), 1000.0f);  // the corner cell (7,7,7)
  };
  // min_step 0.001: optical-thickness threshold 10 > mean (≈ 2.95): cells above the mean are occupied.
  grid.update(fn, 0, rng, 0.95, 0.01, 0.001);
  EXPECT_EQ(grid.occupied().sum().item<int64_t>(), 1);
  EXPECT_TRUE(grid.occupied()[7 + 7 * 8 + 7 * 64].item<bool>());
  // min_step 0.1: threshold 0.1 < mean: every cell with density 1 is occupied.
  grid.update(fn, 0, rng, 0.95, 0.01, 0.1);
  EXPECT_DOUBLE_EQ(grid.occupied_fraction(), 1.0);
}

TEST(OccupancyGrid, DeterministicForAGivenRngState) {
  OccupancyGrid a(16, 1.0), b(16, 1.0);
  std::mt19937_64 ra(5), rb(5);
  auto noisy = [](const at::Tensor& p) { return (p * 7).sin().sum(1).abs() * 10; };
  set_threads(1);
  a.update(noisy, 0, ra);
  a.update(noisy, 300, ra);
  set_threads(0);
  b.update(noisy, 0, rb);
  b.update(noisy, 300, rb);
  EXPECT_TRUE(at::equal(a.density(), b.density()));
  EXPECT_TRUE(at::equal(a.occupied(), b.occupied()));
  EXPECT_EQ(ra(), rb());
}

TEST(OccupancyGrid, StateRoundTrip) {
  OccupancyGrid grid(16, 1.5);
  std::mt19937_64 rng(2);
  grid.update(ball_density, 0, rng);
  auto state = grid.state();
  EXPECT_EQ(state.at("occupied").scalar_type(), at::kByte);
  OccupancyGrid copy(16, 1.5);
  copy.load_state(state);
  EXPECT_TRUE(at::equal(copy.density(), grid.density()));
  EXPECT_TRUE(at::equal(copy.occupied(), grid.occupied()));
  const float p[3] = {0.1f, -0.2f, 0.3f}, q[3] = {1.4f, 1.4f, 1.4f};
  EXPECT_EQ(copy.is_occupied(p), grid.is_occupied(p));
  EXPECT_EQ(copy.is_occupied(q), grid.is_occupied(q));
  // The state is a copy: changing the grid later does not change it.
  grid.mark_all_occupied();
  EXPECT_FALSE(at::equal(state.at("density"), grid.density()));

  OccupancyGrid other_res(8, 1.5), other_bound(16, 1.0);
  EXPECT_THROW(other_res.load_state(state), InputError);
  EXPECT_THROW(other_bound.load_state(state), InputError);
  state.erase("density");
  EXPECT_THROW(copy.load_state(state), InputError);
}

TEST(OccupancyGrid, Timing) {
  set_threads(0);
  OccupancyGrid grid(64, 1.0);
  std::mt19937_64 rng(1);
  const auto t0 = std::chrono::steady_clock::now();
  grid.update(ball_density, 0, rng);
  const double full = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto t1 = std::chrono::steady_clock::now();
  grid.update(ball_density, 1000, rng);
  const double later = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::printf(
      "[timing] occupancy grid 64^3 update (analytic density): full sweep %.2f ms, after warm-up %.2f ms\n",
      full * 1e3, later * 1e3);
}

}  // namespace
}  // namespace nd
