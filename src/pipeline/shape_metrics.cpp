#include "pipeline/shape_metrics.h"

#include <torch/csrc/autograd/grad_mode.h>

#include "mesh/fill_cavities.h"
#include "synth/scene.h"

namespace nd {

double occupancy_iou(const at::Tensor& predicted, const at::Tensor& truth) {
  const double inter = (predicted & truth).sum().item<double>();
  const double uni = (predicted | truth).sum().item<double>();
  return uni > 0 ? inter / uni : 1.0;
}

ShapeMetrics synth_shape_metrics(NerfFieldImpl& field, const SynthObject& object, double density_threshold,
                                 int res) {
  torch::NoGradGuard no_grad;
  const at::Tensor truth = occupancy_grid(object, res);  // [res,res,res] bool, cell centres
  const at::Tensor axis = (at::arange(res, at::kFloat) + 0.5f) * (2.0f / res) - 1.0f;
  const at::Tensor points = at::stack(at::meshgrid({axis, axis, axis}, "ij"), -1).view({-1, 3});
  std::vector<at::Tensor> sigmas, colors;
  for (int64_t a = 0; a < points.size(0); a += 1 << 16) {
    const FieldOutput f = field.forward(points.slice(0, a, std::min<int64_t>(points.size(0), a + (1 << 16))));
    sigmas.push_back(f.sigma);
    colors.push_back(f.rgb);
  }
  const at::Tensor above = (at::cat(sigmas) > density_threshold).view({res, res, res});
  const at::Tensor predicted = fill_cavities(above);
  ShapeMetrics m;
  m.iou = occupancy_iou(predicted, truth);
  m.iou_density = occupancy_iou(above, truth);
  m.predicted_cells = predicted.sum().item<int64_t>();
  m.true_cells = truth.sum().item<int64_t>();
  // Surface cells: inside, with a 6-neighbour outside (the box edge counts as outside).
  const at::Tensor t = at::constant_pad_nd(truth.to(at::kByte), {1, 1, 1, 1, 1, 1}, 0).to(at::kBool);
  at::Tensor all_in = truth.clone();
  for (int d = 0; d < 3; ++d)
    for (int s : {0, 2})
      all_in = all_in &
               t.narrow(0, d == 0 ? s : 1, res).narrow(1, d == 1 ? s : 1, res).narrow(2, d == 2 ? s : 1, res);
  const at::Tensor surface = (truth & ~all_in).view({-1});
  const at::Tensor idx = surface.nonzero().view({-1});
  if (idx.numel() == 0) {
    m.color_error = 1;
    return m;
  }
  const at::Tensor p = points.index_select(0, idx);
  const at::Tensor rgb = at::cat(colors).index_select(0, idx);
  m.color_error = (rgb - nearest_part_albedo(object, p)).abs().mean().item<double>();
  return m;
}

}  // namespace nd
