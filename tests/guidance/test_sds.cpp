// Score distillation: the gradient it injects, checked on a denoiser whose answer is known.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "guidance/sds.h"
#include "test_support.h"

namespace nd {
namespace {

// The optimal ε-predictor for data that is always the image `target`: ε̂(x_t) = (x_t − √ᾱ·x*)/√(1−ᾱ).
GuidedEpsilon point_mass_denoiser(const NoiseSchedule& schedule, const at::Tensor& target) {
  return [&schedule, target](const at::Tensor& x_t, const at::Tensor& t, const at::Tensor&, const at::Tensor&,
                             double) {
    const at::Tensor a = schedule.alpha_cumprod_view(t, x_t);
    return (x_t - a.sqrt() * (target * 2 - 1)) / (1 - a).sqrt();
  };
}

TEST(SDS, GradientIsWeightedNoiseResidualAndPointsAtThePrior) {
  const NoiseSchedule schedule = NoiseSchedule::squaredcos_cap_v2(1000);
  const at::Tensor target = at::rand({1, 3, 8, 8});
  SDSConfig cfg;
  SDSGuidance sds(schedule, point_mass_denoiser(schedule, target), cfg);
  at::Generator gen = at::detail::createCPUGenerator(0);
  const at::Tensor ids = at::zeros({1, 16}, at::kLong),
                   views = at::tensor({15.f, 0.f, 3.f, 45.f}).view({1, 4});

  // The loss's gradient is exactly 2·w(t)·(ε̂ − ε) w.r.t. the image (x = 2·image − 1).
  at::Tensor image = at::rand({1, 3, 8, 8}).requires_grad_(true);
  const at::Tensor t = at::full({1}, 400, at::kLong), noise = at::randn({1, 3, 8, 8}, gen);
  SDSResult r = sds.step_with(image, ids, views, t, noise);
  r.loss.backward();
  const double ab = schedule.alpha_cumprod(400);
  const at::Tensor x = image.detach() * 2 - 1, xt = std::sqrt(ab) * x + std::sqrt(1 - ab) * noise;
  const at::Tensor expected =
      (1 - ab) * ((xt - std::sqrt(ab) * (target * 2 - 1)) / std::sqrt(1 - ab) - noise);
  EXPECT_LT(test::max_abs_diff(r.gradient, expected), 1e-5);
  EXPECT_LT(test::max_abs_diff(image.grad(), 2 * expected), 1e-5);

  // Sign: a gradient step moves the render towards what the prior believes in.
  const double before = (image.detach() - target).pow(2).sum().item<double>();
  const double after = (image.detach() - 0.05 * image.grad() - target).pow(2).sum().item<double>();
  EXPECT_LT(after, before);

  // Scale: a render that matches the prior gets a much smaller gradient than a noise image (over many t, ε).
  double matched = 0, random = 0;
  for (int i = 0; i < 32; ++i) {
    matched += sds.step(target.clone(), ids, views, 0.0, gen).gradient.pow(2).sum().item<double>();
    random +=
        sds.step(at::rand({1, 3, 8, 8}, gen), ids, views, 0.0, gen).gradient.pow(2).sum().item<double>();
  }
  EXPECT_LT(matched, 1e-6 * random + 1e-8);
}

TEST(SDS, TimestepsStayInTheAnnealedRange) {
  const NoiseSchedule schedule = NoiseSchedule::squaredcos_cap_v2(1000);
  SDSConfig cfg;
  cfg.t_min = 0.1;
  cfg.t_max = 0.9;
  cfg.t_max_end = 0.3;
  SDSGuidance sds(schedule, point_mass_denoiser(schedule, at::zeros({1, 3, 4, 4})), cfg);
  at::Generator gen = at::detail::createCPUGenerator(1);
  const at::Tensor ids = at::zeros({64, 16}, at::kLong), views = at::zeros({64, 4});
  const at::Tensor early = sds.step(at::rand({64, 3, 4, 4}), ids, views, 0.0, gen).timesteps;
  const at::Tensor late = sds.step(at::rand({64, 3, 4, 4}), ids, views, 1.0, gen).timesteps;
  EXPECT_GE(early.min().item<int64_t>(), 100);
  EXPECT_LE(early.max().item<int64_t>(), 900);
  EXPECT_GT(early.max().item<int64_t>(), 600);
  EXPECT_LE(late.max().item<int64_t>(), 300);
  EXPECT_GE(late.min().item<int64_t>(), 100);
}

TEST(SDS, ConfigIsStrict) {
  EXPECT_TRUE(test::contains(test::input_error_of([] {
                               sds_config_from_json({{"t_min", 0.9}, {"t_max", 0.5}});
                             }),
                             "t_min"));
  EXPECT_TRUE(test::contains(test::input_error_of([] {
                               sds_config_from_json({{"cfg", 3}});
                             }),
                             "unknown key"));
}

}  // namespace
}  // namespace nd
