#include <gtest/gtest.h>
#include <torch/utils.h>

#include <cmath>

#include "core/error.h"
#include "core/threads.h"
#include "field/hash_grid.h"

namespace nd {
namespace {

// A small grid with dense and hashed levels: scales 3, 5.35, 9.08, 15 → resolutions 4, 7, 11, 16;
// 2^9 rows → levels 2, 3 hashed. Integer scales make x01 = 1 reach corner coordinate res (wrapped).
HashGridConfig small_config(int features = 2) {
  HashGridConfig c;
  c.levels = 4;
  c.features_per_level = features;
  c.log2_table_size = 9;
  c.base_resolution = 4;
  c.finest_resolution_per_bound = 8;  // bound 2 → finest 16
  c.bound = 2.0;
  return c;
}

double max_abs(const at::Tensor& t) { return t.numel() ? t.abs().max().item<double>() : 0.0; }

TEST(HashGrid, DefaultLayout) {
  const auto layout = make_layout(HashGridConfig{});
  ASSERT_EQ(layout.levels.size(), 16u);
  EXPECT_EQ(layout.features, 2);
  EXPECT_EQ(layout.output_dim(), 32);
  // b = 128^(1/15); scale_l = 16·b^l − 1; res = ceil(scale) + 1; size = min(res³ rounded up to 8, 2^19).
  const int res[16] = {16, 23, 31, 43, 59, 81, 112, 154, 213, 295, 407, 562, 777, 1073, 1483, 2048};
  const int64_t dense_sizes[5] = {4096, 12168, 29792, 79512, 205384};
  const int64_t dense_offsets[5] = {0, 4096, 16264, 46056, 125568};
  for (int l = 0; l < 16; ++l) {
    EXPECT_EQ(layout.levels[l].resolution, res[l]) << l;
    EXPECT_EQ(layout.levels[l].hashed, l >= 5) << l;
    if (l < 5) {
      EXPECT_EQ(layout.levels[l].size, dense_sizes[l]) << l;
      EXPECT_EQ(layout.levels[l].offset, dense_offsets[l]) << l;
    } else {
      EXPECT_EQ(layout.levels[l].size, 524288) << l;
      EXPECT_EQ(layout.levels[l].offset, 330952 + (l - 5) * int64_t{524288}) << l;
    }
  }
  EXPECT_DOUBLE_EQ(layout.levels[0].scale, 15.0);
  EXPECT_NEAR(layout.levels[1].scale, 16 * std::pow(128.0, 1.0 / 15) - 1, 1e-9);
  EXPECT_DOUBLE_EQ(layout.levels[15].scale, 2047.0);
  EXPECT_EQ(layout.total_entries, 6098120);
}

TEST(HashGrid, SmallLayoutAndBadConfig) {
  const auto layout = make_layout(small_config());
  const int res[4] = {4, 7, 11, 16};
  const int64_t sizes[4] = {64, 344, 512, 512};
  for (int l = 0; l < 4; ++l) {
    EXPECT_EQ(layout.levels[l].resolution, res[l]);
    EXPECT_EQ(layout.levels[l].size, sizes[l]);
    EXPECT_EQ(layout.levels[l].hashed, l >= 2);
  }
  EXPECT_EQ(layout.total_entries, 64 + 344 + 512 + 512);
  HashGridConfig bad;
  bad.levels = 0;
  EXPECT_THROW(make_layout(bad), InputError);
  bad = {};
  bad.features_per_level = 9;
  EXPECT_THROW(make_layout(bad), InputError);
  bad = {};
  bad.bound = -1;
  EXPECT_THROW(make_layout(bad), InputError);
}

TEST(HashGrid, ModuleParameter) {
  HashGrid grid(small_config());
  auto params = grid->named_parameters();
  ASSERT_EQ(params.size(), 1u);
  ASSERT_TRUE(params.contains("table"));
  EXPECT_EQ(params["table"].sizes(), (at::IntArrayRef{1432, 2}));
  EXPECT_LE(max_abs(grid->table), 1e-4);
  EXPECT_GT(max_abs(grid->table), 0.0);
  EXPECT_EQ(grid->output_dim(), 8);
  EXPECT_EQ(grid->forward(at::zeros({5, 3})).sizes(), (at::IntArrayRef{5, 8}));
}

// Fused forward and backward (table and x) against the reference, for points `x` and a table ~U(-1,1).
void expect_matches_reference(const HashGridConfig& config, const at::Tensor& x, double tol = 2e-6) {
  const auto layout = make_layout(config);
  auto table = (at::rand({layout.total_entries, layout.features}) * 2 - 1).requires_grad_(true);
  auto xf = x.clone().requires_grad_(true), xr = x.clone().requires_grad_(true);
  auto out = hash_grid_encode(xf, table, layout);
  auto ref = hash_grid_encode_reference(xr, table, layout);
  ASSERT_EQ(out.sizes(), ref.sizes());
  EXPECT_LE(max_abs(out - ref), tol);

  auto g = at::randn(out.sizes());
  out.backward(g);  // table.grad undefined: the gradient flows through autograd
  auto fused_table_grad = table.grad().clone();
  auto fused_x_grad = xf.grad().clone();
  table.mutable_grad() = at::Tensor();
  ref.backward(g);
  auto ref_table_grad = table.grad().clone();
  // Relative to the largest entry: the x gradient carries the level scale (up to ~2000).
  EXPECT_LE(max_abs(fused_table_grad - ref_table_grad), tol * std::max(1.0, max_abs(ref_table_grad)));
  EXPECT_LE(max_abs(fused_x_grad - xr.grad()), 5 * tol * std::max(1.0, max_abs(xr.grad())));

  // table.grad defined: the kernel adds into it in place (and returns nothing to autograd).
  hash_grid_encode(x, table, layout).backward(g);
  EXPECT_LE(max_abs(table.grad() - 2 * ref_table_grad), 2 * tol * std::max(1.0, max_abs(ref_table_grad)));
}

TEST(HashGrid, FusedMatchesReferenceSmall) {
  set_threads(0);
  torch::manual_seed(1);
  for (int f : {1, 2, 3, 4, 8}) {
    SCOPED_TRACE(f);
    expect_matches_reference(small_config(f), at::rand({1000, 3}) * 4 - 2);
  }
}

TEST(HashGrid, FusedMatchesReferenceDefault) {
  set_threads(0);
  torch::manual_seed(2);
  expect_matches_reference(HashGridConfig{}, at::rand({3000, 3}) * 2 - 1);
}

TEST(HashGrid, CellBoundariesAndOutsideTheBound) {
  set_threads(0);
  torch::manual_seed(3);
  const auto config = small_config();
  const auto layout = make_layout(config);
  // x01 = k/16 lands on vertices of several levels; ±bound is the corner case where a corner
  // coordinate reaches res and wraps; points outside the bound are clamped.
  std::vector<float> v;
  for (int k = 0; k <= 16; ++k) v.push_back(-2.0f + 4.0f * k / 16);
  for (float o : {-2.5f, -2.0f, 2.0f, 3.0f, -1e6f, 1e6f}) v.push_back(o);
  const int64_t m = static_cast<int64_t>(v.size());
  auto vals = at::tensor(v);
  auto idx = at::randint(m, {600, 3}, at::kLong);
  auto x = vals.index_select(0, idx.view(-1)).view({600, 3});
  expect_matches_reference(config, x);

  // Outside points encode like their clamped versions, with a zero x gradient.
  auto table = at::rand({layout.total_entries, 2}) * 2 - 1;
  auto outside = at::tensor({2.5f, -3.0f, 0.3f, -7.0f, 0.1f, 9.0f}).view({2, 3}).requires_grad_(true);
  auto clamped = at::tensor({2.0f, -2.0f, 0.3f, -2.0f, 0.1f, 2.0f}).view({2, 3});
  auto out = hash_grid_encode(outside, table, layout);
  EXPECT_LE(max_abs(out - hash_grid_encode(clamped, table, layout)), 1e-7);
  out.sum().backward();
  auto gx = outside.grad();
  EXPECT_EQ(gx[0][0].item<float>(), 0.0f);
  EXPECT_EQ(gx[0][1].item<float>(), 0.0f);
  EXPECT_NE(gx[0][2].item<float>(), 0.0f);
  EXPECT_EQ(gx[1][0].item<float>(), 0.0f);
  EXPECT_NE(gx[1][1].item<float>(), 0.0f);
  EXPECT_EQ(gx[1][2].item<float>(), 0.0f);
}

TEST(HashGrid, EmptyAndSinglePoint) {
  set_threads(0);
  const auto layout = make_layout(small_config());
  auto table = (at::rand({layout.total_entries, 2}) - 0.5).requires_grad_(true);
  auto x0 = at::zeros({0, 3}).requires_grad_(true);
  auto out0 = hash_grid_encode(x0, table, layout);
  EXPECT_EQ(out0.sizes(), (at::IntArrayRef{0, 8}));
  out0.sum().backward();
  EXPECT_EQ(max_abs(table.grad()), 0.0);
  EXPECT_EQ(x0.grad().sizes(), (at::IntArrayRef{0, 3}));
  table.mutable_grad() = at::Tensor();
  expect_matches_reference(small_config(), at::tensor({0.3f, -1.1f, 1.7f}).view({1, 3}));
}

// More points than one kernel pass takes (2^17): the passes must join up.
TEST(HashGrid, ManyPointsInSeveralPasses) {
  set_threads(0);
  torch::manual_seed(6);
  const auto layout = make_layout(small_config());
  const int64_t n = (int64_t{1} << 17) + 1001;
  auto table = (at::rand({layout.total_entries, 2}) * 2 - 1).requires_grad_(true);
  auto x = at::rand({n, 3}) * 4 - 2;
  auto g = at::randn({n, 8});
  auto out = hash_grid_encode(x, table, layout);
  auto ref = hash_grid_encode_reference(x, table, layout);
  EXPECT_LE(max_abs(out - ref), 2e-6);
  out.backward(g);
  auto fused_grad = table.grad().clone();
  table.mutable_grad() = at::Tensor();
  ref.backward(g);
  EXPECT_LE(max_abs(fused_grad - table.grad()), 1e-5 * max_abs(table.grad()));
}

TEST(HashGrid, SameResultWithOneThread) {
  torch::manual_seed(4);
  const auto layout = make_layout(small_config());
  auto table = at::rand({layout.total_entries, 2});
  auto x = at::rand({500, 3}) * 4 - 2;
  auto g = at::randn({500, 8});
  auto run = [&](int threads) {
    set_threads(threads);
    auto gt = at::zeros_like(table);
    auto out = hash_grid_forward_cpu(x, table, layout);
    auto gx = hash_grid_backward_cpu(x, table, layout, g, gt, true);
    return std::make_tuple(out, gt, gx);
  };
  auto [o1, t1, x1] = run(1);
  auto [o2, t2, x2] = run(0);
  EXPECT_TRUE(o1.equal(o2));
  EXPECT_TRUE(t1.equal(t2));  // each level's table gradient is summed by one thread, in point order
  EXPECT_LE(max_abs(x1 - x2), 1e-5 * max_abs(x1));
  set_threads(0);
}

// The reference in float64 against central finite differences, w.r.t. x and the table.
TEST(HashGrid, ReferenceMatchesFiniteDifferences) {
  torch::manual_seed(5);
  auto config = small_config();
  config.levels = 3;
  const auto layout = make_layout(config);
  auto dbl = at::TensorOptions().dtype(at::kDouble);
  auto table = (at::rand({layout.total_entries, 2}, dbl) * 2 - 1).requires_grad_(true);
  auto x = (at::rand({6, 3}, dbl) * 3.6 - 1.8).requires_grad_(true);
  auto w = at::randn({6, 6}, dbl);
  auto loss_of = [&](const at::Tensor& xv, const at::Tensor& tv) {
    return (hash_grid_encode_reference(xv, tv, layout) * w).sum().item<double>();
  };
  (hash_grid_encode_reference(x, table, layout) * w).sum().backward();
  at::NoGradGuard no_grad;
  const double eps = 1e-6;
  auto xd = x.detach().clone(), td = table.detach().clone();
  for (int64_t i = 0; i < xd.numel(); ++i) {
    auto xp = xd.clone(), xm = xd.clone();
    xp.view(-1)[i] += eps;
    xm.view(-1)[i] -= eps;
    const double fd = (loss_of(xp, td) - loss_of(xm, td)) / (2 * eps);
    EXPECT_NEAR(x.grad().view(-1)[i].item<double>(), fd, 1e-6 * std::max(1.0, std::abs(fd))) << i;
  }
  // Table entries: every 7th (the loss is linear in the table, so this is exact up to rounding).
  for (int64_t i = 0; i < td.numel(); i += 7) {
    auto tp = td.clone(), tm = td.clone();
    tp.view(-1)[i] += eps;
    tm.view(-1)[i] -= eps;
    const double fd = (loss_of(xd, tp) - loss_of(xd, tm)) / (2 * eps);
    EXPECT_NEAR(table.grad().view(-1)[i].item<double>(), fd, 1e-7) << i;
  }
}

}  // namespace
}  // namespace nd
