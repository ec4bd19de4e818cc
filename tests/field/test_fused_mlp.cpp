// Fused MLP: fused kernels vs the plain-LibTorch reference (forward and every gradient), the reference vs
// float64 finite differences, the module's parameter names, and a timing printout.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <limits>

#include "core/error.h"
#include "core/threads.h"
#include "field/fused_mlp.h"

namespace nd {
namespace {

struct Shape {
  int in, hidden, hidden_layers, out;
  bool bias;
};

struct Params {
  std::vector<at::Tensor> weights, biases;
};

// Random weights scaled like a trained net, so that ReLUs are neither all on nor all off.
Params random_params(const Shape& s, at::ScalarType dtype = at::kFloat) {
  Params p;
  for (int l = 0; l <= s.hidden_layers; ++l) {
    const int in = l == 0 ? s.in : s.hidden, out = l == s.hidden_layers ? s.out : s.hidden;
    p.weights.push_back((at::randn({out, in}, at::kDouble) / std::sqrt(in)).to(dtype));
    if (s.bias) p.biases.push_back((0.1 * at::randn({out}, at::kDouble)).to(dtype));
  }
  return p;
}

std::vector<at::Tensor> with_grad(const std::vector<at::Tensor>& ts) {
  std::vector<at::Tensor> r;
  for (const at::Tensor& t : ts) r.push_back(t.detach().clone().requires_grad_(true));
  return r;
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.numel() == 0) return 0;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// Fused (both activation modes) vs reference, forward and backward, with a random upstream gradient.
void compare(const Shape& s, int64_t n, bool x_requires_grad = true) {
  SCOPED_TRACE(::testing::Message() << "in " << s.in << " hidden " << s.hidden << "x" << s.hidden_layers
                                    << " out " << s.out << " bias " << s.bias << " N " << n << " x grad "
                                    << x_requires_grad);
  Params p = random_params(s);
  at::Tensor x = at::randn({n, s.in});
  at::Tensor gy = at::randn({n, s.out});

  std::vector<at::Tensor> rw = with_grad(p.weights), rb = with_grad(p.biases);
  at::Tensor rx = x.clone().requires_grad_(x_requires_grad);
  at::Tensor ry = fused_mlp_reference(rx, rw, rb);
  ry.backward(gy);

  for (MLPActivations mode : {MLPActivations::kSave, MLPActivations::kRecompute}) {
    std::vector<at::Tensor> fw = with_grad(p.weights), fb = with_grad(p.biases);
    at::Tensor fx = x.clone().requires_grad_(x_requires_grad);
    at::Tensor fy = fused_mlp(fx, fw, fb, mode);
    EXPECT_LT(max_abs_diff(fy, ry), 1e-5);
    fy.backward(gy);
    if (x_requires_grad)
      EXPECT_LT(max_abs_diff(fx.grad(), rx.grad()), 1e-5);
    else
      EXPECT_FALSE(fx.grad().defined());
    // Weight gradients sum over N points: compare relative to their size.
    const double tol = 1e-5 * std::max<double>(1.0, std::sqrt(static_cast<double>(n)));
    for (size_t l = 0; l < fw.size(); ++l)
      EXPECT_LT(max_abs_diff(fw[l].grad(), rw[l].grad()), tol) << "W" << l;
    for (size_t l = 0; l < fb.size(); ++l)
      EXPECT_LT(max_abs_diff(fb[l].grad(), rb[l].grad()), tol) << "b" << l;
  }
}

TEST(FusedMLP, MatchesReferenceForwardAndBackward) {
  set_threads(0);
  at::manual_seed(1);
  const std::vector<Shape> shapes = {
      {32, 64, 1, 16, true}, {15, 64, 1, 3, true}, {16, 64, 2, 1, true},  {3, 64, 2, 16, true},
      {32, 64, 2, 3, false}, {15, 32, 1, 1, true}, {16, 128, 1, 4, true}, {3, 24, 3, 3, true},
  };
  for (const Shape& s : shapes)
    for (int64_t n : {0, 1, 7, 1000}) compare(s, n);
}

TEST(FusedMLP, OddWidthsAndNoInputGrad) {
  set_threads(0);
  at::manual_seed(2);
  compare({5, 20, 2, 7, true}, 100);  // widths that are not multiples of 8
  compare({32, 64, 1, 16, true}, 300, /*x_requires_grad=*/false);
  compare({1, 8, 1, 1, false}, 65);
}

TEST(FusedMLP, NaNInputPropagatesToItsRowOnly) {
  at::manual_seed(6);
  Params p = random_params({15, 64, 1, 3, true});
  at::Tensor x = at::randn({70, 15});
  x[65][4] = std::numeric_limits<float>::quiet_NaN();
  at::Tensor y = fused_mlp(x, p.weights, p.biases);
  EXPECT_TRUE(y[65].isnan().all().item<bool>());
  at::Tensor finite = at::cat({y.narrow(0, 0, 65), y.narrow(0, 66, 4)});
  at::Tensor ref = fused_mlp_reference(x, p.weights, p.biases);
  EXPECT_LT(max_abs_diff(finite, at::cat({ref.narrow(0, 0, 65), ref.narrow(0, 66, 4)})), 1e-5);
}

TEST(FusedMLP, NoGradModeAndKernelEntryPoints) {
  set_threads(0);
  at::manual_seed(3);
  const Shape s{32, 64, 1, 16, true};
  Params p = random_params(s);
  std::vector<at::Tensor> w = with_grad(p.weights), b = with_grad(p.biases);
  at::Tensor x = at::randn({200, 32});
  at::Tensor ref = fused_mlp_reference(x, p.weights, p.biases);
  {
    torch::NoGradGuard no_grad;
    at::Tensor y = fused_mlp(x, w, b);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_LT(max_abs_diff(y, ref), 1e-5);
  }
  // Non-contiguous input.
  at::Tensor xt = at::randn({32, 200}).t();
  EXPECT_LT(max_abs_diff(fused_mlp(xt, p.weights, p.biases), fused_mlp_reference(xt, p.weights, p.biases)),
            1e-5);

  // The raw kernels: saved activations are the post-ReLU hidden layer, feature-major per tile.
  FusedMLPForward fwd = fused_mlp_forward_cpu(x, p.weights, p.biases, true);
  const int64_t tiles = (200 + kFusedMLPTile - 1) / kFusedMLPTile;
  ASSERT_EQ(fwd.activations.sizes(), (at::IntArrayRef{tiles, 64, kFusedMLPTile}));
  at::Tensor hidden = at::relu(at::linear(x, p.weights[0], p.biases[0]));  // [200, 64]
  at::Tensor saved =
      fwd.activations.permute({0, 2, 1}).reshape({tiles * kFusedMLPTile, 64}).narrow(0, 0, 200);
  EXPECT_LT(max_abs_diff(saved, hidden), 1e-5);

  // Only parameter gradients.
  FusedMLPGrads g =
      fused_mlp_backward_cpu(at::ones({200, 16}), x, p.weights, p.biases, at::Tensor(), false, true);
  EXPECT_FALSE(g.grad_x.defined());
  ASSERT_EQ(g.grad_weights.size(), 2u);
  ASSERT_EQ(g.grad_biases.size(), 2u);
  EXPECT_LT(max_abs_diff(g.grad_biases[1], at::full({16}, 200.0)), 1e-4);
}

TEST(FusedMLP, RejectsBadArguments) {
  Params p = random_params({4, 8, 1, 2, true});
  EXPECT_THROW(fused_mlp(at::randn({3, 5}), p.weights, p.biases), c10::Error);  // wrong in dim
  EXPECT_THROW(fused_mlp(at::randn({3, 4}, at::kDouble), p.weights, p.biases), c10::Error);
  EXPECT_THROW(fused_mlp(at::randn({3, 4}), p.weights, {p.biases[0]}), c10::Error);
  EXPECT_THROW(FusedMLP(MLPConfig{0, 64, 1, 3}), InputError);
  EXPECT_THROW(FusedMLP(MLPConfig{3, 64, 0, 3}), InputError);
}

// The reference's gradients agree with float64 central differences.
TEST(FusedMLP, ReferenceMatchesFiniteDifferences) {
  at::manual_seed(4);
  const Shape s{3, 8, 2, 2, true};
  Params p = random_params(s, at::kDouble);
  at::Tensor x = at::randn({5, 3}, at::kDouble);
  at::Tensor gy = at::randn({5, 2}, at::kDouble);
  std::vector<at::Tensor> inputs{x};
  inputs.insert(inputs.end(), p.weights.begin(), p.weights.end());
  inputs.insert(inputs.end(), p.biases.begin(), p.biases.end());
  const size_t layers = p.weights.size();
  auto loss = [&](const std::vector<at::Tensor>& in) {
    std::vector<at::Tensor> w(in.begin() + 1, in.begin() + 1 + layers), b(in.begin() + 1 + layers, in.end());
    return (fused_mlp_reference(in[0], w, b) * gy).sum();
  };
  std::vector<at::Tensor> leaves = with_grad(inputs);
  loss(leaves).backward();
  const double eps = 1e-6;
  for (size_t i = 0; i < inputs.size(); ++i) {
    at::Tensor flat = inputs[i].view(-1);
    at::Tensor grad = leaves[i].grad().view(-1);
    for (int64_t j = 0; j < flat.numel(); ++j) {
      const double v = flat[j].item<double>();
      flat[j] = v + eps;
      const double up = loss(inputs).item<double>();
      flat[j] = v - eps;
      const double down = loss(inputs).item<double>();
      flat[j] = v;
      EXPECT_NEAR(grad[j].item<double>(), (up - down) / (2 * eps), 1e-6) << "input " << i << " element " << j;
    }
  }
}

TEST(FusedMLP, ModuleParameterNamesAndForward) {
  set_threads(0);
  at::manual_seed(5);
  FusedMLP mlp(MLPConfig{32, 64, 2, 16});
  std::vector<std::string> names;
  for (const auto& item : mlp->named_parameters()) names.push_back(item.key());
  EXPECT_EQ(names, (std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.1.weight",
                                             "layers.1.bias", "layers.2.weight", "layers.2.bias"}));
  EXPECT_EQ(mlp->named_parameters()["layers.0.weight"].sizes(), (at::IntArrayRef{64, 32}));
  EXPECT_EQ(mlp->named_parameters()["layers.2.weight"].sizes(), (at::IntArrayRef{16, 64}));
  // Linear's init: |W_0| <= 1/sqrt(32).
  EXPECT_LE(mlp->named_parameters()["layers.0.weight"].abs().max().item<float>(), 1 / std::sqrt(32.f) + 1e-6);

  at::Tensor x = at::randn({100, 32}).requires_grad_(true);
  at::Tensor y = mlp->forward(x);
  EXPECT_LT(max_abs_diff(y, mlp->forward_reference(x)), 1e-5);
  y.sum().backward();
  for (const auto& item : mlp->named_parameters()) EXPECT_TRUE(item.value().grad().defined()) << item.key();
  EXPECT_TRUE(x.grad().defined());

  FusedMLP no_bias(MLPConfig{15, 64, 1, 3, false});
  EXPECT_EQ(no_bias->named_parameters().size(), 2u);
  EXPECT_EQ(no_bias->biases().size(), 0u);
  no_bias->to(at::kDouble);
  at::Tensor xd = at::randn({4, 15}, at::kDouble);
  EXPECT_EQ(no_bias->forward_reference(xd).scalar_type(), at::kDouble);
}

// Prints fused vs reference times at a small size (the full-size figures: bench/bench_fused_mlp).
TEST(FusedMLP, TimingSmall) {
  set_threads(0);
  const Shape s{32, 64, 1, 16, true};
  Params p = random_params(s);
  std::vector<at::Tensor> w = with_grad(p.weights), b = with_grad(p.biases);
  at::Tensor x = at::randn({16384, 32}).requires_grad_(true);
  auto time = [&](auto&& f) {
    f();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 5 * 1e3;
  };
  const double fused = time([&] { fused_mlp(x, w, b).sum().backward(); });
  const double ref = time([&] { fused_mlp_reference(x, w, b).sum().backward(); });
  std::printf("[ timing ] 32->64->16, N=16384, fwd+bwd: fused %.2f ms, reference %.2f ms\n", fused, ref);
}

}  // namespace
}  // namespace nd
