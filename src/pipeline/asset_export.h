// From a trained field to files: the density on a lattice → marching cubes at σ = threshold → floaters
// removed (and optional simplification) → vertex colors from the albedo field → GLB, OBJ(+MTL), PLY.
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "field/nerf_field.h"
#include "mesh/mesh.h"
#include "pipeline/generate_config.h"

namespace nd {

// σ at the res³ lattice points x_i = −bound + i·2·bound/(res − 1) (marching_cubes' convention), without
// gradients, in slices: [res,res,res] float32 indexed [ix][iy][iz].
at::Tensor density_lattice(NerfFieldImpl& field, int res);

// The colored, cleaned mesh of the field's isosurface (may be empty when nothing is dense enough).
TriangleMesh extract_mesh(NerfFieldImpl& field, const MeshConfig& config);

// Writes <dir>/mesh.glb, mesh.obj (+ mesh.mtl) and mesh.ply, each atomically.
void write_mesh_files(const std::string& dir, const TriangleMesh& mesh);

}  // namespace nd
