// Mesh cleanup after marching cubes: weld duplicate vertices, drop small disconnected pieces (NeRF
// "floaters"), drop unused vertices, and optional simplification (meshoptimizer's edge collapse). Every
// function returns a new mesh and keeps normals/colors per vertex; triangle order and orientation are kept,
// and the output is deterministic.
#pragma once
#include "mesh/mesh.h"

namespace nd {

// Merges vertices with bit-identical positions (the first keeps its normal/color), then drops triangles that
// use a vertex twice. Marching cubes makes such duplicates where a solid is capped at the box (three on each
// box corner) and where samples equal the iso value exactly; in the latter case the surface pinches there and
// welding can make edges non-manifold (four triangles), so cleanup_mesh does not weld unless asked.
TriangleMesh weld_vertices(const TriangleMesh& mesh);

// Drops vertices that no triangle uses and renumbers the rest (in their original order).
TriangleMesh remove_unused_vertices(const TriangleMesh& mesh);

// Components: triangles connected through shared vertices. Keeps the components with at least
// min_fraction × (the largest one's triangle count) triangles; with keep_largest > 0, also at most the
// keep_largest largest of those (ties: the earlier one). Unused vertices are dropped.
TriangleMesh remove_small_components(const TriangleMesh& mesh, double min_fraction = 0.05,
                                     int keep_largest = 0);

// Triangle count of every component, largest first.
std::vector<int64_t> component_sizes(const TriangleMesh& mesh);

// meshoptimizer's topology-preserving simplifier: at most ~target_ratio × the triangles, stopping early where
// the deformation would exceed target_error (relative to the mesh's extent). Unused vertices are dropped.
TriangleMesh simplify(const TriangleMesh& mesh, double target_ratio, double target_error = 0.01);

struct CleanupOptions {
  bool weld = false;                     // see weld_vertices
  double min_component_fraction = 0.05;  // see remove_small_components; 0 keeps every component
  int keep_largest = 0;
  double simplify_ratio = 1.0;  // < 1: simplify to this fraction of the triangles
  double simplify_error = 0.01;
};

// weld (if asked) → remove_small_components → simplify (if asked) → remove_unused_vertices. Without weld and
// simplify, a closed, consistently oriented input stays so.
TriangleMesh cleanup_mesh(const TriangleMesh& mesh, const CleanupOptions& options = {});

}  // namespace nd
