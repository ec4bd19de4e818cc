// Real spherical harmonics of a unit direction, degree 4 (16 values), for view-dependent color
// (Instant-NGP's "SphericalHarmonics" encoding; the constants are the standard real SH basis).
#pragma once
#include <ATen/ATen.h>

namespace nd {

// dirs: [N,3] unit vectors → [N,16]. Differentiable (plain tensor ops).
at::Tensor spherical_harmonics_deg4(const at::Tensor& dirs);

}  // namespace nd
