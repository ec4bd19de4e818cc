// Volume compositing of packed ray samples (NeRF's quadrature, front to back).
//
// Ray r owns samples [ray_offsets[r], ray_offsets[r] + ray_counts[r]), ordered front to back. For sample i of
// a ray:  alpha_i = 1 − exp(−σ_i δ_i),  T_i = exp(−Σ_{j<i} σ_j δ_j),  w_i = T_i alpha_i. T is the exp of an
// exclusive running sum of optical thickness (never a cumprod of 1 − alpha, which loses precision and has a
// 0/0 gradient at alpha = 1). Samples that no ray owns get weight 0.
//
// Shapes (all CPU; float tensors share one dtype, float32 or float64):
//   sigmas      [S]    densities, >= 0
//   rgbs        [S,C]  per-sample colours (C >= 1, usually 3)
//   deltas      [S]    segment lengths
//   ts          [S]    distance of each sample along its ray (for depth)
//   ray_offsets [R]    int64
//   ray_counts  [R]    int64
#pragma once
#include <ATen/ATen.h>

namespace nd {

struct CompositeResult {
  at::Tensor weights;  // [S]   w_i
  at::Tensor rgb;      // [R,C] Σ w c
  at::Tensor depth;    // [R]   Σ w t
  at::Tensor opacity;  // [R]   Σ w   (1 − transmittance after the last sample)
};

// Fused, multi-threaded (over rays) forward and backward kernels wrapped in a torch::autograd::Function.
// Differentiable w.r.t. sigmas and rgbs (and deltas, ts) through all four outputs.
CompositeResult composite(const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& deltas,
                          const at::Tensor& ts, const at::Tensor& ray_offsets, const at::Tensor& ray_counts);

// The same from plain LibTorch ops (padded [R, max_count] layout, exclusive cumsum, gather back):
// differentiable by autograd, for tests and float64 gradient checks. Slower and memory-hungry.
CompositeResult composite_reference(const at::Tensor& sigmas, const at::Tensor& rgbs,
                                    const at::Tensor& deltas, const at::Tensor& ts,
                                    const at::Tensor& ray_offsets, const at::Tensor& ray_counts);

namespace detail {
// Shared input validation (TORCH_CHECK): shapes, dtypes, device, and that each ray's range lies in [0, S).
void check_composite_inputs(const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& deltas,
                            const at::Tensor& ts, const at::Tensor& ray_offsets,
                            const at::Tensor& ray_counts);
}  // namespace detail

}  // namespace nd
