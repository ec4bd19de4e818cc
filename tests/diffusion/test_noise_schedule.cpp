// NoiseSchedule: the three beta schedules, q(x_t | x_0), the ε / x0 / v conversions, SNR.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/threads.h"
#include "diffusion/noise_schedule.h"

namespace {

using nd::NoiseSchedule;
using nd::PredictionType;

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

NoiseSchedule sd_schedule() { return NoiseSchedule::scaled_linear(1000, 0.00085, 0.012); }

TEST(NoiseSchedule, BetaSchedules) {
  {  // ᾱ strictly decreasing in (0, 1)

    for (const NoiseSchedule& s :
         {sd_schedule(), NoiseSchedule::linear(1000, 1e-4, 0.02), NoiseSchedule::squaredcos_cap_v2(1000)}) {
      const at::Tensor ac = s.alphas_cumprod();
      ASSERT_EQ(ac.numel(), 1000);
      EXPECT_GT(ac.min().item<float>(), 0.f);
      EXPECT_LT(ac.max().item<float>(), 1.f);
      EXPECT_TRUE((ac.slice(0, 1) < ac.slice(0, 0, -1)).all().item<bool>());
      EXPECT_TRUE((s.betas() > 0).all().item<bool>());
    }
  }
  {  // endpoints and the running product

    const NoiseSchedule sd = sd_schedule();
    EXPECT_NEAR(sd.betas()[0].item<float>(), 0.00085f, 1e-9);
    EXPECT_NEAR(sd.betas()[999].item<float>(), 0.012f, 1e-8);
    // √β is linear: the midpoint of √β equals the mean of the endpoints' √β (within float32 rounding).
    const double mid = (std::sqrt(0.00085) + std::sqrt(0.012)) / 2;
    EXPECT_NEAR(std::sqrt((sd.betas()[499].item<double>() + sd.betas()[500].item<double>()) / 2), mid, 2e-5);
    const NoiseSchedule lin = NoiseSchedule::linear(1000, 1e-4, 0.02);
    EXPECT_NEAR(lin.betas()[0].item<float>(), 1e-4f, 1e-10);
    EXPECT_NEAR(lin.betas()[999].item<float>(), 0.02f, 1e-9);
    // Cosine: β_0 = 1 − f(1/T)/f(0), all capped at 0.999 (the last one is).
    const NoiseSchedule cos = NoiseSchedule::squaredcos_cap_v2(1000);
    const auto f = [](double s) {
      return std::pow(std::cos((s + 0.008) / 1.008 * 3.14159265358979323846 / 2), 2);
    };
    EXPECT_NEAR(cos.betas()[0].item<float>(), 1 - f(0.001) / f(0), 1e-9);
    EXPECT_NEAR(cos.betas()[999].item<float>(), 0.999f, 1e-7);
    // ᾱ is the running product of (1 − β), checked against a float64 product.
    double prod = 1;
    for (int t = 0; t < 1000; ++t) {
      prod *= 1.0 - sd.betas()[t].item<double>();
      if (t % 111 == 0) {
        EXPECT_NEAR(sd.alpha_cumprod(t), prod, 2e-5 * prod) << t;
      }
    }
  }
  {  // zero terminal SNR

    const at::Tensor betas = sd_schedule().betas();
    const NoiseSchedule r(NoiseSchedule::rescale_zero_terminal_snr(betas));
    EXPECT_NEAR(r.alpha_cumprod(999), 0.0, 1e-12);
    EXPECT_NEAR(r.alpha_cumprod(0), sd_schedule().alpha_cumprod(0), 1e-6);
    EXPECT_TRUE((r.alphas_cumprod().slice(0, 1) < r.alphas_cumprod().slice(0, 0, -1)).all().item<bool>());
  }
  {  // bad input

    EXPECT_THROW(NoiseSchedule(at::tensor(std::vector<float>{0.1f, 1.5f})), nd::InputError);
    EXPECT_THROW(NoiseSchedule(at::tensor(std::vector<float>{0.1f, NAN})), nd::InputError);
    EXPECT_THROW(NoiseSchedule(at::zeros({2, 2})), nd::InputError);
    EXPECT_THROW(nd::parse_prediction_type("eps"), nd::InputError);
    EXPECT_EQ(nd::parse_prediction_type("v_prediction"), PredictionType::kVPrediction);
  }
}

TEST(NoiseSchedule, ForwardProcess) {
  {  // q(x_t | x_0) moments

    nd::set_threads(0);
    const NoiseSchedule s = sd_schedule();
    auto gen = at::detail::createCPUGenerator(7);
    const int64_t n = 200000;
    const at::Tensor x0 = at::full({n}, 0.7f);
    for (int64_t t : {10, 500, 990}) {
      const at::Tensor noise = at::randn({n}, gen, at::kFloat);
      const at::Tensor xt = s.add_noise(x0, noise, t).to(at::kDouble);
      const double a = s.alpha_cumprod(t);
      EXPECT_NEAR(xt.mean().item<double>(), std::sqrt(a) * 0.7, 4 * std::sqrt((1 - a) / n) + 1e-6) << t;
      EXPECT_NEAR(xt.var().item<double>(), 1 - a, 0.015 * (1 - a)) << t;
    }
  }
  {  // [B] timesteps = one by one

    const NoiseSchedule s = sd_schedule();
    const at::Tensor x0 = at::randn({3, 2, 4, 4});
    const at::Tensor noise = at::randn({3, 2, 4, 4});
    const at::Tensor t = at::tensor(std::vector<int64_t>{999, 500, 0});
    const at::Tensor batched = s.add_noise(x0, noise, t);
    const at::Tensor vel = s.velocity(x0, noise, t);
    for (int i = 0; i < 3; ++i) {
      const int64_t ti = t[i].item<int64_t>();
      EXPECT_EQ(max_abs(batched[i], s.add_noise(x0[i], noise[i], ti)), 0.0);
      EXPECT_EQ(max_abs(vel[i], s.velocity(x0[i], noise[i], ti)), 0.0);
    }
    // A [B] timestep tensor against a [1,...] sample broadcasts to [B,...].
    EXPECT_EQ(s.add_noise(x0.slice(0, 0, 1), noise.slice(0, 0, 1), t).sizes(),
              (std::vector<int64_t>{3, 2, 4, 4}));
  }
}

TEST(NoiseSchedule, ConversionsAndSnr) {
  {  // ε ↔ x0 ↔ v

    const NoiseSchedule s = sd_schedule();
    const auto opt = at::TensorOptions().dtype(at::kDouble);
    for (int64_t t : {0, 1, 250, 700, 999}) {
      const at::Tensor x0 = at::randn({2, 3, 5}, opt);
      const at::Tensor eps = at::randn({2, 3, 5}, opt);
      const at::Tensor xt = s.add_noise(x0, eps, t);
      const at::Tensor v = s.velocity(x0, eps, t);
      const double tol = 1e-9;
      EXPECT_LT(max_abs(s.to_x0(PredictionType::kEpsilon, eps, xt, t), x0), tol) << t;
      EXPECT_LT(max_abs(s.to_x0(PredictionType::kVPrediction, v, xt, t), x0), tol) << t;
      EXPECT_LT(max_abs(s.to_x0(PredictionType::kSample, x0, xt, t), x0), 0.0 + 1e-300) << t;
      EXPECT_LT(max_abs(s.to_epsilon(PredictionType::kSample, x0, xt, t), eps), tol) << t;
      EXPECT_LT(max_abs(s.to_epsilon(PredictionType::kVPrediction, v, xt, t), eps), tol) << t;
      EXPECT_LT(max_abs(s.to_v(PredictionType::kEpsilon, eps, xt, t), v), tol) << t;
      EXPECT_LT(max_abs(s.to_v(PredictionType::kSample, x0, xt, t), v), tol) << t;
      // ε → x0 → v → ε.
      const at::Tensor x0b = s.to_x0(PredictionType::kEpsilon, eps, xt, t);
      const at::Tensor vb = s.to_v(PredictionType::kSample, x0b, xt, t);
      EXPECT_LT(max_abs(s.to_epsilon(PredictionType::kVPrediction, vb, xt, t), eps), tol) << t;
    }
  }
  {  // SNR

    const NoiseSchedule s = sd_schedule();
    const double a = s.alpha_cumprod(321);
    EXPECT_DOUBLE_EQ(s.snr(321), a / (1 - a));
    const at::Tensor snr = s.snr(at::arange(1000, at::kLong));
    EXPECT_TRUE((snr.slice(0, 1) < snr.slice(0, 0, -1)).all().item<bool>());
    EXPECT_NEAR(snr[321].item<float>(), a / (1 - a), 1e-5 * a / (1 - a));
  }
}

}  // namespace
