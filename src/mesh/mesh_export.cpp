#include "mesh/mesh_export.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace nd {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "GLB and PLY are written with memcpy: little-endian");

float linear_to_srgb(float linear) {
  const float c = std::min(std::max(linear, 0.0f), 1.0f);
  return c <= 0.0031308f ? 12.92f * c : 1.055f * std::pow(c, 1.0f / 2.4f) - 0.055f;
}

float srgb_to_linear(float srgb) {
  const float c = std::min(std::max(srgb, 0.0f), 1.0f);
  return c <= 0.04045f ? c / 12.92f : std::pow((c + 0.055f) / 1.055f, 2.4f);
}

namespace {

template <class T>
void append(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

void append_floats(std::string& out, const std::vector<std::array<float, 3>>& values) {
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(values[0]));
}

float clamp01(float x) { return std::min(std::max(x, 0.0f), 1.0f); }

// printf into a growing string (the OBJ writer's hot path).
template <class... Args>
void appendf(std::string& out, const char* format, Args... args) {
  char buffer[256];
  const int n = std::snprintf(buffer, sizeof(buffer), format, args...);
  out.append(buffer, size_t(std::min(n, int(sizeof(buffer)) - 1)));
}

}  // namespace

void write_glb(const std::string& path, const TriangleMesh& mesh) {
  check_mesh(mesh, path);
  using nlohmann::json;
  json doc = {{"asset", {{"version", "2.0"}, {"generator", "nerfdream"}}}, {"scene", 0}};
  std::string bin;
  if (mesh.triangles.empty()) {
    doc["scenes"] = json::array({json::object()});
  } else {
    constexpr int kFloat = 5126, kUnsignedInt = 5125, kArrayBuffer = 34962, kElementArrayBuffer = 34963;
    json views = json::array(), accessors = json::array(), attributes = json::object();
    const int64_t v = int64_t(mesh.positions.size());
    // One tightly packed buffer view per accessor; every block is a multiple of 4 bytes long.
    const auto add_vec3 = [&](const char* name, const std::vector<std::array<float, 3>>& values) {
      views.push_back({{"buffer", 0},
                       {"byteOffset", bin.size()},
                       {"byteLength", values.size() * 12},
                       {"target", kArrayBuffer}});
      append_floats(bin, values);
      accessors.push_back(
          {{"bufferView", views.size() - 1}, {"componentType", kFloat}, {"count", v}, {"type", "VEC3"}});
      attributes[name] = accessors.size() - 1;
    };
    add_vec3("POSITION", mesh.positions);
    const BoundingBox box = bounding_box(mesh);
    accessors.back()["min"] = box.min;
    accessors.back()["max"] = box.max;
    if (!mesh.normals.empty()) add_vec3("NORMAL", mesh.normals);
    if (!mesh.colors.empty()) {
      std::vector<std::array<float, 3>> colors(mesh.colors.size());
      for (size_t i = 0; i < colors.size(); ++i)
        colors[i] = {clamp01(mesh.colors[i][0]), clamp01(mesh.colors[i][1]), clamp01(mesh.colors[i][2])};
      add_vec3("COLOR_0", colors);
    }
    views.push_back({{"buffer", 0},
                     {"byteOffset", bin.size()},
                     {"byteLength", mesh.triangles.size() * 12},
                     {"target", kElementArrayBuffer}});
    bin.append(reinterpret_cast<const char*>(mesh.triangles.data()), mesh.triangles.size() * 12);
    accessors.push_back({{"bufferView", views.size() - 1},
                         {"componentType", kUnsignedInt},
                         {"count", mesh.triangles.size() * 3},
                         {"type", "SCALAR"}});
    doc["scenes"] = json::array({{{"nodes", {0}}}});
    doc["nodes"] = json::array({{{"mesh", 0}, {"name", "nerfdream"}}});
    doc["meshes"] = json::array({{{"name", "nerfdream"},
                                  {"primitives", json::array({{{"attributes", attributes},
                                                               {"indices", accessors.size() - 1},
                                                               {"material", 0},
                                                               {"mode", 4}}})}}});
    doc["materials"] = json::array(
        {{{"name", "nerfdream"},
          {"pbrMetallicRoughness",
           {{"baseColorFactor", {1.0, 1.0, 1.0, 1.0}}, {"metallicFactor", 0.0}, {"roughnessFactor", 1.0}}},
          {"doubleSided", false}}});
    doc["buffers"] = json::array({{{"byteLength", bin.size()}}});
    doc["bufferViews"] = views;
    doc["accessors"] = accessors;
  }

  // GLB: 12-byte header, then the JSON chunk (space-padded) and the BIN chunk (zero-padded) at 4-byte bounds.
  std::string text = doc.dump();
  text.append((4 - text.size() % 4) % 4, ' ');
  bin.append((4 - bin.size() % 4) % 4, '\0');
  const uint32_t total = uint32_t(12 + 8 + text.size() + (bin.empty() ? 0 : 8 + bin.size()));
  require(12 + 8 + text.size() + (bin.empty() ? 0 : 8 + bin.size()) < (uint64_t(1) << 32),
          path + ": the mesh is too large for a GLB file (4 GiB)");
  std::string out;
  out.reserve(total);
  append(out, uint32_t(0x46546C67));  // "glTF"
  append(out, uint32_t(2));
  append(out, total);
  append(out, uint32_t(text.size()));
  append(out, uint32_t(0x4E4F534A));  // "JSON"
  out += text;
  if (!bin.empty()) {
    append(out, uint32_t(bin.size()));
    append(out, uint32_t(0x004E4942));  // "BIN\0"
    out += bin;
  }
  write_file_atomically(path, out);
}

void write_obj(const std::string& path, const TriangleMesh& mesh) {
  check_mesh(mesh, path);
  const std::filesystem::path mtl_path = std::filesystem::path(path).replace_extension(".mtl");
  const std::string mtl_name = mtl_path.filename().string();
  write_file_atomically(mtl_path.string(),
                        "# nerfdream: plain white diffuse; the surface color is in the OBJ's vertex colors\n"
                        "newmtl nerfdream\nKa 0 0 0\nKd 1 1 1\nKs 0 0 0\nNs 1\nd 1\nillum 1\n");

  std::string out;
  out.reserve(mesh.positions.size() * 96 + mesh.triangles.size() * 40);
  appendf(out, "# nerfdream mesh: %zu vertices, %zu triangles; vertex colors as \"v x y z r g b\" (sRGB)\n",
          mesh.positions.size(), mesh.triangles.size());
  out += "mtllib " + mtl_name + "\no nerfdream\nusemtl nerfdream\n";
  for (size_t i = 0; i < mesh.positions.size(); ++i) {
    const auto& p = mesh.positions[i];
    if (mesh.colors.empty()) {
      appendf(out, "v %.9g %.9g %.9g\n", p[0], p[1], p[2]);
    } else {
      const auto& c = mesh.colors[i];
      appendf(out, "v %.9g %.9g %.9g %.6g %.6g %.6g\n", p[0], p[1], p[2], linear_to_srgb(c[0]),
              linear_to_srgb(c[1]), linear_to_srgb(c[2]));
    }
  }
  for (const auto& n : mesh.normals) appendf(out, "vn %.7g %.7g %.7g\n", n[0], n[1], n[2]);
  const bool normals = !mesh.normals.empty();
  for (const auto& t : mesh.triangles) {
    const unsigned a = t[0] + 1, b = t[1] + 1, c = t[2] + 1;  // OBJ counts from 1
    if (normals)
      appendf(out, "f %u//%u %u//%u %u//%u\n", a, a, b, b, c, c);
    else
      appendf(out, "f %u %u %u\n", a, b, c);
  }
  write_file_atomically(path, out);
}

void write_ply(const std::string& path, const TriangleMesh& mesh) {
  check_mesh(mesh, path);
  const bool normals = !mesh.normals.empty(), colors = !mesh.colors.empty();
  std::string out = "ply\nformat binary_little_endian 1.0\ncomment nerfdream mesh (colors sRGB)\n";
  out += "element vertex " + std::to_string(mesh.positions.size()) + "\n";
  out += "property float x\nproperty float y\nproperty float z\n";
  if (normals) out += "property float nx\nproperty float ny\nproperty float nz\n";
  if (colors) out += "property uchar red\nproperty uchar green\nproperty uchar blue\n";
  out += "element face " + std::to_string(mesh.triangles.size()) + "\n";
  out += "property list uchar uint vertex_indices\nend_header\n";
  out.reserve(out.size() + mesh.positions.size() * 27 + mesh.triangles.size() * 13);
  for (size_t i = 0; i < mesh.positions.size(); ++i) {
    append(out, mesh.positions[i]);
    if (normals) append(out, mesh.normals[i]);
    if (colors)
      for (float c : mesh.colors[i]) append(out, uint8_t(std::lround(linear_to_srgb(c) * 255.0f)));
  }
  for (const auto& t : mesh.triangles) {
    append(out, uint8_t(3));
    append(out, t);
  }
  write_file_atomically(path, out);
}

}  // namespace nd
