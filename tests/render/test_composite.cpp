#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/threads.h"
#include "render/composite.h"

namespace nd {
namespace {

struct Packed {
  at::Tensor sigmas, rgbs, deltas, ts, offsets, counts;
};

// Random packed rays: empty rays, 1-sample rays, longer rays, and a few samples that no ray owns (gaps).
Packed random_packed(int64_t R, int64_t max_count, int64_t C, at::ScalarType dtype, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> off(R), cnt(R);
  int64_t s = 0;
  for (int64_t r = 0; r < R; ++r) {
    cnt[r] = r % 7 == 0 ? 0 : r % 7 == 1 ? 1 : int64_t(rng() % (max_count + 1));
    if (r % 5 == 2) s += 1;  // a gap
    off[r] = s;
    s += cnt[r];
  }
  at::manual_seed(int64_t(seed));
  Packed p;
  const auto opts = at::TensorOptions().dtype(dtype);
  // Mix of thin and thick samples so that transmittance spans many orders of magnitude.
  p.sigmas = at::exp(at::randn({s}, opts) * 2.0);
  p.rgbs = at::rand({s, C}, opts);
  p.deltas = at::rand({s}, opts) * 0.3 + 0.01;
  p.ts = at::rand({s}, opts) * 4.0;
  p.offsets = at::tensor(off, at::kLong);
  p.counts = at::tensor(cnt, at::kLong);
  return p;
}

// A loss that reads all four outputs.
struct LossWeights {
  at::Tensor a, b, c, e;
};
LossWeights random_loss(const Packed& p, uint64_t seed) {
  at::manual_seed(int64_t(seed));
  const auto opts = p.sigmas.options();
  const int64_t S = p.sigmas.size(0), R = p.offsets.size(0), C = p.rgbs.size(1);
  return {at::randn({S}, opts), at::randn({R, C}, opts), at::randn({R}, opts), at::randn({R}, opts)};
}
at::Tensor loss_of(const CompositeResult& out, const LossWeights& lw) {
  return (out.weights * lw.a).sum() + (out.rgb * lw.b).sum() + (out.depth * lw.c).sum() +
         (out.opacity * lw.e).sum();
}

struct Grads {
  CompositeResult out;
  at::Tensor sigmas, rgbs, deltas, ts;
};
template <class Fn>
Grads run(Fn fn, const Packed& p, const LossWeights& lw) {
  auto s = p.sigmas.clone().requires_grad_(true), c = p.rgbs.clone().requires_grad_(true);
  auto d = p.deltas.clone().requires_grad_(true), t = p.ts.clone().requires_grad_(true);
  Grads g;
  g.out = fn(s, c, d, t, p.offsets, p.counts);
  loss_of(g.out, lw).backward();
  g.sigmas = s.grad();
  g.rgbs = c.grad();
  g.deltas = d.grad();
  g.ts = t.grad();
  return g;
}

void expect_close(const at::Tensor& a, const at::Tensor& b, double atol, double rtol, const char* what) {
  ASSERT_TRUE(a.defined() && b.defined()) << what;
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_TRUE(at::allclose(a, b, rtol, atol))
      << what << ": max |diff| " << (a - b).abs().max().item<double>();
}

void compare_fused_reference(at::ScalarType dtype, double atol, double rtol) {
  set_threads(0);
  for (int64_t C : {3, 1, 4}) {
    auto p = random_packed(97, 40, C, dtype, 7 + C);
    auto lw = random_loss(p, 11 + C);
    auto f = run(composite, p, lw);
    auto r = run(composite_reference, p, lw);
    expect_close(f.out.weights, r.out.weights, atol, rtol, "weights");
    expect_close(f.out.rgb, r.out.rgb, atol, rtol, "rgb");
    expect_close(f.out.depth, r.out.depth, atol, rtol, "depth");
    expect_close(f.out.opacity, r.out.opacity, atol, rtol, "opacity");
    expect_close(f.sigmas, r.sigmas, atol, rtol, "d sigmas");
    expect_close(f.rgbs, r.rgbs, atol, rtol, "d rgbs");
    expect_close(f.deltas, r.deltas, atol, rtol, "d deltas");
    expect_close(f.ts, r.ts, atol, rtol, "d ts");
  }
}

TEST(Composite, FusedMatchesReferenceFloat32) { compare_fused_reference(at::kFloat, 2e-5, 1e-4); }
TEST(Composite, FusedMatchesReferenceFloat64) { compare_fused_reference(at::kDouble, 1e-11, 1e-9); }

TEST(Composite, UnownedSamplesAndEmptyRays) {
  auto p = random_packed(30, 6, 3, at::kFloat, 3);
  auto out = composite(p.sigmas, p.rgbs, p.deltas, p.ts, p.offsets, p.counts);
  auto owned = at::zeros({p.sigmas.size(0)}, at::kBool);
  for (int64_t r = 0; r < 30; ++r) {
    const int64_t o = p.offsets[r].item<int64_t>(), n = p.counts[r].item<int64_t>();
    owned.slice(0, o, o + n).fill_(true);
    if (n == 0) {
      EXPECT_EQ(out.opacity[r].item<float>(), 0.0f);
      EXPECT_EQ(out.depth[r].item<float>(), 0.0f);
      EXPECT_EQ(out.rgb[r].abs().sum().item<float>(), 0.0f);
    }
  }
  EXPECT_EQ(out.weights.masked_select(~owned).abs().sum().item<float>(), 0.0f);
  EXPECT_TRUE((out.opacity <= 1.0f + 1e-6f).all().item<bool>());
}

// Central finite differences of a float64 loss with respect to every entry of x.
at::Tensor finite_difference(const std::function<double()>& loss, at::Tensor x, double h = 1e-6) {
  auto g = at::zeros_like(x);
  auto xf = x.view({-1});
  auto gf = g.view({-1});
  for (int64_t i = 0; i < xf.size(0); ++i) {
    const double v = xf[i].item<double>();
    xf[i] = v + h;
    const double up = loss();
    xf[i] = v - h;
    const double down = loss();
    xf[i] = v;
    gf[i] = (up - down) / (2 * h);
  }
  return g;
}

TEST(Composite, GradientsMatchFiniteDifferencesFloat64) {
  auto p = random_packed(9, 5, 3, at::kDouble, 5);
  p.sigmas.clamp_max_(8.0);  // keep the third derivatives (finite-difference error) moderate
  auto lw = random_loss(p, 6);
  for (auto fn : {composite_reference, composite}) {
    auto g = run(fn, p, lw);
    auto loss = [&] {
      at::NoGradGuard ng;
      return loss_of(fn(p.sigmas, p.rgbs, p.deltas, p.ts, p.offsets, p.counts), lw).item<double>();
    };
    expect_close(g.sigmas, finite_difference(loss, p.sigmas), 1e-7, 1e-6, "fd sigmas");
    expect_close(g.rgbs, finite_difference(loss, p.rgbs), 1e-7, 1e-6, "fd rgbs");
    expect_close(g.deltas, finite_difference(loss, p.deltas), 1e-7, 1e-6, "fd deltas");
    expect_close(g.ts, finite_difference(loss, p.ts), 1e-7, 1e-6, "fd ts");
  }
}

TEST(Composite, SingleOutputLossesGiveGradients) {
  // Only one output feeds the loss: the others' gradients are undefined and must count as zero.
  auto p = random_packed(20, 8, 3, at::kDouble, 9);
  auto s = p.sigmas.clone().requires_grad_(true);
  auto s_ref = p.sigmas.clone().requires_grad_(true);
  composite(s, p.rgbs, p.deltas, p.ts, p.offsets, p.counts).opacity.sum().backward();
  composite_reference(s_ref, p.rgbs, p.deltas, p.ts, p.offsets, p.counts).opacity.sum().backward();
  expect_close(s.grad(), s_ref.grad(), 1e-12, 1e-9, "opacity only");
  s.mutable_grad().reset();
  s_ref.mutable_grad().reset();
  composite(s, p.rgbs, p.deltas, p.ts, p.offsets, p.counts).weights.pow(2).sum().backward();
  composite_reference(s_ref, p.rgbs, p.deltas, p.ts, p.offsets, p.counts).weights.pow(2).sum().backward();
  expect_close(s.grad(), s_ref.grad(), 1e-12, 1e-9, "weights only");
}

TEST(Composite, KnownAnswers) {
  auto one = at::ones({1}, at::kLong), zero = at::zeros({1}, at::kLong);
  // A single opaque sample: all the light comes from it.
  auto out = composite(at::full({1}, 1e4f), at::tensor({0.2f, 0.4f, 0.6f}).view({1, 3}), at::ones({1}),
                       at::full({1}, 2.5f), zero, one);
  EXPECT_NEAR(out.opacity.item<float>(), 1.0f, 1e-6);
  EXPECT_NEAR(out.weights.item<float>(), 1.0f, 1e-6);
  EXPECT_NEAR(out.depth.item<float>(), 2.5f, 1e-5);
  EXPECT_NEAR(out.rgb[0][1].item<float>(), 0.4f, 1e-6);
  // Constant σ over length L, cut into n segments: opacity 1 − exp(−σL), whatever n.
  const double sigma = 1.7, L = 0.9;
  for (int64_t n : {1, 3, 64}) {
    auto ts = (at::arange(n, at::kDouble) + 0.5) * (L / n);
    auto res = composite_reference(at::full({n}, sigma, at::kDouble), at::full({n, 3}, 0.5, at::kDouble),
                                   at::full({n}, L / n, at::kDouble), ts, zero, at::full({1}, n, at::kLong));
    auto fused = composite(at::full({n}, sigma, at::kDouble), at::full({n, 3}, 0.5, at::kDouble),
                           at::full({n}, L / n, at::kDouble), ts, zero, at::full({1}, n, at::kLong));
    EXPECT_NEAR(res.opacity.item<double>(), 1 - std::exp(-sigma * L), 1e-12) << n;
    EXPECT_NEAR(fused.opacity.item<double>(), 1 - std::exp(-sigma * L), 1e-12) << n;
    EXPECT_NEAR(fused.rgb[0][2].item<double>(), 0.5 * (1 - std::exp(-sigma * L)), 1e-12) << n;
  }
  // Zero density: nothing.
  auto empty = composite(at::zeros({4}), at::ones({4, 3}), at::ones({4}), at::ones({4}), zero,
                         at::full({1}, 4, at::kLong));
  EXPECT_EQ(empty.opacity.item<float>(), 0.0f);
}

TEST(Composite, RejectsBadInput) {
  auto p = random_packed(5, 4, 3, at::kFloat, 1);
  auto bad_counts = p.counts.clone();
  bad_counts[4] = 1000;
  EXPECT_THROW(composite(p.sigmas, p.rgbs, p.deltas, p.ts, p.offsets, bad_counts), c10::Error);
  EXPECT_THROW(composite(p.sigmas, p.rgbs.to(at::kDouble), p.deltas, p.ts, p.offsets, p.counts), c10::Error);
  EXPECT_THROW(composite(p.sigmas, p.rgbs.view({-1}), p.deltas, p.ts, p.offsets, p.counts), c10::Error);
}

TEST(Composite, Timing) {
  set_threads(0);
  const int64_t R = 4096, N = 64;
  auto sigmas = at::rand({R * N}) * 5, rgbs = at::rand({R * N, 3}), deltas = at::full({R * N}, 0.01f);
  auto ts = at::rand({R * N}), counts = at::full({R}, N, at::kLong), offsets = at::arange(R, at::kLong) * N;
  for (int ref = 0; ref < 2; ++ref) {
    double best = 1e9;
    for (int it = 0; it < 3; ++it) {
      auto s = sigmas.clone().requires_grad_(true), c = rgbs.clone().requires_grad_(true);
      const auto t0 = std::chrono::steady_clock::now();
      auto out = ref ? composite_reference(s, c, deltas, ts, offsets, counts)
                     : composite(s, c, deltas, ts, offsets, counts);
      (out.rgb.sum() + out.depth.sum() + out.opacity.sum() + out.weights.sum()).backward();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("[timing] composite %s fwd+bwd, %lld rays x %lld samples, %d threads: %.2f ms\n",
                ref ? "reference" : "fused", (long long)R, (long long)N, num_threads(), best * 1e3);
  }
}

}  // namespace
}  // namespace nd
