#include <gtest/gtest.h>
#include <torch/optim/adam.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/threads.h"
#include "optim/adam.h"

namespace nd {
namespace {

double max_abs(const at::Tensor& t) { return t.abs().max().item<double>(); }

std::vector<at::Tensor> make_params() {
  return {at::randn({37, 11}), at::randn({5}), at::randn({100000})};  // the last one spans parallel tasks
}

std::vector<at::Tensor> clones(const std::vector<at::Tensor>& ps) {
  std::vector<at::Tensor> out;
  for (const auto& p : ps) out.push_back(p.detach().clone().requires_grad_(true));
  return out;
}

// Gradients for step `t`: random, and param 1 has none on odd steps (so its step count lags).
void set_grads(std::vector<at::Tensor>& ps, int t) {
  torch::manual_seed(100 + t);
  for (size_t i = 0; i < ps.size(); ++i) {
    if (i == 1 && t % 2 == 1)
      ps[i].mutable_grad() = at::Tensor();
    else
      ps[i].mutable_grad() = at::randn(ps[i].sizes()) * static_cast<double>(i + 1);
  }
}

TEST(FusedAdam, MatchesTorchAdam) {
  set_threads(0);
  torch::manual_seed(0);
  auto init = make_params();
  auto ours = clones(init), theirs = clones(init);
  // Two groups: params {0, 1} with lr 1e-2 and weight decay, param {2} with lr 3e-3.
  FusedAdam adam({{"a", {ours[0], ours[1]}, 1e-2, 1e-3}, {"b", {ours[2]}, 3e-3}}, AdamOptions{});
  auto opts_a = torch::optim::AdamOptions(1e-2).betas({0.9, 0.99}).eps(1e-15).weight_decay(1e-3);
  auto opts_b = torch::optim::AdamOptions(3e-3).betas({0.9, 0.99}).eps(1e-15);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<at::Tensor>{theirs[0], theirs[1]},
                      std::make_unique<torch::optim::AdamOptions>(opts_a));
  groups.emplace_back(std::vector<at::Tensor>{theirs[2]},
                      std::make_unique<torch::optim::AdamOptions>(opts_b));
  torch::optim::Adam reference(std::move(groups), opts_b);
  for (int t = 0; t < 10; ++t) {
    set_grads(ours, t);
    set_grads(theirs, t);
    adam.step();
    reference.step();
  }
  EXPECT_EQ(adam.steps(), 10);
  for (size_t i = 0; i < init.size(); ++i) {
    EXPECT_LE(max_abs(ours[i] - theirs[i]), 1e-6) << i;
    EXPECT_GT(max_abs(ours[i] - init[i]), 1e-3) << i;  // it did move
  }
}

TEST(FusedAdam, StateRoundTrip) {
  set_threads(0);
  torch::manual_seed(1);
  auto init = make_params();
  auto a = clones(init), b = clones(init);
  FusedAdam first({{"grid", {a[2]}, 1e-2}, {"mlp", {a[0], a[1]}, 1e-3, 1e-4}});
  for (int t = 0; t < 3; ++t) {
    set_grads(a, t);
    first.step();
  }
  auto saved = first.state("optim.");
  EXPECT_EQ(saved.at("optim.steps").item<int64_t>(), 3);
  EXPECT_EQ(saved.at("optim.mlp.1.step").item<int64_t>(), 2);  // no gradient at t = 1
  EXPECT_EQ(saved.at("optim.grid.0.exp_avg").sizes(), a[2].sizes());

  for (size_t i = 0; i < a.size(); ++i) b[i].detach().copy_(a[i].detach());
  FusedAdam second({{"grid", {b[2]}, 1e-2}, {"mlp", {b[0], b[1]}, 1e-3, 1e-4}});
  second.load_state(saved, "optim.");
  EXPECT_EQ(second.steps(), 3);
  for (int t = 3; t < 6; ++t) {
    set_grads(a, t);
    set_grads(b, t);
    first.step();
    second.step();
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].equal(b[i])) << i;

  // Mismatches are InputErrors naming the key, and leave the optimizer unchanged.
  auto missing = saved;
  missing.erase("optim.mlp.0.exp_avg_sq");
  try {
    second.load_state(missing, "optim.");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("optim.mlp.0.exp_avg_sq"), std::string::npos) << e.what();
  }
  auto misshaped = saved;
  misshaped["optim.grid.0.exp_avg"] = at::zeros({3});
  EXPECT_THROW(second.load_state(misshaped, "optim."), InputError);
  EXPECT_THROW(second.load_state(saved, "other."), InputError);
  EXPECT_EQ(second.steps(), 6);
}

TEST(FusedAdam, ZeroGradAndLearningRate) {
  set_threads(0);
  auto p = at::ones({70000}).requires_grad_(true);
  auto q = at::ones({3}).requires_grad_(true);
  FusedAdam adam({{"p", {p}, 0.5}, {"q", {q}, 0.5}});
  p.mutable_grad() = at::ones({70000});
  adam.zero_grad();
  ASSERT_TRUE(p.grad().defined());
  EXPECT_EQ(max_abs(p.grad()), 0.0);
  EXPECT_FALSE(q.grad().defined());
  adam.step();  // zero gradient: m = v = 0 → p moves by 0/(0 + eps) = 0
  EXPECT_EQ(max_abs(p - 1), 0.0);
  EXPECT_EQ(adam.lr("p"), 0.5);
  adam.set_lr("p", 0.25);
  EXPECT_EQ(adam.lr("p"), 0.25);
  EXPECT_THROW(adam.set_lr("nope", 1.0), InputError);
  // The zero-gradient step counted (t = 2 now): m = 0.1·3, v = 0.01·9, bias corrections 1 − 0.9², 1 − 0.99².
  p.mutable_grad().fill_(3.0);
  adam.step();
  const double expected = 0.25 / (1 - 0.81) * 0.3 / (0.3 / std::sqrt(1 - 0.9801));
  EXPECT_NEAR((1 - p[0]).item<float>(), expected, 1e-5);
  EXPECT_NEAR((1 - q[0]).item<float>(), 0.0, 0.0);  // no gradient: untouched
}

// One step on a 12M-float parameter, fused vs torch::optim::Adam (the figures go to the test log).
TEST(FusedAdam, TimingVsTorchAdam) {
  set_threads(0);
  const int64_t n = 12 * 1000 * 1000;
  auto p1 = at::randn({n}).requires_grad_(true);
  auto p2 = p1.detach().clone().requires_grad_(true);
  p1.mutable_grad() = at::randn({n});
  p2.mutable_grad() = p1.grad().clone();
  FusedAdam ours({{"p", {p1}, 1e-2}});
  torch::optim::Adam theirs({p2}, torch::optim::AdamOptions(1e-2).betas({0.9, 0.99}).eps(1e-15));
  auto time_ms = [](auto&& fn) {
    fn();  // warm-up (allocates the moments)
    double best = 1e30;
    for (int r = 0; r < 3; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      best = std::min(
          best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  const double fused = time_ms([&] { ours.step(); });
  const double torch_ms = time_ms([&] { theirs.step(); });
  const double zero = time_ms([&] { ours.zero_grad(); });
  std::printf(
      "[ timing ] Adam step on 12M floats: fused %.1f ms, torch::optim::Adam %.1f ms (%.1fx); zero_grad %.1f "
      "ms\n",
      fused, torch_ms, torch_ms / fused, zero);
  EXPECT_LE(max_abs(p1 - p2), 1e-5);
  EXPECT_LT(fused, torch_ms);
}

}  // namespace
}  // namespace nd
