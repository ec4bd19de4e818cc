// Image quality metrics for held-out evaluation.
#pragma once
#include <ATen/ATen.h>

namespace nd {

// a, b: [H,W,C] float in [0,1]. PSNR = -10·log10(MSE), in dB.
double psnr(const at::Tensor& a, const at::Tensor& b);

// Structural similarity (Wang et al. 2004) as the NeRF papers report it: 11×11 Gaussian window with
// σ = 1.5, C1 = 0.01², C2 = 0.03², computed per channel over the valid region and averaged.
// a, b: [H,W,C] float in [0,1], H and W >= 11.
double ssim(const at::Tensor& a, const at::Tensor& b);

}  // namespace nd
