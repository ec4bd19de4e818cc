// Grids and meshes shared by the mesh tests.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <cmath>

#include "mesh/marching_cubes.h"

namespace nd::test {

// grid[i][j][k] = f(x_i, y_j, z_k) on the lattice x_i = lo + i·(hi − lo)/(r − 1) of [lo, hi]³.
template <class F>
at::Tensor lattice_grid(int64_t r, float lo, float hi, F&& f) {
  auto grid = at::empty({r, r, r}, at::kFloat);
  float* g = grid.data_ptr<float>();
  const double step = (double(hi) - lo) / double(r - 1);
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < r; ++j)
      for (int64_t k = 0; k < r; ++k)
        g[(i * r + j) * r + k] = float(f(lo + i * step, lo + j * step, lo + k * step));
  return grid;
}

// Signed distance to a sphere, positive inside (iso 0 gives the sphere).
inline at::Tensor sphere_grid(int64_t r, double radius, std::array<double, 3> c = {0, 0, 0}) {
  return lattice_grid(r, -1.0f, 1.0f, [&](double x, double y, double z) {
    return radius - std::sqrt((x - c[0]) * (x - c[0]) + (y - c[1]) * (y - c[1]) + (z - c[2]) * (z - c[2]));
  });
}

inline TriangleMesh sphere_mesh(int64_t r, double radius) {
  return marching_cubes(sphere_grid(r, radius), 0.0f, {-1, -1, -1}, {1, 1, 1});
}

}  // namespace nd::test
