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
  auto x = a.to(at::kDouble).permute({2, 0, 1}).contiguous();  // [C,H,W]
  auto y = b.to(at::kDouble).permute({2, 0, 1}).contiguous();
  // The 11×11 Gaussian is separable: filter rows, then columns, as 11 shifted multiply-adds each ("valid"
  // region). This needs a few image-sized buffers, where conv2d's im2col would need 121 of them.
  double g[11], sum = 0;
  for (int i = 0; i < 11; ++i) sum += g[i] = std::exp(-((i - 5) * (i - 5)) / (2 * 1.5 * 1.5));
  auto filt = [&](const at::Tensor& t) -> at::Tensor {  // t: [C,H,W]
    const int64_t h = t.size(1) - 10, w = t.size(2) - 10;
    at::Tensor rows = at::zeros({t.size(0), t.size(1), w}, t.options());
    for (int i = 0; i < 11; ++i) rows.add_(t.slice(2, i, i + w), g[i] / sum);
    at::Tensor out = at::zeros({t.size(0), h, w}, t.options());
    for (int i = 0; i < 11; ++i) out.add_(rows.slice(1, i, i + h), g[i] / sum);
    return out;
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
