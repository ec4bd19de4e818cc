// Truncated exponential (torch-ngp / stable-dreamfusion): exp(x) forward, exp(min(x, 15)) in backward,
// so that a large density pre-activation cannot produce an exploding gradient.
#pragma once
#include <ATen/ATen.h>

namespace nd {

// x: any shape, float. Differentiable.
at::Tensor trunc_exp(const at::Tensor& x);

}  // namespace nd
