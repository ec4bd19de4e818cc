// composite_reference(): the compositing formula from ordinary LibTorch ops, differentiable by autograd.
// Samples are scattered into a padded [R, M] matrix (M = the longest ray), the exclusive cumulative sum of
// σδ gives T, and the weights are gathered back into the packed layout.
#include "render/composite.h"

namespace nd {

CompositeResult composite_reference(const at::Tensor& sigmas, const at::Tensor& rgbs,
                                    const at::Tensor& deltas, const at::Tensor& ts,
                                    const at::Tensor& ray_offsets, const at::Tensor& ray_counts) {
  detail::check_composite_inputs(sigmas, rgbs, deltas, ts, ray_offsets, ray_counts);
  const int64_t S = sigmas.size(0), R = ray_offsets.size(0), C = rgbs.size(1);
  const auto opts = sigmas.options();
  const auto long_opts = ray_offsets.options();
  // One entry per owned sample: its ray, its position k along the ray and its packed index.
  const auto ray_id = at::repeat_interleave(ray_counts);                                 // [N]
  const auto first = ray_counts.cumsum(0) - ray_counts;                                  // [R] exclusive scan
  const auto k = at::arange(ray_id.size(0), long_opts) - first.index_select(0, ray_id);  // [N]
  const auto idx = ray_offsets.index_select(0, ray_id) + k;                              // [N] into [0, S)
  const int64_t M = R > 0 ? ray_counts.max().item<int64_t>() : 0;
  const auto cell = ray_id * M + k;  // position in the padded [R, M] matrix

  const auto x = (sigmas * deltas).index_select(0, idx);                             // [N] optical thickness
  const auto pad = at::zeros({R * M}, opts).scatter(0, cell, x).view({R, M});        // [R,M]
  const auto exclusive = at::constant_pad_nd(pad.cumsum(1), {1, 0}).slice(1, 0, M);  // Σ_{j<i}
  const auto w_pad = at::exp(-exclusive) * (1 - at::exp(-pad));
  const auto w = w_pad.reshape({R * M}).gather(0, cell);  // [N]

  CompositeResult out;
  out.weights = at::zeros({S}, opts).scatter(0, idx, w);
  out.rgb = at::zeros({R, C}, opts).index_add(0, ray_id, w.unsqueeze(1) * rgbs.index_select(0, idx));
  out.depth = at::zeros({R}, opts).index_add(0, ray_id, w * ts.index_select(0, idx));
  out.opacity = at::zeros({R}, opts).index_add(0, ray_id, w);
  return out;
}

}  // namespace nd
