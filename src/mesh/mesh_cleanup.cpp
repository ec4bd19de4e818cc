#include "mesh/mesh_cleanup.h"

#include <meshoptimizer.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <unordered_map>

#include "core/error.h"

namespace nd {

namespace {

// Keeps the triangles whose flag is set, then drops the vertices nobody uses.
TriangleMesh keep_triangles(const TriangleMesh& mesh, const std::vector<char>& keep) {
  TriangleMesh out;
  out.positions = mesh.positions;
  out.normals = mesh.normals;
  out.colors = mesh.colors;
  for (size_t t = 0; t < mesh.triangles.size(); ++t)
    if (keep[t]) out.triangles.push_back(mesh.triangles[t]);
  return remove_unused_vertices(out);
}

// Union-find over vertices; component id of each triangle, numbered in order of first appearance.
std::vector<int64_t> triangle_components(const TriangleMesh& mesh, int64_t* num_components) {
  std::vector<uint32_t> parent(mesh.positions.size());
  std::iota(parent.begin(), parent.end(), 0u);
  const auto find = [&](uint32_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  for (const auto& t : mesh.triangles)
    for (int k = 1; k < 3; ++k) {
      const uint32_t a = find(t[0]), b = find(t[k]);
      if (a != b) parent[std::max(a, b)] = std::min(a, b);
    }
  std::unordered_map<uint32_t, int64_t> id;
  std::vector<int64_t> component(mesh.triangles.size());
  for (size_t t = 0; t < mesh.triangles.size(); ++t)
    component[t] = id.emplace(find(mesh.triangles[t][0]), int64_t(id.size())).first->second;
  *num_components = int64_t(id.size());
  return component;
}

}  // namespace

TriangleMesh remove_unused_vertices(const TriangleMesh& mesh) {
  check_mesh(mesh, "mesh cleanup");
  const uint32_t unset = 0xFFFFFFFFu;
  std::vector<uint32_t> remap(mesh.positions.size(), unset);
  for (const auto& t : mesh.triangles)
    for (uint32_t v : t) remap[v] = 0;
  TriangleMesh out;
  for (size_t v = 0; v < remap.size(); ++v) {
    if (remap[v] == unset) continue;
    remap[v] = uint32_t(out.positions.size());
    out.positions.push_back(mesh.positions[v]);
    if (!mesh.normals.empty()) out.normals.push_back(mesh.normals[v]);
    if (!mesh.colors.empty()) out.colors.push_back(mesh.colors[v]);
  }
  out.triangles.reserve(mesh.triangles.size());
  for (const auto& t : mesh.triangles) out.triangles.push_back({remap[t[0]], remap[t[1]], remap[t[2]]});
  return out;
}

TriangleMesh weld_vertices(const TriangleMesh& mesh) {
  check_mesh(mesh, "mesh cleanup");
  struct Hash {
    size_t operator()(const std::array<uint32_t, 3>& k) const {
      return (size_t(k[0]) * 0x9E3779B97F4A7C15ull) ^ (size_t(k[1]) * 0xC2B2AE3D27D4EB4Full) ^
             (size_t(k[2]) * 0x165667B19E3779F9ull);
    }
  };
  std::unordered_map<std::array<uint32_t, 3>, uint32_t, Hash> first;
  first.reserve(mesh.positions.size());
  std::vector<uint32_t> remap(mesh.positions.size());
  for (size_t v = 0; v < mesh.positions.size(); ++v) {
    std::array<uint32_t, 3> key;
    for (int a = 0; a < 3; ++a) {
      const float c = mesh.positions[v][a] == 0.0f ? 0.0f : mesh.positions[v][a];  // −0 == +0
      std::memcpy(&key[a], &c, 4);
    }
    remap[v] = first.emplace(key, uint32_t(v)).first->second;
  }
  TriangleMesh out;
  out.positions = mesh.positions;
  out.normals = mesh.normals;
  out.colors = mesh.colors;
  for (const auto& t : mesh.triangles) {
    const std::array<uint32_t, 3> w = {remap[t[0]], remap[t[1]], remap[t[2]]};
    if (w[0] != w[1] && w[1] != w[2] && w[0] != w[2]) out.triangles.push_back(w);
  }
  return remove_unused_vertices(out);
}

std::vector<int64_t> component_sizes(const TriangleMesh& mesh) {
  check_mesh(mesh, "mesh cleanup");
  int64_t n = 0;
  const auto component = triangle_components(mesh, &n);
  std::vector<int64_t> sizes(static_cast<size_t>(n), 0);
  for (int64_t c : component) ++sizes[c];
  std::sort(sizes.rbegin(), sizes.rend());
  return sizes;
}

TriangleMesh remove_small_components(const TriangleMesh& mesh, double min_fraction, int keep_largest) {
  check_mesh(mesh, "mesh cleanup");
  require(
      min_fraction >= 0 && min_fraction <= 1,
      "mesh cleanup: the minimum component fraction must be in [0, 1], got " + std::to_string(min_fraction));
  require(keep_largest >= 0, "mesh cleanup: keep_largest must be >= 0, got " + std::to_string(keep_largest));
  int64_t n = 0;
  const auto component = triangle_components(mesh, &n);
  std::vector<int64_t> size(static_cast<size_t>(n), 0);
  for (int64_t c : component) ++size[c];
  const int64_t largest = n ? *std::max_element(size.begin(), size.end()) : 0;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return size[a] > size[b]; });
  std::vector<char> keep_component(static_cast<size_t>(n), 0);
  for (size_t rank = 0; rank < order.size(); ++rank) {
    if (keep_largest > 0 && int64_t(rank) >= keep_largest) break;
    if (double(size[order[rank]]) >= min_fraction * double(largest)) keep_component[order[rank]] = 1;
  }
  std::vector<char> keep(mesh.triangles.size());
  for (size_t t = 0; t < keep.size(); ++t) keep[t] = keep_component[component[t]];
  return keep_triangles(mesh, keep);
}

TriangleMesh simplify(const TriangleMesh& mesh, double target_ratio, double target_error) {
  check_mesh(mesh, "mesh simplification");
  require(target_ratio > 0 && target_ratio <= 1,
          "mesh simplification: the target ratio must be in (0, 1], got " + std::to_string(target_ratio));
  require(target_error >= 0, "mesh simplification: the target error must be >= 0");
  if (mesh.triangles.empty() || target_ratio == 1) return remove_unused_vertices(mesh);
  const size_t index_count = 3 * mesh.triangles.size();
  const size_t target = std::max<size_t>(3, size_t(double(mesh.triangles.size()) * target_ratio) * 3);
  std::vector<uint32_t> out(index_count);
  const size_t n =
      meshopt_simplify(out.data(), mesh.triangles[0].data(), index_count, mesh.positions[0].data(),
                       mesh.positions.size(), sizeof(float) * 3, target, float(target_error));
  TriangleMesh result;
  result.positions = mesh.positions;
  result.normals = mesh.normals;
  result.colors = mesh.colors;
  result.triangles.resize(n / 3);
  std::copy_n(out.data(), n, result.triangles.empty() ? nullptr : result.triangles[0].data());
  return remove_unused_vertices(result);
}

TriangleMesh cleanup_mesh(const TriangleMesh& mesh, const CleanupOptions& options) {
  TriangleMesh out = options.weld ? weld_vertices(mesh) : remove_unused_vertices(mesh);
  if (options.min_component_fraction > 0 || options.keep_largest > 0)
    out = remove_small_components(out, options.min_component_fraction, options.keep_largest);
  if (options.simplify_ratio < 1) out = simplify(out, options.simplify_ratio, options.simplify_error);
  return out;
}

}  // namespace nd
