// Readers for the mesh formats of mesh_export.h (declared there).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "mesh/mesh_export.h"

namespace nd {

namespace {

// Bounds-checked little-endian reads from a byte string.
class ByteReader {
 public:
  ByteReader(const std::string& bytes, const std::string& path) : bytes_(bytes), path_(path) {}
  size_t pos() const { return pos_; }
  size_t left() const { return bytes_.size() - pos_; }
  void seek(size_t pos) { pos_ = pos; }
  void need(size_t n, const char* what) const {
    if (n > left())
      throw InputError(path_ + ": truncated file (" + what + " at byte " + std::to_string(pos_) + " needs " +
                       std::to_string(n) + " bytes, " + std::to_string(left()) + " left)");
  }
  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

 private:
  const std::string& bytes_;
  const std::string& path_;
  size_t pos_ = 0;
};

// ---- GLB ----------------------------------------------------------------------------------------------

using nlohmann::json;

// A non-negative integer field of a glTF object (or `fallback` when absent and fallback >= 0).
int64_t gltf_int(const json& object, const char* key, const std::string& where, int64_t fallback = -1) {
  if (!object.contains(key)) {
    require(fallback >= 0, where + " lacks \"" + key + "\"");
    return fallback;
  }
  const json& v = object.at(key);
  require(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < (int64_t(1) << 40),
          where + "." + key + " must be a non-negative integer");
  return v.get<int64_t>();
}

const json& gltf_item(const json& doc, const char* array, int64_t index, const std::string& path) {
  const std::string where = path + ": " + array + "[" + std::to_string(index) + "]";
  require(doc.contains(array) && doc.at(array).is_array() && index < int64_t(doc.at(array).size()),
          where + " does not exist");
  require(doc.at(array).at(size_t(index)).is_object(), where + " is not an object");
  return doc.at(array).at(size_t(index));
}

struct AccessorData {
  int64_t count = 0;
  int components = 0;
  std::vector<double> values;  // count × components
};

AccessorData read_accessor(const json& doc, int64_t index, const std::string& bin, const std::string& path,
                           bool indices) {
  const std::string where = path + ": accessors[" + std::to_string(index) + "]";
  const json& acc = gltf_item(doc, "accessors", index, path);
  const int64_t count = gltf_int(acc, "count", where);
  const int64_t type = gltf_int(acc, "componentType", where);
  require(acc.contains("type") && acc.at("type").is_string(), where + " lacks \"type\"");
  const std::string shape = acc.at("type").get<std::string>();
  AccessorData out;
  out.count = count;
  out.components = shape == "SCALAR" ? 1 : shape == "VEC3" ? 3 : shape == "VEC4" ? 4 : 0;
  int size = 0;
  if (indices) {
    require(shape == "SCALAR", where + ": indices must be SCALAR, got " + shape);
    size = type == 5121 ? 1 : type == 5123 ? 2 : type == 5125 ? 4 : 0;
    require(size > 0, where + ": unsupported index componentType " + std::to_string(type));
  } else {
    require(out.components >= 3, where + ": unsupported attribute type " + shape + " (VEC3/VEC4 only)");
    require(type == 5126, where + ": unsupported componentType " + std::to_string(type) + " (FLOAT only)");
    size = 4;
  }
  require(!acc.contains("sparse"), where + ": sparse accessors are not supported");
  const int64_t view_index = gltf_int(acc, "bufferView", where);
  const std::string view_where = path + ": bufferViews[" + std::to_string(view_index) + "]";
  const json& view = gltf_item(doc, "bufferViews", view_index, path);
  require(gltf_int(view, "buffer", view_where) == 0,
          view_where + ": only buffer 0 (the GLB BIN chunk) is read");
  const int64_t view_offset = gltf_int(view, "byteOffset", view_where, 0);
  const int64_t view_length = gltf_int(view, "byteLength", view_where);
  const int64_t element = int64_t(size) * out.components;
  const int64_t stride = gltf_int(view, "byteStride", view_where, element);
  const int64_t offset = gltf_int(acc, "byteOffset", where, 0);
  require(stride >= element, view_where + ": byteStride " + std::to_string(stride) + " < element size");
  require(view_offset + view_length <= int64_t(bin.size()),
          view_where + " runs past the end of the BIN chunk (truncated file?)");
  require(count == 0 || offset + stride * (count - 1) + element <= view_length,
          where + " runs past the end of its buffer view");
  out.values.resize(size_t(count * out.components));
  const char* base = bin.data() + view_offset + offset;
  for (int64_t i = 0; i < count; ++i)
    for (int c = 0; c < out.components; ++c) {
      const char* p = base + i * stride + c * size;
      double& v = out.values[size_t(i * out.components + c)];
      if (size == 1) {
        v = double(uint8_t(*p));
      } else if (size == 2) {
        uint16_t x;
        std::memcpy(&x, p, 2);
        v = x;
      } else if (indices) {
        uint32_t x;
        std::memcpy(&x, p, 4);
        v = x;
      } else {
        float x;
        std::memcpy(&x, p, 4);
        v = x;
      }
    }
  return out;
}

std::vector<std::array<float, 3>> to_vec3(const AccessorData& a) {
  std::vector<std::array<float, 3>> out(size_t(a.count));
  for (int64_t i = 0; i < a.count; ++i)
    for (int c = 0; c < 3; ++c) out[size_t(i)][c] = float(a.values[size_t(i * a.components + c)]);
  return out;
}

// ---- PLY ----------------------------------------------------------------------------------------------

struct PlyProperty {
  std::string name;
  int size = 0;     // scalar type size
  char kind = 'f';  // 'i' signed, 'u' unsigned, 'f' float
  bool list = false;
  int count_size = 0;  // list count type (unsigned)
  char count_kind = 'u';
};

struct PlyElement {
  std::string name;
  int64_t count = 0;
  std::vector<PlyProperty> properties;
};

bool ply_type(const std::string& t, int* size, char* kind) {
  static const struct {
    const char* name;
    int size;
    char kind;
  } types[] = {{"char", 1, 'i'},  {"int8", 1, 'i'},    {"uchar", 1, 'u'},  {"uint8", 1, 'u'},
               {"short", 2, 'i'}, {"int16", 2, 'i'},   {"ushort", 2, 'u'}, {"uint16", 2, 'u'},
               {"int", 4, 'i'},   {"int32", 4, 'i'},   {"uint", 4, 'u'},   {"uint32", 4, 'u'},
               {"float", 4, 'f'}, {"float32", 4, 'f'}, {"double", 8, 'f'}, {"float64", 8, 'f'}};
  for (const auto& entry : types)
    if (t == entry.name) {
      *size = entry.size;
      *kind = entry.kind;
      return true;
    }
  return false;
}

double ply_value(ByteReader& in, int size, char kind) {
  switch (size * 4 + (kind == 'i' ? 0 : kind == 'u' ? 1 : 2)) {
    case 4:
      return in.get<int8_t>("a PLY value");
    case 5:
      return in.get<uint8_t>("a PLY value");
    case 8:
      return in.get<int16_t>("a PLY value");
    case 9:
      return in.get<uint16_t>("a PLY value");
    case 16:
      return in.get<int32_t>("a PLY value");
    case 17:
      return in.get<uint32_t>("a PLY value");
    case 18:
      return in.get<float>("a PLY value");
    default:
      return in.get<double>("a PLY value");
  }
}

// ---- OBJ ----------------------------------------------------------------------------------------------

// Parses `count` floats from s (whitespace separated); returns how many were found (stops at garbage).
int parse_floats(const char* s, float* out, int max) {
  int n = 0;
  while (n < max) {
    char* end = nullptr;
    const float v = std::strtof(s, &end);
    if (end == s) break;
    out[n++] = v;
    s = end;
  }
  while (*s == ' ' || *s == '\t' || *s == '\r') ++s;
  return *s == '\0' ? n : -1;
}

}  // namespace

TriangleMesh read_glb(const std::string& path) {
  const std::string bytes = read_file(path);
  ByteReader in(bytes, path);
  in.need(12, "the GLB header");
  require(in.get<uint32_t>("magic") == 0x46546C67u, path + ": not a GLB file (bad magic)");
  const uint32_t version = in.get<uint32_t>("version");
  require(version == 2, path + ": GLB version " + std::to_string(version) + " (only 2 is supported)");
  const uint32_t length = in.get<uint32_t>("length");
  require(length <= bytes.size(), path + ": truncated file (the header says " + std::to_string(length) +
                                      " bytes, the file has " + std::to_string(bytes.size()) + ")");
  require(length == bytes.size(), path + ": the GLB header's length " + std::to_string(length) +
                                      " does not match the file size " + std::to_string(bytes.size()));
  const uint32_t json_length = in.get<uint32_t>("the JSON chunk header");
  require(in.get<uint32_t>("the JSON chunk type") == 0x4E4F534Au, path + ": the first GLB chunk is not JSON");
  in.need(json_length, "the JSON chunk");
  const std::string text = bytes.substr(in.pos(), json_length);
  in.seek(in.pos() + json_length);
  std::string bin;
  if (in.left() > 0) {
    const uint32_t bin_length = in.get<uint32_t>("the BIN chunk header");
    require(in.get<uint32_t>("the BIN chunk type") == 0x004E4942u,
            path + ": the second GLB chunk is not BIN");
    in.need(bin_length, "the BIN chunk");
    bin = bytes.substr(in.pos(), bin_length);
  }

  TriangleMesh mesh;
  try {
    const json doc = json::parse(text);
    require(doc.is_object(), path + ": the glTF JSON is not an object");
    if (!doc.contains("meshes")) return mesh;
    const json& m = gltf_item(doc, "meshes", 0, path);
    require(m.contains("primitives") && m.at("primitives").is_array() && !m.at("primitives").empty(),
            path + ": meshes[0] has no primitives");
    const json& prim = m.at("primitives").at(0);
    const std::string where = path + ": meshes[0].primitives[0]";
    require(prim.is_object() && prim.contains("attributes") && prim.at("attributes").is_object(),
            where + " has no attributes");
    require(gltf_int(prim, "mode", where, 4) == 4, where + ": only triangles (mode 4) are supported");
    const json& attributes = prim.at("attributes");
    require(attributes.contains("POSITION"), where + " has no POSITION");
    mesh.positions = to_vec3(read_accessor(doc, gltf_int(attributes, "POSITION", where), bin, path, false));
    const size_t v = mesh.positions.size();
    const auto optional = [&](const char* name, std::vector<std::array<float, 3>>& dst) {
      if (!attributes.contains(name)) return;
      dst = to_vec3(read_accessor(doc, gltf_int(attributes, name, where), bin, path, false));
      if (dst.size() != v)
        throw InputError(where + ": " + name + " has " + std::to_string(dst.size()) + " elements, POSITION " +
                         std::to_string(v));
    };
    optional("NORMAL", mesh.normals);
    optional("COLOR_0", mesh.colors);
    std::vector<double> indices;
    if (prim.contains("indices")) {
      indices = read_accessor(doc, gltf_int(prim, "indices", where), bin, path, true).values;
    } else {
      for (size_t i = 0; i < v; ++i) indices.push_back(double(i));
    }
    require(indices.size() % 3 == 0,
            where + ": " + std::to_string(indices.size()) + " indices, not triangles");
    for (size_t i = 0; i < indices.size(); i += 3) {
      std::array<uint32_t, 3> t;
      for (int k = 0; k < 3; ++k) {
        if (!(indices[i + k] < double(v)))
          throw InputError(where + ": index " + std::to_string(int64_t(indices[i + k])) + " out of range (" +
                           std::to_string(v) + " vertices)");
        t[k] = uint32_t(indices[i + k]);
      }
      mesh.triangles.push_back(t);
    }
  } catch (const json::exception& e) {
    throw InputError(path + ": malformed glTF JSON: " + e.what());
  }
  check_mesh(mesh, path);
  return mesh;
}

TriangleMesh read_ply(const std::string& path) {
  const std::string bytes = read_file(path);
  const size_t header_end = bytes.find("end_header\n");
  require(bytes.compare(0, 4, "ply\n") == 0 || bytes.compare(0, 5, "ply\r\n") == 0,
          path + ": not a PLY file (bad magic)");
  require(header_end != std::string::npos, path + ": truncated PLY header (no end_header)");
  std::istringstream header(bytes.substr(0, header_end));
  std::vector<PlyElement> elements;
  std::string line;
  bool format_ok = false;
  int line_no = 0;
  while (std::getline(header, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream words(line);
    std::string word;
    words >> word;
    const std::string where = path + ": PLY header line " + std::to_string(line_no);
    if (word == "format") {
      std::string format, version;
      words >> format >> version;
      require(format == "binary_little_endian",
              path + ": PLY format " + format + " is not supported (binary_little_endian only)");
      format_ok = true;
    } else if (word == "element") {
      PlyElement e;
      require(bool(words >> e.name >> e.count) && e.count >= 0, where + ": malformed element line");
      elements.push_back(e);
    } else if (word == "property") {
      require(!elements.empty(), where + ": property before any element");
      PlyProperty p;
      std::string type;
      words >> type;
      if (type == "list") {
        std::string count_type, item_type;
        words >> count_type >> item_type >> p.name;
        p.list = true;
        require(ply_type(count_type, &p.count_size, &p.count_kind) && p.count_kind != 'f' &&
                    ply_type(item_type, &p.size, &p.kind),
                where + ": unsupported list types '" + count_type + " " + item_type + "'");
      } else {
        words >> p.name;
        require(ply_type(type, &p.size, &p.kind), where + ": unknown property type '" + type + "'");
      }
      require(!p.name.empty(), where + ": property without a name");
      elements.back().properties.push_back(p);
    } else {
      require(word == "ply" || word == "comment" || word == "obj_info" || word.empty(),
              where + ": unexpected '" + word + "'");
    }
  }
  require(format_ok, path + ": PLY header has no format line");

  TriangleMesh mesh;
  ByteReader in(bytes, path);
  in.seek(header_end + std::strlen("end_header\n"));
  for (const PlyElement& e : elements) {
    if (e.name == "vertex") {
      int fixed = 0, xyz = 0, nxyz = 0, rgb = 0;
      bool has_list = false;
      for (const auto& p : e.properties) {
        fixed += p.size;
        has_list |= p.list;
        xyz += p.name == "x" || p.name == "y" || p.name == "z";
        nxyz += p.name == "nx" || p.name == "ny" || p.name == "nz";
        rgb += p.name == "red" || p.name == "green" || p.name == "blue";
      }
      require(!has_list, path + ": list properties on vertices are not supported");
      require(xyz == 3, path + ": PLY vertices lack x, y or z");
      require(fixed > 0 && uint64_t(e.count) <= in.left() / uint64_t(fixed),
              path + ": truncated file (" + std::to_string(e.count) + " vertices do not fit)");
      mesh.positions.resize(size_t(e.count));
      if (nxyz == 3) mesh.normals.resize(size_t(e.count));
      if (rgb == 3) mesh.colors.resize(size_t(e.count));
      for (int64_t i = 0; i < e.count; ++i)
        for (const auto& p : e.properties) {
          const double v = ply_value(in, p.size, p.kind);
          const std::string& n = p.name;
          if (n == "x" || n == "y" || n == "z") mesh.positions[size_t(i)][n[0] - 'x'] = float(v);
          if (nxyz == 3 && (n == "nx" || n == "ny" || n == "nz"))
            mesh.normals[size_t(i)][n[1] - 'x'] = float(v);
          if (rgb == 3 && (n == "red" || n == "green" || n == "blue")) {
            const float display = p.kind == 'f' ? float(v) : float(v / ((1ull << (8 * p.size)) - 1));
            mesh.colors[size_t(i)][n == "red" ? 0 : n == "green" ? 1 : 2] = srgb_to_linear(display);
          }
        }
    } else if (!e.properties.empty()) {
      const bool faces = e.name == "face";
      // Faces: each record holds at least one list count byte, so the count is bounded by the bytes left.
      require(uint64_t(e.count) <= in.left(),
              path + ": truncated file (" + std::to_string(e.count) + " " + e.name + " records do not fit)");
      for (int64_t i = 0; i < e.count; ++i)
        for (const auto& p : e.properties) {
          if (!p.list) {
            ply_value(in, p.size, p.kind);
            continue;
          }
          const double n = ply_value(in, p.count_size, p.count_kind);
          const bool indices = faces && (p.name == "vertex_indices" || p.name == "vertex_index");
          if (indices && n < 3)
            throw InputError(path + ": face " + std::to_string(i) + " has " + std::to_string(int64_t(n)) +
                             " vertices");
          std::vector<uint32_t> polygon;
          for (int64_t k = 0; k < int64_t(n); ++k) {
            const double index = ply_value(in, p.size, p.kind);
            if (!indices) continue;
            if (!(index >= 0 && index < double(mesh.positions.size())))
              throw InputError(path + ": face " + std::to_string(i) + " refers to vertex " +
                               std::to_string(int64_t(index)) + " of " +
                               std::to_string(mesh.positions.size()));
            polygon.push_back(uint32_t(index));
          }
          for (size_t k = 1; k + 1 < polygon.size(); ++k)
            mesh.triangles.push_back({polygon[0], polygon[k], polygon[k + 1]});
        }
    }
  }
  check_mesh(mesh, path);
  return mesh;
}

TriangleMesh read_obj(const std::string& path) {
  const std::string bytes = read_file(path);
  TriangleMesh mesh;
  std::vector<std::array<float, 3>> vn;
  std::vector<int64_t> vertex_normal;  // index into vn per vertex, −1 if none
  size_t colored = 0;
  std::istringstream lines(bytes);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    const auto where = [&] { return path + ":" + std::to_string(line_no); };
    const size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    const size_t end = line.find_first_of(" \t", start);
    const std::string key = line.substr(start, end - start);
    const char* rest = end == std::string::npos ? "" : line.c_str() + end;
    if (key == "v") {
      float f[7];
      const int n = parse_floats(rest, f, 7);
      if (n != 3 && n != 4 && n != 6 && n != 7)
        throw InputError(where() + ": a vertex needs 3, 4, 6 or 7 numbers");
      mesh.positions.push_back({f[0], f[1], f[2]});
      if (n >= 6) {
        const int c = n == 7 ? 4 : 3;  // "x y z w r g b" or "x y z r g b"
        mesh.colors.resize(mesh.positions.size(), {0, 0, 0});
        mesh.colors.back() = {srgb_to_linear(f[c]), srgb_to_linear(f[c + 1]), srgb_to_linear(f[c + 2])};
        ++colored;
      }
    } else if (key == "vn") {
      float f[3];
      if (parse_floats(rest, f, 3) != 3) throw InputError(where() + ": a normal needs 3 numbers");
      vn.push_back({f[0], f[1], f[2]});
    } else if (key == "f") {
      std::istringstream corners(rest);
      std::string corner;
      std::vector<uint32_t> polygon;
      vertex_normal.resize(mesh.positions.size(), -1);
      while (corners >> corner) {
        // "v", "v/t", "v//n" or "v/t/n"; negative numbers count back from the last one defined.
        int64_t ref[3] = {0, 0, 0};
        size_t part = 0, pos = 0;
        while (part < 3) {
          const size_t slash = corner.find('/', pos);
          const std::string s =
              corner.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
          if (!s.empty()) {
            char* tail = nullptr;
            ref[part] = std::strtoll(s.c_str(), &tail, 10);
            if (*tail != '\0' || ref[part] == 0)
              throw InputError(where() + ": malformed face corner '" + corner + "'");
          }
          if (slash == std::string::npos) break;
          pos = slash + 1;
          ++part;
        }
        if (ref[0] == 0) throw InputError(where() + ": malformed face corner '" + corner + "'");
        const int64_t nv = int64_t(mesh.positions.size());
        const int64_t v = ref[0] > 0 ? ref[0] - 1 : nv + ref[0];
        if (v < 0 || v >= nv)
          throw InputError(where() + ": face refers to vertex " + std::to_string(ref[0]) + " of " +
                           std::to_string(nv));
        if (ref[2] != 0) {
          const int64_t n = ref[2] > 0 ? ref[2] - 1 : int64_t(vn.size()) + ref[2];
          if (n < 0 || n >= int64_t(vn.size()))
            throw InputError(where() + ": face refers to normal " + std::to_string(ref[2]) + " of " +
                             std::to_string(vn.size()));
          vertex_normal[size_t(v)] = n;
        }
        polygon.push_back(uint32_t(v));
      }
      require(polygon.size() >= 3, where() + ": a face needs at least 3 vertices");
      for (size_t k = 1; k + 1 < polygon.size(); ++k)
        mesh.triangles.push_back({polygon[0], polygon[k], polygon[k + 1]});
    }
    // vt, o, g, s, mtllib, usemtl, l, ...: not needed for a colored triangle mesh
  }
  if (colored != mesh.positions.size()) mesh.colors.clear();
  vertex_normal.resize(mesh.positions.size(), -1);
  bool all_normals = !mesh.positions.empty();
  for (int64_t n : vertex_normal) all_normals &= n >= 0;
  if (all_normals)
    for (int64_t n : vertex_normal) mesh.normals.push_back(vn[size_t(n)]);
  check_mesh(mesh, path);
  return mesh;
}

}  // namespace nd
