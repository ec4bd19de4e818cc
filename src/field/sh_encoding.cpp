#include "field/sh_encoding.h"

namespace nd {

at::Tensor spherical_harmonics_deg4(const at::Tensor& dirs) {
  auto x = dirs.select(1, 0), y = dirs.select(1, 1), z = dirs.select(1, 2);
  auto xx = x * x, yy = y * y, zz = z * z, xy = x * y, yz = y * z, xz = x * z;
  std::vector<at::Tensor> sh = {
      at::full_like(x, 0.28209479177387814),
      -0.48860251190291987 * y,
      0.48860251190291987 * z,
      -0.48860251190291987 * x,
      1.0925484305920792 * xy,
      -1.0925484305920792 * yz,
      0.94617469575755997 * zz - 0.31539156525251999,
      -1.0925484305920792 * xz,
      0.54627421529603959 * (xx - yy),
      0.59004358992664352 * y * (-3.0 * xx + yy),
      2.8906114426405538 * xy * z,
      0.45704579946446572 * y * (1.0 - 5.0 * zz),
      0.3731763325901154 * z * (5.0 * zz - 3.0),
      0.45704579946446572 * x * (1.0 - 5.0 * zz),
      1.4453057213202769 * z * (xx - yy),
      0.59004358992664352 * x * (-xx + 3.0 * yy),
  };
  return at::stack(sh, 1);
}

}  // namespace nd
