#include "pipeline/view_consistency.h"

#include "core/error.h"
#include "pipeline/asset_export.h"

namespace nd {

FrontBackMass front_back_mass(const at::Tensor& density, double bound, const FrontBackRegion& region) {
  require(density.dim() == 3 && density.size(0) == density.size(1) && density.size(1) == density.size(2) &&
              density.size(0) >= 2,
          "front_back_mass: density must be a cubic [R,R,R] lattice");
  const int64_t res = density.size(0);
  const double h = 2 * bound / static_cast<double>(res - 1);
  const at::Tensor coord = at::linspace(-bound, bound, res, at::kDouble);  // the lattice's own points
  const at::Tensor alpha = 1 - at::exp(-density.to(at::kDouble).clamp_min(0) * h);
  // Masks along y and z broadcast over [ix][iy][iz].
  const at::Tensor in_band =
      ((coord >= region.y_min) & (coord <= region.y_max)).to(at::kDouble).view({1, res, 1});
  const at::Tensor back = (coord < -region.z_gap).to(at::kDouble).view({1, 1, res});
  const at::Tensor front = (coord > region.z_gap).to(at::kDouble).view({1, 1, res});
  FrontBackMass m;
  m.back = (alpha * in_band * back).sum().item<double>();
  m.front = (alpha * in_band * front).sum().item<double>();
  return m;
}

FrontBackMass front_back_mass(NerfFieldImpl& field, const FrontBackRegion& region, int res) {
  return front_back_mass(density_lattice(field, res), field.bound(), region);
}

bool chair_faces_front(NerfFieldImpl& field, double* asymmetry) {
  const double a = front_back_mass(field, kChairBackrestRegion).asymmetry();
  if (asymmetry) *asymmetry = a;
  return a >= kFacesFrontMinAsymmetry;
}

}  // namespace nd
