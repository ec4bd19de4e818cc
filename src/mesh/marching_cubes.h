// Marching cubes: the iso-surface of a scalar grid (e.g. NeRF density) as a closed, outward-oriented mesh.
//
// Grid: grid[ix][iy][iz] (float32 or any floating dtype, any device; [Rx,Ry,Rz], each >= 2) holds the value
// at the LATTICE (corner) positions x_i = box_min.x + i·(box_max.x − box_min.x)/(Rx − 1) (same for y, z), so
// grid[0] lies on box_min and grid[R−1] on box_max.
// Inside: value > iso (density). NaN counts as far outside (as −FLT_MAX); ±inf as ±FLT_MAX.
//
// Output guarantees, for any grid:
//   * one vertex per crossed lattice edge, shared by every cube around the edge;
//   * closed: the grid is padded with a layer of "outside", so a solid touching the box is capped by faces
//     lying ON the box faces (the pad has zero width: vertices on pad edges sit at the border sample);
//   * every edge is used by exactly two triangles, in opposite directions; triangles are counter-clockwise
//     seen from outside (signed_volume > 0);
//   * normals: −∇value (central differences, one-sided at the border) interpolated along the edge and
//     normalised; the edge direction (inside → outside) where the gradient vanishes, and the box face's
//     outward axis on the caps;
//   * colors are left empty (set them from the positions: positions_tensor / set_colors);
//   * deterministic: the same output for any thread count.
// Cube cases come from a table generated at start-up: each cube face's crossings are paired so that inside
// corners diagonal to each other stay separate (the same rule from both sides of a face, hence no cracks),
// the pairs chain into closed loops on the cube, and each loop is triangulated without a diagonal lying in
// a cube face (which the neighbouring cube could repeat).
#pragma once
#include <ATen/ATen.h>

#include <array>

#include "mesh/mesh.h"

namespace nd {

TriangleMesh marching_cubes(const at::Tensor& grid, float iso, std::array<float, 3> box_min,
                            std::array<float, 3> box_max);

}  // namespace nd
