#include <gtest/gtest.h>

#include <cmath>

#include "pipeline/metrics.h"

namespace nd {
namespace {

TEST(Metrics, PsnrOfKnownError) {
  auto a = at::full({16, 16, 3}, 0.5f);
  auto b = a + 0.1f;  // MSE 0.01 → 20 dB
  EXPECT_NEAR(psnr(a, b), 20.0, 1e-4);
}

TEST(Metrics, SsimIdentityAndDegradation) {
  torch::manual_seed(0);
  auto a = at::rand({32, 40, 3});
  EXPECT_NEAR(ssim(a, a), 1.0, 1e-9);
  auto noisy = (a + 0.1 * at::randn_like(a)).clamp(0, 1);
  auto very_noisy = (a + 0.3 * at::randn_like(a)).clamp(0, 1);
  const double s1 = ssim(a, noisy), s2 = ssim(a, very_noisy);
  EXPECT_LT(s1, 1.0);
  EXPECT_LT(s2, s1);
  EXPECT_NEAR(ssim(a, noisy), ssim(noisy, a), 1e-12);  // symmetric
}

TEST(Metrics, SsimOfConstantShiftMatchesFormula) {
  // Constant images: σ terms vanish, SSIM = (2·μx·μy + C1) / (μx² + μy² + C1).
  auto a = at::full({16, 16, 1}, 0.4f), b = at::full({16, 16, 1}, 0.6f);
  const double c1 = 1e-4;
  const double expected = (2 * 0.4 * 0.6 + c1) / (0.16 + 0.36 + c1);
  EXPECT_NEAR(ssim(a, b), expected, 1e-6);
}

}  // namespace
}  // namespace nd

namespace nd {
namespace {

// The separable filtering in ssim() against a direct 2-D convolution with the 11×11 Gaussian window.
TEST(Metrics, SsimMatchesDirectConvolution) {
  torch::manual_seed(1);
  auto a = at::rand({20, 23, 3}, at::kDouble), b = (a + 0.2 * at::rand({20, 23, 3}, at::kDouble)).clamp(0, 1);
  auto coords = at::arange(11, at::kDouble) - 5.0;
  auto g = at::exp(-(coords * coords) / (2 * 1.5 * 1.5));
  g = g / g.sum();
  auto kernel = (g.view({11, 1}) * g.view({1, 11})).view({1, 1, 11, 11}).repeat({3, 1, 1, 1});
  auto x = a.permute({2, 0, 1}).unsqueeze(0), y = b.permute({2, 0, 1}).unsqueeze(0);
  auto f = [&](const at::Tensor& t) -> at::Tensor {
    return at::conv2d(t, kernel, at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0},
                      at::IntArrayRef{1, 1}, 3);
  };
  at::Tensor mx = f(x);
  at::Tensor my = f(y);
  at::Tensor sxx = f(x * x) - mx * mx;
  at::Tensor syy = f(y * y) - my * my;
  at::Tensor sxy = f(x * y) - mx * my;
  const double c1 = 1e-4, c2 = 9e-4;
  const double expected =
      (((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2)))
          .mean()
          .item<double>();
  EXPECT_NEAR(ssim(a, b), expected, 1e-12);
}

}  // namespace
}  // namespace nd
