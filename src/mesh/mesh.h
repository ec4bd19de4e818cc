// A triangle mesh as plain arrays: what marching cubes makes, cleanup edits and the exporters write.
// The module knows nothing of NeRF; it meets the rest of nerfdream at these arrays (and [V,3] tensors).
//
//   positions: [V] xyz.
//   normals:   [V] unit vectors pointing out of the solid, or empty.
//   colors:    [V] linear RGB in [0, 1], or empty.
//   triangles: [T] vertex indices, counter-clockwise seen from outside (the right-hand rule gives the
//              outward normal), as glTF wants.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace nd {

struct TriangleMesh {
  std::vector<std::array<float, 3>> positions, colors, normals;
  std::vector<std::array<uint32_t, 3>> triangles;

  size_t num_vertices() const { return positions.size(); }
  size_t num_triangles() const { return triangles.size(); }
};

struct BoundingBox {
  std::array<float, 3> min{0, 0, 0}, max{0, 0, 0};
};

// Total triangle area (float64 accumulation).
double surface_area(const TriangleMesh& mesh);

// Σ p0·(p1 × p2) / 6 over the triangles: the enclosed volume for a closed mesh, positive when it is
// oriented outward (meaningless for an open one).
double signed_volume(const TriangleMesh& mesh);

// Per-axis min/max of the positions; all zeros for a mesh without vertices.
BoundingBox bounding_box(const TriangleMesh& mesh);

// Edge census over undirected edges: `boundary` edges belong to one triangle, `non_manifold` to more than
// two, `misoriented` to two that traverse it in the same direction. All zero: closed and consistently
// oriented.
struct EdgeStats {
  int64_t edges = 0, boundary = 0, non_manifold = 0, misoriented = 0;
  bool closed_and_oriented() const { return boundary == 0 && non_manifold == 0 && misoriented == 0; }
};
EdgeStats edge_stats(const TriangleMesh& mesh);

// Throws InputError ("<what>: ...") unless normals/colors are empty or one per vertex, every index is in
// range and every position, normal and color is finite.
void check_mesh(const TriangleMesh& mesh, const std::string& what);

// positions as a [V,3] float32 tensor (e.g. to query an albedo field at the vertices).
at::Tensor positions_tensor(const TriangleMesh& mesh);

// Sets colors from rgb: [V,3] floating (any device), clamped to [0, 1]; NaN becomes 0.
void set_colors(TriangleMesh& mesh, const at::Tensor& rgb);

}  // namespace nd
