// Text-to-3D quality against the synth world's ground truth (shared/spec/synth-world.md, "Ground truth"):
// IoU of the occupancy of the 64³ cell centres over [-1,1]^3 (the field's σ above a threshold vs inside
// the object) — of the solid (σ above the threshold with enclosed cavities filled, mesh/fill_cavities.h: the
// inside of the exported mesh) and of σ alone — and the albedo error at the object's surface cells (the
// field's color vs the nearest part's albedo, mean absolute difference over RGB).
#pragma once
#include <ATen/ATen.h>

#include "field/nerf_field.h"
#include "synth/caption.h"

namespace nd {

struct ShapeMetrics {
  double iou = 0;          // the solid (enclosed cavities filled): what the exported mesh encloses
  double iou_density = 0;  // σ above the threshold alone (a hollow shell scores low here)
  double color_error = 0;  // mean |rgb − albedo| over the ground truth's surface cells (1 when none)
  int64_t predicted_cells = 0, true_cells = 0;
};

ShapeMetrics synth_shape_metrics(NerfFieldImpl& field, const SynthObject& object, double density_threshold,
                                 int res = 64);

// The same from occupancies: predicted and truth bool [res,res,res].
double occupancy_iou(const at::Tensor& predicted, const at::Tensor& truth);

}  // namespace nd
