// Whole sampling runs on a toy model with an exact ε: data x0 ~ N(μ, s²) per element, so
// E[ε | x_t] = √(1−ᾱ)·(x_t − √ᾱ·μ)/(ᾱ·s² + 1 − ᾱ). DDPM and DDIM(η = 1) must turn noise into N(μ, s²);
// the deterministic samplers are affine maps on this data, checked exactly (DDIM, Euler) or against the
// exact flow (PNDM). Also PNDM's multistep bookkeeping written out by hand, and determinism for a seed.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "core/threads.h"
#include "diffusion/scheduler.h"
#include "diffusion/scheduler_ddim.h"
#include "diffusion/scheduler_euler.h"
#include "diffusion/scheduler_pndm.h"

namespace {

using nd::PredictionType;
using nd::SchedulerConfig;

constexpr double kMu = 0.5, kS = 0.3;
constexpr int64_t kN = 4000;  // samples, run in parallel as one tensor

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

SchedulerConfig sd_config(const char* prediction = "epsilon", int steps_offset = 1,
                          bool alpha_to_one = false) {
  nlohmann::json j = {{"_class_name", "PNDMScheduler"},
                      {"beta_schedule", "scaled_linear"},
                      {"beta_start", 0.00085},
                      {"beta_end", 0.012},
                      {"num_train_timesteps", 1000},
                      {"clip_sample", false},
                      {"set_alpha_to_one", alpha_to_one},
                      {"skip_prk_steps", true},
                      {"steps_offset", steps_offset},
                      {"prediction_type", prediction}};
  return SchedulerConfig::from_json(j, "toy");
}

// The toy model's output of `type` at ᾱ for the model input x_t.
at::Tensor toy_model(const at::Tensor& xt, double abar, PredictionType type) {
  const double var = abar * kS * kS + 1 - abar;
  const at::Tensor eps = (xt - std::sqrt(abar) * kMu) * (std::sqrt(1 - abar) / var);
  if (type == PredictionType::kEpsilon) return eps;
  const at::Tensor x0 = (xt - std::sqrt(1 - abar) * eps) / std::sqrt(abar);
  if (type == PredictionType::kSample) return x0;
  return std::sqrt(abar) * eps - std::sqrt(1 - abar) * x0;
}

// ᾱ the toy model sees at step i: of the training timestep, or for Euler 1/(1 + σ_i²) (its x = x_t/√ᾱ).
double step_alpha_cumprod(const nd::Scheduler& s, size_t i) {
  if (auto* euler = dynamic_cast<const nd::EulerDiscreteScheduler*>(&s))
    return 1.0 / (1.0 + std::pow(static_cast<double>(euler->sigmas()[i]), 2));
  return s.schedule().alpha_cumprod(s.timesteps()[i]);
}

// A whole run from N(0, 1)·init_noise_sigma, or (exact_init) from the true marginal at the first timestep
// N(√ᾱ·μ, ᾱ·s² + 1 − ᾱ) (Euler: divided by √ᾱ). SD's first timestep still has ᾱ ≈ 0.005 (not pure noise),
// so a deterministic sampler started from N(0, 1) ends with its mean off by ≈ √ᾱ·μ·s/√V.
at::Tensor run(nd::Scheduler& s, int steps, uint64_t seed, bool exact_init = false,
               at::Tensor* init = nullptr) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  s.set_timesteps(steps);
  at::Tensor x = at::randn({kN}, gen, at::kFloat);
  if (exact_init) {
    const double a = step_alpha_cumprod(s, 0);
    x = x * std::sqrt(a * kS * kS + 1 - a) + std::sqrt(a) * kMu;
    if (dynamic_cast<nd::EulerDiscreteScheduler*>(&s)) x = x / std::sqrt(a);
  } else {
    x = x * s.init_noise_sigma();
  }
  if (init) *init = x.clone();
  for (size_t i = 0; i < s.timesteps().size(); ++i) {
    const int64_t t = s.timesteps()[i];
    const at::Tensor out =
        toy_model(s.scale_model_input(x, t), step_alpha_cumprod(s, i), s.config().prediction_type);
    x = s.step(out, t, x, &gen);
  }
  return x;
}

void expect_data_distribution(const at::Tensor& x, const std::string& what) {
  const double mean = x.mean().item<double>(), std = x.std().item<double>();
  EXPECT_NEAR(mean, kMu, 0.03 * kMu) << what;
  EXPECT_NEAR(std, kS, 0.04 * kS) << what;
}

TEST(Sampling, DDPMAndDDIMEta1AgreeOnAllSteps) {
  nd::set_threads(0);
  // DDPM's schedule ends with ᾱ_prev = 1; DDIM gets the same with set_alpha_to_one.
  const SchedulerConfig c = sd_config("epsilon", 0, true);
  auto ddpm = make_scheduler(c, "ddpm");
  auto ddim = make_scheduler(c, "ddim");
  static_cast<nd::DDIMScheduler&>(*ddim).set_eta(1.0);
  const at::Tensor a = run(*ddpm, 1000, 11);
  const at::Tensor b = run(*ddim, 1000, 11);
  expect_data_distribution(a, "DDPM 1000 steps");
  expect_data_distribution(b, "DDIM eta=1 1000 steps");
  // η = 1 is DDPM's ancestral step (same mean and variance), so with the same noise the runs coincide.
  std::printf(
      "[sampling] DDPM mean %.4f std %.4f | DDIM(eta=1) mean %.4f std %.4f | max |DDPM - DDIM| %.3g\n",
      a.mean().item<double>(), a.std().item<double>(), b.mean().item<double>(), b.std().item<double>(),
      max_abs(a, b));
  EXPECT_LT(max_abs(a, b), 2e-4);
}

TEST(Sampling, DeterministicSamplers) {
  {  // DDIMAndEulerFollowTheirExactAffineMaps
    // On Gaussian data each DDIM (η = 0) step is affine: x_prev − √ᾱ_prev·μ = k·(x − √ᾱ·μ) with
    // k = (√(ᾱ_prev·ᾱ)·s² + √((1−ᾱ_prev)(1−ᾱ)))/V; Euler's: x_next − μ = (1 + (σ' − σ)·σ/(s² + σ²))·(x − μ).

    nd::set_threads(0);
    for (const char* pred : {"epsilon", "v_prediction"}) {
      auto ddim = make_scheduler(sd_config(pred), "ddim");
      at::Tensor init;
      const at::Tensor x = run(*ddim, 50, 9, true, &init);
      double k = 1, a = ddim->schedule().alpha_cumprod(ddim->timesteps()[0]), ap = a;
      for (int64_t t : ddim->timesteps()) {
        a = ddim->schedule().alpha_cumprod(t);
        ap = ddim->schedule().alpha_cumprod(std::max<int64_t>(t - 20, 0));  // set_alpha_to_one false: ᾱ_0
        const double v = a * kS * kS + 1 - a;
        k *= (std::sqrt(ap * a) * kS * kS + std::sqrt((1 - ap) * (1 - a))) / v;
      }
      const double a0 = ddim->schedule().alpha_cumprod(ddim->timesteps()[0]);
      const at::Tensor want = std::sqrt(ap) * kMu + k * (init.to(at::kDouble) - std::sqrt(a0) * kMu);
      EXPECT_LT(max_abs(x, want), 1e-4) << pred;
      // 50 DDIM steps shrink the spread by ~7% here (first-order discretisation; PNDM below does better).
      EXPECT_NEAR(x.std().item<double>(), kS * 0.928, 0.02 * kS) << pred;

      auto euler = make_scheduler(sd_config(pred), "euler");
      const at::Tensor xe = run(*euler, 50, 9, true, &init);
      const auto& sig = static_cast<nd::EulerDiscreteScheduler&>(*euler).sigmas();
      double ke = 1;
      for (size_t i = 0; i + 1 < sig.size(); ++i)
        ke *= 1 + (sig[i + 1] - sig[i]) * sig[i] / (kS * kS + sig[i] * sig[i]);
      EXPECT_LT(max_abs(xe, kMu + ke * (init.to(at::kDouble) - kMu)), 1e-4) << pred;
    }
  }
  {  // PNDMReachesTheData

    nd::set_threads(0);
    // PLMS is higher order: 50 steps already give the data's spread. The exact flow maps the initial
    // deviations (x − √ᾱ·μ) to x0 − μ scaled by s/√V, so compare with that (free of sampling noise).
    for (const char* pred : {"epsilon", "v_prediction"}) {
      auto s = make_scheduler(sd_config(pred));
      at::Tensor init;
      const at::Tensor x = run(*s, 50, 5, true, &init);
      const double a = s->schedule().alpha_cumprod(s->timesteps()[0]);
      const double ideal_std = init.std().item<double>() * kS / std::sqrt(a * kS * kS + 1 - a);
      const double ideal_mean =
          kMu + (init.mean().item<double>() - std::sqrt(a) * kMu) * kS / std::sqrt(a * kS * kS + 1 - a);
      // With v_prediction diffusers combines the v's of the history and converts the mix to ε with the
      // current sample, a slightly worse integrator (which we reproduce).
      const bool eps = std::string(pred) == "epsilon";
      EXPECT_NEAR(x.mean().item<double>(), ideal_mean, (eps ? 0.002 : 0.02) * kMu) << pred;
      EXPECT_NEAR(x.std().item<double>(), ideal_std, (eps ? 0.005 : 0.04) * kS) << pred;
    }
  }
}

TEST(Sampling, PredictionTypesAndSeeds) {
  {  // PredictionTypesGiveTheSameRun

    auto eps = make_scheduler(sd_config("epsilon"), "ddim");
    auto v = make_scheduler(sd_config("v_prediction"), "ddim");
    auto x0 = make_scheduler(sd_config("sample"), "ddim");
    const at::Tensor a = run(*eps, 20, 3);
    EXPECT_LT(max_abs(a, run(*v, 20, 3)), 1e-4);
    EXPECT_LT(max_abs(a, run(*x0, 20, 3)), 1e-4);
  }
  {  // DeterministicForASeed

    for (const char* cls : {"ddpm", "euler"}) {
      auto s = make_scheduler(sd_config(), cls);
      if (auto* e = dynamic_cast<nd::EulerDiscreteScheduler*>(s.get())) e->set_churn(1.0);
      const at::Tensor a = run(*s, 30, 42), b = run(*s, 30, 42), c = run(*s, 30, 43);
      EXPECT_TRUE(at::equal(a, b)) << cls;
      EXPECT_GT(max_abs(a, c), 1e-3) << cls;
    }
    // DDIM with eta > 0 draws from the generator too.
    auto d = make_scheduler(sd_config(), "ddim");
    static_cast<nd::DDIMScheduler&>(*d).set_eta(0.5);
    EXPECT_TRUE(at::equal(run(*d, 10, 1), run(*d, 10, 1)));
    EXPECT_FALSE(at::equal(run(*d, 10, 1), run(*d, 10, 2)));
  }
}

// DDIM's transfer from t to t_prev with ε estimate e, in float64 (the reference for PNDM).
at::Tensor ddim_transfer(const nd::NoiseSchedule& s, const at::Tensor& x, int64_t t, int64_t tp,
                         const at::Tensor& e) {
  const double a = s.alpha_cumprod(t), ap = s.alpha_cumprod(tp >= 0 ? tp : 0);
  const at::Tensor x0 = (x.to(at::kDouble) - std::sqrt(1 - a) * e.to(at::kDouble)) / std::sqrt(a);
  return std::sqrt(ap) * x0 + std::sqrt(1 - ap) * e.to(at::kDouble);
}

TEST(PNDM, History) {
  {  // PlmsHistoryByHand

    auto s = make_scheduler(sd_config());
    s->set_timesteps(50);
    const auto& ts = s->timesteps();
    const nd::NoiseSchedule& sch = s->schedule();
    std::vector<at::Tensor> e;
    for (int k = 0; k < 7; ++k) e.push_back(at::randn({2, 3}));
    const at::Tensor x_start = at::randn({2, 3});
    std::vector<at::Tensor> got;
    at::Tensor x = x_start;
    for (int k = 0; k < 7; ++k) {
      x = s->step(e[k], ts[k], x);
      got.push_back(x);
    }
    // ts = 981, 961, 961, 941, 921, 901, 881.
    std::vector<at::Tensor> want;
    want.push_back(ddim_transfer(sch, x_start, 981, 961, e[0]));
    want.push_back(ddim_transfer(sch, x_start, 981, 961, (e[0] + e[1]) / 2));  // redone from the start
    want.push_back(ddim_transfer(sch, want[1], 961, 941, (3 * e[2] - e[0]) / 2));
    want.push_back(ddim_transfer(sch, want[2], 941, 921, (23 * e[3] - 16 * e[2] + 5 * e[0]) / 12));
    want.push_back(
        ddim_transfer(sch, want[3], 921, 901, (55 * e[4] - 59 * e[3] + 37 * e[2] - 9 * e[0]) / 24));
    want.push_back(
        ddim_transfer(sch, want[4], 901, 881, (55 * e[5] - 59 * e[4] + 37 * e[3] - 9 * e[2]) / 24));
    want.push_back(
        ddim_transfer(sch, want[5], 881, 861, (55 * e[6] - 59 * e[5] + 37 * e[4] - 9 * e[3]) / 24));
    for (int k = 0; k < 7; ++k) EXPECT_LT(max_abs(got[k], want[k]), 2e-5) << "call " << k;
  }
  {  // ConstantEpsilonEqualsDDIMChain
    // With a constant ε every multistep combination reduces to ε: PNDM (PLMS or PRK) = the DDIM chain.

    for (bool skip_prk : {true, false}) {
      SchedulerConfig c = sd_config();
      c.skip_prk_steps = skip_prk;
      auto pndm = make_scheduler(c);
      auto ddim = make_scheduler(c, "ddim");
      const int n = 10;
      pndm->set_timesteps(n);
      ddim->set_timesteps(n);
      const at::Tensor e = at::randn({3, 4});
      at::Tensor xp = at::randn({3, 4}), xd = xp.clone();
      for (int64_t t : pndm->timesteps()) xp = pndm->step(e, t, xp);
      for (int64_t t : ddim->timesteps()) xd = ddim->step(e, t, xd);
      EXPECT_LT(max_abs(xp, xd), 1e-4) << "skip_prk_steps " << skip_prk;
    }
  }
}

}  // namespace
