#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "mesh/mesh_cleanup.h"
#include "mesh/mesh_export.h"
#include "mesh/mesh_test_util.h"
#include "test_support.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
using test::contains;
using test::input_error_of;

// A marching-cubes sphere with colors from its positions (spanning [0, 1], including 0 and 1 exactly).
TriangleMesh colored_sphere(int64_t r = 24) {
  TriangleMesh mesh = test::sphere_mesh(r, 0.7);
  const auto p = positions_tensor(mesh);
  set_colors(mesh, (p / 0.7 * 0.6 + 0.5));  // some channels clamp at 0 and 1
  return mesh;
}

void expect_same(const TriangleMesh& a, const TriangleMesh& b, float pos_tol, float normal_tol,
                 float color_tol) {
  ASSERT_EQ(a.num_vertices(), b.num_vertices());
  ASSERT_EQ(a.triangles, b.triangles);
  ASSERT_EQ(a.normals.size(), b.normals.size());
  ASSERT_EQ(a.colors.size(), b.colors.size());
  float dp = 0, dn = 0, dc = 0;
  for (size_t i = 0; i < a.num_vertices(); ++i)
    for (int c = 0; c < 3; ++c) {
      dp = std::max(dp, std::abs(a.positions[i][c] - b.positions[i][c]));
      if (!a.normals.empty()) dn = std::max(dn, std::abs(a.normals[i][c] - b.normals[i][c]));
      if (!a.colors.empty()) dc = std::max(dc, std::abs(a.colors[i][c] - b.colors[i][c]));
    }
  EXPECT_LE(dp, pos_tol);
  EXPECT_LE(dn, normal_tol);
  EXPECT_LE(dc, color_tol);
}

std::string slurp(const std::string& path) { return read_file(path); }
void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

nlohmann::json glb_json(const std::string& bytes) {
  uint32_t length;
  std::memcpy(&length, bytes.data() + 12, 4);
  return nlohmann::json::parse(bytes.substr(20, length));
}

TEST(MeshExport, GlbRoundTripIsExact) {
  test::TempDir dir;
  const TriangleMesh mesh = colored_sphere();
  const std::string path = dir.path + "/mesh.glb";
  write_glb(path, mesh);
  expect_same(read_glb(path), mesh, 0, 0, 0);

  const std::string bytes = slurp(path);
  EXPECT_EQ(bytes.substr(0, 4), "glTF");
  EXPECT_EQ(bytes.size() % 4, 0u);
  const auto doc = glb_json(bytes);
  EXPECT_EQ(doc["asset"]["generator"], "nerfdream");
  EXPECT_EQ(doc["asset"]["version"], "2.0");
  EXPECT_EQ(doc["materials"][0]["doubleSided"], false);
  EXPECT_EQ(doc["materials"][0]["pbrMetallicRoughness"]["metallicFactor"], 0.0);
  EXPECT_EQ(doc["materials"][0]["pbrMetallicRoughness"]["roughnessFactor"], 1.0);
  const auto& attributes = doc["meshes"][0]["primitives"][0]["attributes"];
  const auto& position = doc["accessors"][attributes["POSITION"].get<int>()];
  const BoundingBox box = bounding_box(mesh);
  EXPECT_EQ(position["min"].get<std::vector<float>>(), std::vector<float>(box.min.begin(), box.min.end()));
  EXPECT_EQ(position["max"].get<std::vector<float>>(), std::vector<float>(box.max.begin(), box.max.end()));
  EXPECT_EQ(doc["accessors"][attributes["COLOR_0"].get<int>()]["componentType"], 5126);
  EXPECT_EQ(doc["accessors"][doc["meshes"][0]["primitives"][0]["indices"].get<int>()]["componentType"], 5125);
}

TEST(MeshExport, ObjRoundTrip) {
  test::TempDir dir;
  const TriangleMesh mesh = colored_sphere();
  const std::string path = dir.path + "/mesh.obj";
  write_obj(path, mesh);
  ASSERT_TRUE(fs::exists(dir.path + "/mesh.mtl"));
  EXPECT_TRUE(contains(slurp(dir.path + "/mesh.mtl"), "newmtl nerfdream"));
  const std::string text = slurp(path);
  EXPECT_TRUE(contains(text, "mtllib mesh.mtl\n"));
  EXPECT_TRUE(contains(text, "usemtl nerfdream\n"));
  // %.9g keeps floats exact; normals %.7g; colors are sRGB with 6 digits.
  expect_same(read_obj(path), mesh, 0, 1e-6f, 2e-5f);
}

TEST(MeshExport, PlyRoundTrip) {
  test::TempDir dir;
  const TriangleMesh mesh = colored_sphere();
  const std::string path = dir.path + "/mesh.ply";
  write_ply(path, mesh);
  EXPECT_EQ(slurp(path).substr(0, 36), "ply\nformat binary_little_endian 1.0\n");
  // Colors are 8-bit sRGB: half a step is at most ~0.0046 in linear (at 1.0).
  expect_same(read_ply(path), mesh, 0, 0, 0.005f);
}

TEST(MeshExport, MeshesWithoutNormalsColorsOrTriangles) {
  test::TempDir dir;
  TriangleMesh bare = test::sphere_mesh(12, 0.5);
  bare.normals.clear();
  write_glb(dir.path + "/a.glb", bare);
  write_obj(dir.path + "/a.obj", bare);
  write_ply(dir.path + "/a.ply", bare);
  expect_same(read_glb(dir.path + "/a.glb"), bare, 0, 0, 0);
  expect_same(read_obj(dir.path + "/a.obj"), bare, 0, 0, 0);
  expect_same(read_ply(dir.path + "/a.ply"), bare, 0, 0, 0);

  const TriangleMesh empty;
  write_glb(dir.path + "/e.glb", empty);
  write_obj(dir.path + "/e.obj", empty);
  write_ply(dir.path + "/e.ply", empty);
  EXPECT_EQ(read_glb(dir.path + "/e.glb").num_vertices(), 0u);
  EXPECT_EQ(read_obj(dir.path + "/e.obj").num_vertices(), 0u);
  EXPECT_EQ(read_ply(dir.path + "/e.ply").num_vertices(), 0u);
}

TEST(MeshExport, WritersRejectBadMeshesAndLeaveNoFile) {
  test::TempDir dir;
  TriangleMesh mesh = colored_sphere(12);
  mesh.positions[3][1] = NAN;
  EXPECT_TRUE(contains(input_error_of([&] { write_glb(dir.path + "/m.glb", mesh); }), "non-finite position"));
  mesh = colored_sphere(12);
  mesh.triangles[0][2] = uint32_t(mesh.num_vertices());
  EXPECT_TRUE(contains(input_error_of([&] { write_ply(dir.path + "/m.ply", mesh); }), "refers to vertex"));
  mesh = colored_sphere(12);
  mesh.colors.pop_back();
  EXPECT_TRUE(contains(input_error_of([&] { write_obj(dir.path + "/m.obj", mesh); }), "colors for"));
  EXPECT_TRUE(fs::is_empty(dir.path));
}

TEST(MeshExport, MalformedGlb) {
  test::TempDir dir;
  const TriangleMesh mesh = colored_sphere(12);
  const std::string path = dir.path + "/m.glb", bad = dir.path + "/bad.glb";
  write_glb(path, mesh);
  const std::string good = slurp(path);

  spit(bad, "glTX" + good.substr(4));
  EXPECT_TRUE(contains(input_error_of([&] { read_glb(bad); }), "bad magic"));
  spit(bad, good.substr(0, good.size() / 2));
  EXPECT_TRUE(contains(input_error_of([&] { read_glb(bad); }), "truncated"));
  spit(bad, good.substr(0, 7));
  EXPECT_TRUE(contains(input_error_of([&] { read_glb(bad); }), "truncated"));
  // The last index (the BIN chunk's last 4 bytes) out of range.
  std::string patched = good;
  const uint32_t huge = uint32_t(mesh.num_vertices()) + 5;
  std::memcpy(&patched[patched.size() - 4], &huge, 4);
  spit(bad, patched);
  EXPECT_TRUE(contains(input_error_of([&] { read_glb(bad); }), "out of range"));
  // Broken JSON (a brace replaced) and an accessor pointing past its buffer view.
  patched = good;
  patched[20] = '[';
  spit(bad, patched);
  EXPECT_TRUE(contains(input_error_of([&] { read_glb(bad); }), "malformed glTF JSON"));
  auto doc = glb_json(good);
  doc["accessors"][0]["count"] = mesh.num_vertices() + 1;
  std::string text = doc.dump();
  text.append((4 - text.size() % 4) % 4, ' ');
  uint32_t old_json_length, json_length = uint32_t(text.size());
  std::memcpy(&old_json_length, good.data() + 12, 4);
  std::string rebuilt = good.substr(0, 12);
  rebuilt.append(reinterpret_cast<const char*>(&json_length), 4);
  rebuilt += "JSON" + text + good.substr(20 + old_json_length);
  const uint32_t total = uint32_t(rebuilt.size());
  std::memcpy(&rebuilt[8], &total, 4);
  spit(bad, rebuilt);
  EXPECT_TRUE(contains(input_error_of([&] { read_glb(bad); }), "past the end"));
  EXPECT_TRUE(contains(input_error_of([&] { read_glb(dir.path + "/missing.glb"); }), "cannot read"));
}

TEST(MeshExport, MalformedPly) {
  test::TempDir dir;
  const TriangleMesh mesh = colored_sphere(12);
  const std::string path = dir.path + "/m.ply", bad = dir.path + "/bad.ply";
  write_ply(path, mesh);
  const std::string good = slurp(path);

  spit(bad, "plx" + good.substr(3));
  EXPECT_TRUE(contains(input_error_of([&] { read_ply(bad); }), "bad magic"));
  spit(bad, good.substr(0, good.size() - 6));
  EXPECT_TRUE(contains(input_error_of([&] { read_ply(bad); }), "truncated"));
  spit(bad, good.substr(0, 30));
  EXPECT_TRUE(contains(input_error_of([&] { read_ply(bad); }), "end_header"));
  std::string patched = good;
  const uint32_t huge = uint32_t(mesh.num_vertices());
  std::memcpy(&patched[patched.size() - 4], &huge, 4);
  spit(bad, patched);
  EXPECT_TRUE(contains(input_error_of([&] { read_ply(bad); }), "refers to vertex"));
  spit(bad, "ply\nformat ascii 1.0\nelement vertex 0\nend_header\n");
  EXPECT_TRUE(contains(input_error_of([&] { read_ply(bad); }), "binary_little_endian only"));
  spit(bad,
       "ply\nformat binary_little_endian 1.0\nelement vertex 1000000000000\nproperty float x\n"
       "property float y\nproperty float z\nend_header\n");
  EXPECT_TRUE(contains(input_error_of([&] { read_ply(bad); }), "truncated"));
}

TEST(MeshExport, MalformedObj) {
  test::TempDir dir;
  const std::string bad = dir.path + "/bad.obj";
  spit(bad, "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 7\n");
  EXPECT_TRUE(contains(input_error_of([&] { read_obj(bad); }), "bad.obj:4: face refers to vertex 7 of 3"));
  spit(bad, "v 0 0 0\nv 1 0 zero\n");
  EXPECT_TRUE(contains(input_error_of([&] { read_obj(bad); }), "bad.obj:2: a vertex needs"));
  spit(bad, "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n");
  EXPECT_TRUE(contains(input_error_of([&] { read_obj(bad); }), "at least 3"));
  spit(bad, "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1//1 2//1 3//1\n");
  EXPECT_TRUE(contains(input_error_of([&] { read_obj(bad); }), "normal 1 of 0"));
  spit(bad, "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 x\n");
  EXPECT_TRUE(contains(input_error_of([&] { read_obj(bad); }), "malformed face corner 'x'"));
  // Other writers' OBJ: quads, v/t/n corners, negative indices, no colors.
  spit(bad, "# quad\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvn 0 0 1\nf -4/1/1 -3/1/1 -2/1/1 -1/1/1\n");
  const TriangleMesh quad = read_obj(bad);
  EXPECT_EQ(quad.num_triangles(), 2u);
  EXPECT_EQ(quad.normals.size(), 4u);
  EXPECT_TRUE(quad.colors.empty());
  EXPECT_NEAR(surface_area(quad), 1.0, 1e-9);
}

// The Khronos glTF validator (npm gltf-validator, installed into tools/gltf_validate by scripts/setup.sh).
TEST(MeshExport, GlbPassesTheKhronosValidator) {
  const std::string tool = std::string(NERFDREAM_SOURCE_DIR) + "/tools/gltf_validate";
  if (!fs::exists(tool + "/node_modules/gltf-validator"))
    GTEST_SKIP() << "gltf-validator is not installed: run scripts/setup.sh (needs node and npm), or "
                    "`npm ci` in tools/gltf_validate";
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not on the PATH";
  test::TempDir dir;
  TriangleMesh mesh = cleanup_mesh(colored_sphere(64));
  const std::string glb = dir.path + "/sphere.glb", report = dir.path + "/report.txt";
  write_glb(glb, mesh);
  write_glb(dir.path + "/empty.glb", TriangleMesh());
  for (const std::string& file : {glb, dir.path + "/empty.glb"}) {
    const std::string command = "node '" + tool + "/validate.js' '" + file + "' > '" + report + "' 2>&1";
    const int status = std::system(command.c_str());
    const std::string output = slurp(report);
    std::printf("%s", output.c_str());
    EXPECT_EQ(status, 0) << output;
    EXPECT_TRUE(contains(output, "\"numErrors\":0")) << output;
  }
}

}  // namespace
}  // namespace nd
