// Mesh files: glTF 2.0 binary (.glb), Wavefront OBJ (+ .mtl) and binary PLY — writers, and readers that parse
// back what the writers make (and plain variants of it) for tests and tools.
//
// Writers (atomic: temp file + rename; InputError if check_mesh fails or the file cannot be written):
//   * write_glb: one mesh, one primitive (triangles): POSITION (float VEC3 with min/max), NORMAL (if any),
//     COLOR_0 (float VEC3, LINEAR, if any, clamped to [0,1]), indices UNSIGNED_INT; one material
//     (white base color, metallic 0, roughness 1, single-sided); asset.generator "nerfdream". A mesh without
//     triangles gives a valid file with an empty scene.
//   * write_obj: "v x y z r g b" (the common vertex-color extension), "vn", "f a//a b//b c//c"; a .mtl with
//     the same stem beside it (one plain white diffuse material, so the vertex colors show as they are).
//   * write_ply: binary_little_endian 1.0: float x y z, float nx ny nz (if normals), uchar red green blue (if
//     colors); faces as "list uchar uint vertex_indices".
// Colors: TriangleMesh holds linear RGB. glTF stores it linear (as the spec says COLOR_0 is); OBJ and PLY
// store display values, sRGB-encoded, as the viewers that read their vertex colors (MeshLab, Blender) assume.
//
// Readers (InputError naming the file on anything malformed: bad magic, truncated data, an index out of
// range, unsupported encodings): colors come back linear, normals and colors are empty when the file has
// none. read_glb reads the first primitive of the first mesh (float VEC3/VEC4 attributes, u8/u16/u32
// indices, buffer 0 = the GLB's BIN chunk). read_obj reads v/vn/f (polygons are fanned; a vertex takes the
// normal its face corners name; colors only if every vertex has one). read_ply reads binary little-endian
// files with any scalar property types.
#pragma once
#include <string>

#include "mesh/mesh.h"

namespace nd {

void write_glb(const std::string& path, const TriangleMesh& mesh);
void write_obj(const std::string& path, const TriangleMesh& mesh);  // and <stem>.mtl
void write_ply(const std::string& path, const TriangleMesh& mesh);

TriangleMesh read_glb(const std::string& path);
TriangleMesh read_obj(const std::string& path);
TriangleMesh read_ply(const std::string& path);

// The sRGB transfer function (IEC 61966-2-1) on [0, 1].
float linear_to_srgb(float linear);
float srgb_to_linear(float srgb);

}  // namespace nd
