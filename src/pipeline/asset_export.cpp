#include "pipeline/asset_export.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <filesystem>

#include "mesh/fill_cavities.h"
#include "mesh/marching_cubes.h"
#include "mesh/mesh_cleanup.h"
#include "mesh/mesh_export.h"

namespace nd {

at::Tensor density_lattice(NerfFieldImpl& field, int res) {
  torch::NoGradGuard no_grad;
  const double bound = field.bound();
  const at::Tensor axis = at::linspace(-bound, bound, res, at::kFloat);
  at::Tensor out = at::empty({res, res, res}, at::kFloat);
  // One x-slab at a time: res² points (65k at 256), so memory stays small at any resolution.
  const at::Tensor yz = at::stack(at::meshgrid({axis, axis}, "ij"), -1).view({-1, 2});
  for (int ix = 0; ix < res; ++ix) {
    const at::Tensor x = at::full({yz.size(0), 1}, axis[ix].item<float>(), at::kFloat);
    out[ix].copy_(field.density(at::cat({x, yz}, 1)).view({res, res}));
  }
  return out;
}

TriangleMesh extract_mesh(NerfFieldImpl& field, const MeshConfig& config) {
  const float b = static_cast<float>(field.bound());
  at::Tensor sigma = density_lattice(field, config.resolution);
  const auto threshold = static_cast<float>(config.density_threshold);
  if (config.fill_cavities) {
    // A distilled NeRF is often a shell: raise the enclosed cells above the isosurface.
    const at::Tensor above = sigma > threshold;
    sigma = at::where(fill_cavities(above) & ~above, at::full_like(sigma, 2 * threshold), sigma);
  }
  TriangleMesh mesh =
      marching_cubes(sigma, static_cast<float>(config.density_threshold), {-b, -b, -b}, {b, b, b});
  if (mesh.triangles.empty()) return mesh;
  CleanupOptions clean;
  clean.min_component_fraction = config.keep_component_fraction;
  clean.simplify_ratio = config.simplify_ratio;
  // A 256³ marching cubes gives ~1M triangles; a viewer and a glTF file want far fewer.
  const auto triangles = static_cast<int64_t>(mesh.triangles.size());
  if (config.max_triangles > 0 && triangles > config.max_triangles)
    clean.simplify_ratio =
        std::min(clean.simplify_ratio, static_cast<double>(config.max_triangles) / triangles);
  mesh = cleanup_mesh(mesh, clean);
  torch::NoGradGuard no_grad;
  set_colors(mesh, field.forward(positions_tensor(mesh)).rgb);
  return mesh;
}

void write_mesh_files(const std::string& dir, const TriangleMesh& mesh) {
  namespace fs = std::filesystem;
  write_glb((fs::path(dir) / "mesh.glb").string(), mesh);
  write_obj((fs::path(dir) / "mesh.obj").string(), mesh);
  write_ply((fs::path(dir) / "mesh.ply").string(), mesh);
}

}  // namespace nd
