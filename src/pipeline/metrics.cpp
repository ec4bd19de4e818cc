#include "pipeline/metrics.h"

#include <cmath>

namespace nd {

double psnr(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.sizes() == b.sizes(), "psnr: images differ in size");
  const double mse = (a.to(at::kDouble) - b.to(at::kDouble)).pow(2).mean().item<double>();
  return -10.0 * std::log10(std::max(mse, 1e-20));
}

double ssim(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.sizes() == b.sizes() && a.dim() == 3, "ssim: images must be [H,W,C] of one size");
  TORCH_CHECK(a.size(0) >= 11 && a.size(1) >= 11, "ssim: images must be at least 11×11");
  const int64_t c = a.size(2);
  auto x = a.to(at::kDouble).permute({2, 0, 1}).unsqueeze(0);  // [1,C,H,W]
  auto y = b.to(at::kDouble).permute({2, 0, 1}).unsqueeze(0);
  auto coords = at::arange(11, at::kDouble) - 5.0;
  auto g = at::exp(-(coords * coords) / (2 * 1.5 * 1.5));
  g = g / g.sum();
  auto kernel = (g.view({11, 1}) * g.view({1, 11})).view({1, 1, 11, 11}).repeat({c, 1, 1, 1});
  auto filt = [&](const at::Tensor& t) -> at::Tensor {
    return at::conv2d(t, kernel, at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0},
                      at::IntArrayRef{1, 1}, c);
  };
  at::Tensor mu_x = filt(x);
  at::Tensor mu_y = filt(y);
  auto sxx = filt(x * x) - mu_x * mu_x;
  auto syy = filt(y * y) - mu_y * mu_y;
  auto sxy = filt(x * y) - mu_x * mu_y;
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  auto map =
      ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (sxx + syy + c2));
  return map.mean().item<double>();
}

}  // namespace nd
