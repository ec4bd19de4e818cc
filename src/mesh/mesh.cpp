#include "mesh/mesh.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "core/error.h"

namespace nd {

namespace {

using Vec3d = std::array<double, 3>;

Vec3d to_d(const std::array<float, 3>& p) { return {p[0], p[1], p[2]}; }
Vec3d sub(const Vec3d& a, const Vec3d& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
Vec3d cross(const Vec3d& a, const Vec3d& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const Vec3d& a, const Vec3d& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

bool finite3(const std::array<float, 3>& v) {
  return std::isfinite(v[0]) && std::isfinite(v[1]) && std::isfinite(v[2]);
}

}  // namespace

double surface_area(const TriangleMesh& mesh) {
  double area = 0;
  for (const auto& t : mesh.triangles) {
    const Vec3d p0 = to_d(mesh.positions[t[0]]);
    const Vec3d n = cross(sub(to_d(mesh.positions[t[1]]), p0), sub(to_d(mesh.positions[t[2]]), p0));
    area += 0.5 * std::sqrt(dot(n, n));
  }
  return area;
}

double signed_volume(const TriangleMesh& mesh) {
  double volume = 0;
  for (const auto& t : mesh.triangles)
    volume += dot(to_d(mesh.positions[t[0]]), cross(to_d(mesh.positions[t[1]]), to_d(mesh.positions[t[2]])));
  return volume / 6.0;
}

BoundingBox bounding_box(const TriangleMesh& mesh) {
  BoundingBox box;
  if (mesh.positions.empty()) return box;
  box.min = box.max = mesh.positions[0];
  for (const auto& p : mesh.positions)
    for (int a = 0; a < 3; ++a) {
      box.min[a] = std::min(box.min[a], p[a]);
      box.max[a] = std::max(box.max[a], p[a]);
    }
  return box;
}

EdgeStats edge_stats(const TriangleMesh& mesh) {
  // Key: (min, max) vertex pair. Value: uses, and +1/-1 per traversal min→max / max→min.
  struct Use {
    int count = 0, direction = 0;
  };
  std::unordered_map<uint64_t, Use> edges;
  edges.reserve(mesh.triangles.size() * 2);
  for (const auto& t : mesh.triangles)
    for (int k = 0; k < 3; ++k) {
      const uint32_t a = t[k], b = t[(k + 1) % 3];
      auto& use = edges[(uint64_t(std::min(a, b)) << 32) | std::max(a, b)];
      ++use.count;
      use.direction += a < b ? 1 : -1;
    }
  EdgeStats stats;
  stats.edges = int64_t(edges.size());
  for (const auto& [key, use] : edges) {
    if (use.count == 1) ++stats.boundary;
    if (use.count > 2) ++stats.non_manifold;
    if (use.count == 2 && use.direction != 0) ++stats.misoriented;
  }
  return stats;
}

void check_mesh(const TriangleMesh& mesh, const std::string& what) {
  const size_t v = mesh.positions.size();
  require(
      mesh.normals.empty() || mesh.normals.size() == v,
      what + ": " + std::to_string(mesh.normals.size()) + " normals for " + std::to_string(v) + " vertices");
  require(
      mesh.colors.empty() || mesh.colors.size() == v,
      what + ": " + std::to_string(mesh.colors.size()) + " colors for " + std::to_string(v) + " vertices");
  require(v <= 0xFFFFFFFFull, what + ": more than 2^32 - 1 vertices");
  for (size_t i = 0; i < v; ++i) {
    if (!finite3(mesh.positions[i]))
      throw InputError(what + ": vertex " + std::to_string(i) + " has a non-finite position");
    if (!mesh.normals.empty() && !finite3(mesh.normals[i]))
      throw InputError(what + ": vertex " + std::to_string(i) + " has a non-finite normal");
    if (!mesh.colors.empty() && !finite3(mesh.colors[i]))
      throw InputError(what + ": vertex " + std::to_string(i) + " has a non-finite color");
  }
  for (size_t i = 0; i < mesh.triangles.size(); ++i)
    for (uint32_t index : mesh.triangles[i])
      if (index >= v)
        throw InputError(what + ": triangle " + std::to_string(i) + " refers to vertex " +
                         std::to_string(index) + " of " + std::to_string(v));
}

at::Tensor positions_tensor(const TriangleMesh& mesh) {
  auto out = at::empty({int64_t(mesh.positions.size()), 3}, at::kFloat);
  if (!mesh.positions.empty())
    std::copy_n(mesh.positions[0].data(), 3 * mesh.positions.size(), out.data_ptr<float>());
  return out;
}

void set_colors(TriangleMesh& mesh, const at::Tensor& rgb) {
  TORCH_CHECK(rgb.dim() == 2 && rgb.size(0) == int64_t(mesh.positions.size()) && rgb.size(1) == 3,
              "set_colors: rgb must be [V,3] with V = ", mesh.positions.size(), ", got ", rgb.sizes());
  TORCH_CHECK(rgb.is_floating_point(), "set_colors: rgb must be floating point");
  const auto c = at::nan_to_num(rgb.detach().to(at::kCPU, at::kFloat), 0.0).clamp(0.0, 1.0).contiguous();
  mesh.colors.resize(mesh.positions.size());
  if (!mesh.colors.empty()) std::copy_n(c.data_ptr<float>(), 3 * mesh.colors.size(), mesh.colors[0].data());
}

}  // namespace nd
