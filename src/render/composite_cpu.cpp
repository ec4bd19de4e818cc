// Fused CPU kernels for composite(): one forward sweep and one backward sweep per ray, threads over rays.
// Running sums are kept in double whatever the tensor dtype, so that long rays do not drift.
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <vector>

#include "render/composite.h"

namespace nd {

namespace detail {
void check_composite_inputs(const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& deltas,
                            const at::Tensor& ts, const at::Tensor& ray_offsets,
                            const at::Tensor& ray_counts) {
  TORCH_CHECK(sigmas.dim() == 1, "composite: sigmas must be [S], got ", sigmas.sizes());
  const int64_t S = sigmas.size(0);
  TORCH_CHECK(rgbs.dim() == 2 && rgbs.size(0) == S && rgbs.size(1) >= 1,
              "composite: rgbs must be [S,C] with S=", S, ", got ", rgbs.sizes());
  TORCH_CHECK(deltas.dim() == 1 && deltas.size(0) == S, "composite: deltas must be [", S, "], got ",
              deltas.sizes());
  TORCH_CHECK(ts.dim() == 1 && ts.size(0) == S, "composite: ts must be [", S, "], got ", ts.sizes());
  TORCH_CHECK(ray_offsets.dim() == 1 && ray_counts.sizes() == ray_offsets.sizes(),
              "composite: ray_offsets and ray_counts must both be [R], got ", ray_offsets.sizes(), " and ",
              ray_counts.sizes());
  TORCH_CHECK(ray_offsets.scalar_type() == at::kLong && ray_counts.scalar_type() == at::kLong,
              "composite: ray_offsets and ray_counts must be int64");
  const auto dtype = sigmas.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "composite: sigmas must be float32 or float64");
  TORCH_CHECK(rgbs.scalar_type() == dtype && deltas.scalar_type() == dtype && ts.scalar_type() == dtype,
              "composite: sigmas, rgbs, deltas and ts must share one dtype");
  for (const auto* t : {&sigmas, &rgbs, &deltas, &ts, &ray_offsets, &ray_counts})
    TORCH_CHECK(t->device().is_cpu(), "composite: CPU tensors only");
  const auto off = ray_offsets.contiguous(), cnt = ray_counts.contiguous();
  const int64_t* po = off.data_ptr<int64_t>();
  const int64_t* pc = cnt.data_ptr<int64_t>();
  for (int64_t r = 0; r < off.size(0); ++r)
    TORCH_CHECK(pc[r] >= 0 && po[r] >= 0 && po[r] + pc[r] <= S, "composite: ray ", r, " owns samples [",
                po[r], ", ", po[r] + pc[r], ") outside [0, ", S, ")");
}
}  // namespace detail

namespace {

constexpr int64_t kRayGrain = 64;

template <class scalar_t>
void composite_forward_kernel(const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& deltas,
                              const at::Tensor& ts, const at::Tensor& offsets, const at::Tensor& counts,
                              at::Tensor& weights, at::Tensor& rgb, at::Tensor& depth, at::Tensor& opacity) {
  const int64_t R = offsets.size(0), C = rgbs.size(1);
  const scalar_t* sg = sigmas.data_ptr<scalar_t>();
  const scalar_t* cl = rgbs.data_ptr<scalar_t>();
  const scalar_t* dl = deltas.data_ptr<scalar_t>();
  const scalar_t* tt = ts.data_ptr<scalar_t>();
  const int64_t* off = offsets.data_ptr<int64_t>();
  const int64_t* cnt = counts.data_ptr<int64_t>();
  scalar_t* w_out = weights.data_ptr<scalar_t>();
  scalar_t* rgb_out = rgb.data_ptr<scalar_t>();
  scalar_t* depth_out = depth.data_ptr<scalar_t>();
  scalar_t* op_out = opacity.data_ptr<scalar_t>();
  at::parallel_for(0, R, kRayGrain, [&](int64_t begin, int64_t end) {
    std::vector<double> acc(C);
    for (int64_t r = begin; r < end; ++r) {
      std::fill(acc.begin(), acc.end(), 0.0);
      double tau = 0.0, d = 0.0, o = 0.0;  // tau: exclusive running optical thickness
      for (int64_t i = off[r], e = off[r] + cnt[r]; i < e; ++i) {
        const double x = double(sg[i]) * double(dl[i]);
        const double w = std::exp(-tau) * -std::expm1(-x);
        tau += x;
        w_out[i] = scalar_t(w);
        const scalar_t* c = cl + i * C;
        for (int64_t k = 0; k < C; ++k) acc[k] += w * double(c[k]);
        d += w * double(tt[i]);
        o += w;
      }
      for (int64_t k = 0; k < C; ++k) rgb_out[r * C + k] = scalar_t(acc[k]);
      depth_out[r] = scalar_t(d);
      op_out[r] = scalar_t(o);
    }
  });
}

// Gradients (undefined output grads count as zero; undefined results are not computed):
//   g_j      = dL/dw_j + grad_rgb·c_j + grad_depth·t_j + grad_opacity
//   dL/dσ_i  = δ_i (T_{i+1} g_i − Σ_{j>i} w_j g_j),   dL/dδ_i = σ_i (…the same bracket…)
//   dL/dc_i  = w_i grad_rgb,                          dL/dt_i = w_i grad_depth
// T is rebuilt per ray in a forward pass, then one backward pass accumulates the suffix Σ_{j>i} w_j g_j.
template <class scalar_t>
void composite_backward_kernel(const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& deltas,
                               const at::Tensor& ts, const at::Tensor& offsets, const at::Tensor& counts,
                               const at::Tensor& g_w, const at::Tensor& g_rgb, const at::Tensor& g_depth,
                               const at::Tensor& g_op, at::Tensor& d_sigmas, at::Tensor& d_rgbs,
                               at::Tensor& d_deltas, at::Tensor& d_ts) {
  const int64_t R = offsets.size(0), C = rgbs.size(1);
  const scalar_t* sg = sigmas.data_ptr<scalar_t>();
  const scalar_t* cl = rgbs.data_ptr<scalar_t>();
  const scalar_t* dl = deltas.data_ptr<scalar_t>();
  const scalar_t* tt = ts.data_ptr<scalar_t>();
  const int64_t* off = offsets.data_ptr<int64_t>();
  const int64_t* cnt = counts.data_ptr<int64_t>();
  const scalar_t* gw = g_w.defined() ? g_w.data_ptr<scalar_t>() : nullptr;
  const scalar_t* grgb = g_rgb.defined() ? g_rgb.data_ptr<scalar_t>() : nullptr;
  const scalar_t* gdep = g_depth.defined() ? g_depth.data_ptr<scalar_t>() : nullptr;
  const scalar_t* gop = g_op.defined() ? g_op.data_ptr<scalar_t>() : nullptr;
  scalar_t* ds = d_sigmas.defined() ? d_sigmas.data_ptr<scalar_t>() : nullptr;
  scalar_t* dc = d_rgbs.defined() ? d_rgbs.data_ptr<scalar_t>() : nullptr;
  scalar_t* dd = d_deltas.defined() ? d_deltas.data_ptr<scalar_t>() : nullptr;
  scalar_t* dt = d_ts.defined() ? d_ts.data_ptr<scalar_t>() : nullptr;
  at::parallel_for(0, R, kRayGrain, [&](int64_t begin, int64_t end) {
    std::vector<double> trans;  // T_0 … T_n of the current ray
    std::vector<double> gc(C);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = cnt[r], o = off[r];
      if (n == 0) continue;
      for (int64_t k = 0; k < C; ++k) gc[k] = grgb ? double(grgb[r * C + k]) : 0.0;
      const double gd = gdep ? double(gdep[r]) : 0.0;
      const double go = gop ? double(gop[r]) : 0.0;
      trans.resize(n + 1);
      double tau = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        trans[i] = std::exp(-tau);
        tau += double(sg[o + i]) * double(dl[o + i]);
      }
      trans[n] = std::exp(-tau);
      double suffix = 0.0;  // Σ_{j>i} w_j g_j
      for (int64_t i = n - 1; i >= 0; --i) {
        const int64_t s = o + i;
        const double x = double(sg[s]) * double(dl[s]);
        const double w = trans[i] * -std::expm1(-x);
        const scalar_t* c = cl + s * C;
        double g = go + gd * double(tt[s]) + (gw ? double(gw[s]) : 0.0);
        for (int64_t k = 0; k < C; ++k) g += gc[k] * double(c[k]);
        const double bracket = trans[i + 1] * g - suffix;
        if (ds) ds[s] = scalar_t(double(dl[s]) * bracket);
        if (dd) dd[s] = scalar_t(double(sg[s]) * bracket);
        if (dc)
          for (int64_t k = 0; k < C; ++k) dc[s * C + k] = scalar_t(w * gc[k]);
        if (dt) dt[s] = scalar_t(w * gd);
        suffix += w * g;
      }
    }
  });
}

struct CompositeFunction : public torch::autograd::Function<CompositeFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const at::Tensor& sigmas, const at::Tensor& rgbs,
                                                const at::Tensor& deltas, const at::Tensor& ts,
                                                const at::Tensor& offsets, const at::Tensor& counts) {
    const int64_t S = sigmas.size(0), R = offsets.size(0), C = rgbs.size(1);
    auto weights = at::zeros({S}, sigmas.options());  // samples no ray owns keep 0
    auto rgb = at::empty({R, C}, sigmas.options());
    auto depth = at::empty({R}, sigmas.options());
    auto opacity = at::empty({R}, sigmas.options());
    AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "composite_forward", [&] {
      composite_forward_kernel<scalar_t>(sigmas, rgbs, deltas, ts, offsets, counts, weights, rgb, depth,
                                         opacity);
    });
    ctx->save_for_backward({sigmas, rgbs, deltas, ts, offsets, counts});
    ctx->set_materialize_grads(false);
    return {weights, rgb, depth, opacity};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &sigmas = saved[0], &rgbs = saved[1], &deltas = saved[2], &ts = saved[3];
    const auto &offsets = saved[4], &counts = saved[5];
    auto contig = [](const at::Tensor& t) { return t.defined() ? t.contiguous() : t; };
    const at::Tensor g_w = contig(grads[0]), g_rgb = contig(grads[1]), g_depth = contig(grads[2]),
                     g_op = contig(grads[3]);
    at::Tensor d_sigmas, d_rgbs, d_deltas, d_ts;
    if (!g_w.defined() && !g_rgb.defined() && !g_depth.defined() && !g_op.defined())
      return {d_sigmas, d_rgbs, d_deltas, d_ts, at::Tensor(), at::Tensor()};
    if (ctx->needs_input_grad(0)) d_sigmas = at::zeros_like(sigmas);
    if (ctx->needs_input_grad(1)) d_rgbs = at::zeros_like(rgbs);
    if (ctx->needs_input_grad(2)) d_deltas = at::zeros_like(deltas);
    if (ctx->needs_input_grad(3)) d_ts = at::zeros_like(ts);
    AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "composite_backward", [&] {
      composite_backward_kernel<scalar_t>(sigmas, rgbs, deltas, ts, offsets, counts, g_w, g_rgb, g_depth,
                                          g_op, d_sigmas, d_rgbs, d_deltas, d_ts);
    });
    return {d_sigmas, d_rgbs, d_deltas, d_ts, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

CompositeResult composite(const at::Tensor& sigmas, const at::Tensor& rgbs, const at::Tensor& deltas,
                          const at::Tensor& ts, const at::Tensor& ray_offsets, const at::Tensor& ray_counts) {
  detail::check_composite_inputs(sigmas, rgbs, deltas, ts, ray_offsets, ray_counts);
  auto out = CompositeFunction::apply(sigmas.contiguous(), rgbs.contiguous(), deltas.contiguous(),
                                      ts.contiguous(), ray_offsets.contiguous(), ray_counts.contiguous());
  return {out[0], out[1], out[2], out[3]};
}

}  // namespace nd
