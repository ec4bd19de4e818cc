#include "mesh/marching_cubes.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

#include "core/error.h"

namespace nd {

namespace {

// ---- The case table -------------------------------------------------------------------------------------
// Corner c of a cube sits at offset (c & 1, c >> 1 & 1, c >> 2 & 1) along (x, y, z). Edge e = axis·4 + j runs
// along `axis` from the j-th corner (in increasing order) whose `axis` bit is 0.

struct CaseTable {
  uint8_t count[256];          // triangles per case
  uint8_t edges[256][3 * 12];  // cube-edge indices, three per triangle
  uint8_t edge_base[12];       // the edge's corner with the lower coordinate
  uint8_t edge_axis[12];
};

int edge_index(int base, int axis) {
  int j = 0;
  for (int c = 0; c < base; ++c)
    if (!(c >> axis & 1)) ++j;
  return axis * 4 + j;
}

// Whether two cube edges lie on a common cube face.
bool share_face(const CaseTable& t, int e1, int e2) {
  for (int k = 0; k < 3; ++k)
    if (k != t.edge_axis[e1] && k != t.edge_axis[e2] &&
        (t.edge_base[e1] >> k & 1) == (t.edge_base[e2] >> k & 1))
      return true;
  return false;
}

// Triangulates the polygon p (edge ids in loop order; p.front()–p.back() is a side) without a diagonal
// between two vertices on a common cube face: such a diagonal lies in that face, where the neighbouring cube
// may draw the same one, and the edge would then have four triangles. Appends the triangles, keeping the
// loop's orientation; false if there is no such triangulation.
bool triangulate(const std::vector<int>& p, const CaseTable& t, std::vector<int>& out) {
  const size_t n = p.size();
  if (n == 3) {
    out.insert(out.end(), p.begin(), p.end());
    return true;
  }
  for (size_t k = 1; k + 1 < n; ++k) {
    if ((k > 1 && share_face(t, p[0], p[k])) || (k + 2 < n && share_face(t, p[k], p[n - 1]))) continue;
    std::vector<int> tris = {p[0], p[k], p[n - 1]};
    if (k > 1 && !triangulate(std::vector<int>(p.begin(), p.begin() + k + 1), t, tris)) continue;
    if (k + 2 < n && !triangulate(std::vector<int>(p.begin() + k, p.end()), t, tris)) continue;
    out.insert(out.end(), tris.begin(), tris.end());
    return true;
  }
  return false;
}

CaseTable make_case_table() {
  CaseTable t{};
  for (int axis = 0; axis < 3; ++axis)
    for (int c = 0; c < 8; ++c)
      if (!(c >> axis & 1)) {
        const int e = edge_index(c, axis);
        t.edge_base[e] = uint8_t(c);
        t.edge_axis[e] = uint8_t(axis);
      }

  // Faces: corners counter-clockwise seen from outside the cube. For axis k with u = k+1, v = k+2 (mod 3),
  // the order (u,v) = (0,0),(1,0),(1,1),(0,1) is counter-clockwise about +e_k (e_u × e_v = e_k): right for
  // the face at bit k = 1, reversed for bit k = 0.
  int faces[6][4];
  for (int k = 0; k < 3; ++k)
    for (int s = 0; s < 2; ++s) {
      const int u = (k + 1) % 3, v = (k + 2) % 3;
      const int uv[4][2] = {{0, 0}, {1, 0}, {1, 1}, {0, 1}};
      for (int i = 0; i < 4; ++i) {
        const int q = s ? i : (4 - i) % 4;
        faces[2 * k + s][i] = s << k | uv[q][0] << u | uv[q][1] << v;
      }
    }

  for (int config = 0; config < 256; ++config) {
    const auto inside = [&](int c) { return (config >> c & 1) != 0; };
    // On each face, walking its corners counter-clockwise, a crossing "enters" the inside region or "exits"
    // it. The surface's boundary on the face runs from each entering crossing to the next exiting one: this
    // keeps the inside on its right seen from outside the cube (so the loops come out counter-clockwise seen
    // from outside the solid), and on an ambiguous face (diagonal inside corners) it cuts each inside corner
    // off on its own — a rule that depends only on the face, so both cubes sharing it agree.
    int next[12];
    std::fill(std::begin(next), std::end(next), -1);
    for (const auto& f : faces) {
      int edge[4], kind[4];  // kind: +1 enters, -1 exits, 0 no crossing
      for (int i = 0; i < 4; ++i) {
        const int a = f[i], b = f[(i + 1) % 4];
        const int axis = __builtin_ctz(a ^ b);
        edge[i] = edge_index(std::min(a, b), axis);
        kind[i] = inside(a) == inside(b) ? 0 : (inside(b) ? 1 : -1);
      }
      for (int i = 0; i < 4; ++i) {
        if (kind[i] != 1) continue;
        int j = 1;
        while (j < 4 && kind[(i + j) % 4] != -1) ++j;
        if (j == 4 || next[edge[i]] != -1) throw std::logic_error("marching cubes: inconsistent case table");
        next[edge[i]] = edge[(i + j) % 4];
      }
    }
    // Chain the face segments into loops and triangulate each loop.
    bool used[12] = {};
    std::vector<int> triangles;
    for (int start = 0; start < 12; ++start) {
      if (next[start] == -1 || used[start]) continue;
      std::vector<int> loop;
      for (int e = start; !used[e]; e = next[e]) {
        used[e] = true;
        loop.push_back(e);
        if (next[e] == -1) throw std::logic_error("marching cubes: open loop in case table");
      }
      bool done = false;
      for (size_t r = 0; r < loop.size() && !done; ++r) {
        std::vector<int> rotated(loop.begin() + r, loop.end());
        rotated.insert(rotated.end(), loop.begin(), loop.begin() + r);
        done = triangulate(rotated, t, triangles);
      }
      if (!done) throw std::logic_error("marching cubes: no valid triangulation in case table");
    }
    for (size_t i = 0; i < triangles.size(); ++i) t.edges[config][i] = uint8_t(triangles[i]);
    const int n = int(triangles.size() / 3);
    t.count[config] = uint8_t(n);
  }
  return t;
}

const CaseTable& case_table() {
  static const CaseTable table = make_case_table();
  return table;
}

// ---- The padded grid ------------------------------------------------------------------------------------
// Values on a lattice of (R+2)³ points: the grid in the middle, `iso` (= outside) on the one-point border.
// Padded index i ↔ grid index i − 1.
struct Padded {
  int64_t n[3];    // padded sizes Rx+2, Ry+2, Rz+2
  double lo[3];    // box_min
  double step[3];  // lattice spacing
  float iso;
  std::vector<float> v;

  int64_t at(int64_t i, int64_t j, int64_t k) const { return (i * n[1] + j) * n[2] + k; }
  bool real(int64_t i, int axis) const { return i >= 1 && i <= n[axis] - 2; }
  double coord(int64_t i, int axis) const { return lo[axis] + double(i - 1) * step[axis]; }

  // Central-difference gradient at a real lattice point (one-sided at the grid's border).
  std::array<double, 3> gradient(const int64_t p[3]) const {
    std::array<double, 3> g{};
    for (int a = 0; a < 3; ++a) {
      int64_t lo_p[3] = {p[0], p[1], p[2]}, hi_p[3] = {p[0], p[1], p[2]};
      lo_p[a] = std::max<int64_t>(p[a] - 1, 1);
      hi_p[a] = std::min<int64_t>(p[a] + 1, n[a] - 2);
      g[a] = (double(v[at(hi_p[0], hi_p[1], hi_p[2])]) - double(v[at(lo_p[0], lo_p[1], lo_p[2])])) /
             (double(hi_p[a] - lo_p[a]) * step[a]);
    }
    return g;
  }
};

// One run of consecutive cube layers ix ∈ [begin, end), meshed with local vertex ids. The y/z-edge vertices
// of its first and last lattice planes are listed (in scan order) so that neighbouring chunks, which both
// compute the plane they share, can be welded.
struct Chunk {
  std::vector<std::array<float, 3>> positions, normals;
  std::vector<std::array<uint32_t, 3>> triangles;
  std::vector<std::pair<int64_t, int32_t>> first_plane, last_plane;  // (slot, local id)
};

class ChunkMesher {
 public:
  ChunkMesher(const Padded& g, Chunk& out) : g_(g), out_(out) {}

  void run(int64_t begin, int64_t end) {
    const int64_t ny = g_.n[1], nz = g_.n[2];
    Plane p0(ny, nz), p1(ny, nz);
    std::vector<int32_t> x(size_t(ny * nz));
    make_plane(begin, p0);
    out_.first_plane = list_plane(p0);
    const CaseTable& table = case_table();
    for (int64_t ix = begin; ix < end; ++ix) {
      make_plane(ix + 1, p1);
      make_x_edges(ix, p0, p1, x);
      const Plane* planes[2] = {&p0, &p1};
      for (int64_t j = 0; j + 1 < ny; ++j) {
        // Skip the column of cubes when its four lattice lines are all inside or all outside.
        const uint8_t r = p0.row[j];
        if (r != kMixed && p0.row[j + 1] == r && p1.row[j] == r && p1.row[j + 1] == r) continue;
        const uint8_t* m00 = &p0.inside[j * nz];  // inside flags of the four lines around this (ix, j) column
        const uint8_t* m01 = &p0.inside[(j + 1) * nz];
        const uint8_t* m10 = &p1.inside[j * nz];
        const uint8_t* m11 = &p1.inside[(j + 1) * nz];
        for (int64_t k = 0; k + 1 < nz; ++k) {
          // Corner bits are (x, y, z) = (bit0, bit1, bit2) with x ↔ ix, y ↔ j, z ↔ k.
          const int config = m00[k] | m10[k] << 1 | m01[k] << 2 | m11[k] << 3 | m00[k + 1] << 4 |
                             m10[k + 1] << 5 | m01[k + 1] << 6 | m11[k + 1] << 7;
          if (config == 0 || config == 255) continue;
          uint32_t ids[12];
          for (int e = 0; e < 12; ++e) {
            const int c = table.edge_base[e], cx = c & 1, cy = c >> 1 & 1, cz = c >> 2 & 1;
            switch (table.edge_axis[e]) {
              case 0:
                ids[e] = uint32_t(x[(j + cy) * nz + k + cz]);
                break;
              case 1:
                ids[e] = uint32_t(planes[cx]->y[j * nz + k + cz]);
                break;
              default:
                ids[e] = uint32_t(planes[cx]->z[(j + cy) * nz + k]);
                break;
            }
          }
          const uint8_t* tri = table.edges[config];
          for (int t = 0; t < table.count[config]; ++t)
            out_.triangles.push_back({ids[tri[3 * t]], ids[tri[3 * t + 1]], ids[tri[3 * t + 2]]});
        }
      }
      std::swap(p0, p1);
    }
    out_.last_plane = list_plane(p0);
  }

 private:
  static constexpr uint8_t kOutside = 0, kInside = 1, kMixed = 2;

  // One lattice plane ix = const: inside flags, a summary per row (line along z), and the vertex ids of its
  // crossed y- and z-edges (−1 where an edge is not crossed), indexed by the edge's lower end (j, k).
  struct Plane {
    std::vector<uint8_t> inside, row;
    std::vector<int32_t> y, z;
    Plane(int64_t ny, int64_t nz)
        : inside(size_t(ny * nz)), row(size_t(ny)), y(size_t(ny * nz)), z(size_t(ny * nz)) {}
  };

  void make_plane(int64_t p, Plane& plane) {
    const int64_t ny = g_.n[1], nz = g_.n[2];
    const float iso = g_.iso;
    for (int64_t j = 0; j < ny; ++j) {
      const float* v = &g_.v[g_.at(p, j, 0)];
      uint8_t* m = &plane.inside[j * nz];
      int count = 0;
      for (int64_t k = 0; k < nz; ++k) count += m[k] = v[k] > iso;
      plane.row[j] = count == 0 ? kOutside : count == nz ? kInside : kMixed;
    }
    std::fill(plane.y.begin(), plane.y.end(), -1);
    std::fill(plane.z.begin(), plane.z.end(), -1);
    for (int64_t j = 0; j < ny; ++j) {
      const uint8_t* m = &plane.inside[j * nz];
      if (plane.row[j] == kMixed)
        for (int64_t k = 0; k + 1 < nz; ++k)
          if (m[k] != m[k + 1]) plane.z[j * nz + k] = edge_vertex(p, j, k, 2);
      if (j + 1 < ny && !(plane.row[j] != kMixed && plane.row[j + 1] == plane.row[j]))
        for (int64_t k = 0; k < nz; ++k)
          if (m[k] != m[k + nz]) plane.y[j * nz + k] = edge_vertex(p, j, k, 1);
    }
  }

  // Vertices of the crossed x-edges between lattice planes ix and ix + 1.
  void make_x_edges(int64_t ix, const Plane& p0, const Plane& p1, std::vector<int32_t>& xs) {
    const int64_t ny = g_.n[1], nz = g_.n[2];
    std::fill(xs.begin(), xs.end(), -1);
    for (int64_t j = 0; j < ny; ++j) {
      if (p0.row[j] != kMixed && p1.row[j] == p0.row[j]) continue;
      for (int64_t k = 0; k < nz; ++k)
        if (p0.inside[j * nz + k] != p1.inside[j * nz + k]) xs[j * nz + k] = edge_vertex(ix, j, k, 0);
    }
  }

  std::vector<std::pair<int64_t, int32_t>> list_plane(const Plane& plane) const {
    std::vector<std::pair<int64_t, int32_t>> list;
    for (size_t s = 0; s < plane.y.size(); ++s) {
      if (plane.y[s] >= 0) list.emplace_back(int64_t(2 * s), plane.y[s]);
      if (plane.z[s] >= 0) list.emplace_back(int64_t(2 * s + 1), plane.z[s]);
    }
    return list;
  }

  // A new vertex on the lattice edge from (i, j, k) to (i, j, k) + e_axis, which crosses the surface.
  int32_t edge_vertex(int64_t i, int64_t j, int64_t k, int axis) {
    const int64_t p0[3] = {i, j, k};
    int64_t p1[3] = {i, j, k};
    ++p1[axis];
    const float v0 = g_.v[g_.at(p0[0], p0[1], p0[2])], v1 = g_.v[g_.at(p1[0], p1[1], p1[2])];
    const bool in0 = v0 > g_.iso;

    std::array<double, 3> pos, normal{0, 0, 0};
    const bool real0 = g_.real(p0[axis], axis), real1 = g_.real(p1[axis], axis);
    if (real0 && real1) {
      double t = (double(g_.iso) - v0) / (double(v1) - double(v0));
      t = std::min(std::max(t, 0.0), 1.0);
      const auto g0 = g_.gradient(p0), g1 = g_.gradient(p1);
      for (int a = 0; a < 3; ++a) {
        pos[a] = g_.coord(p0[a], a);
        normal[a] = -((1 - t) * g0[a] + t * g1[a]);
      }
      pos[axis] += t * g_.step[axis];
    } else {
      // An edge into the pad: the vertex sits on the border sample, on the cap that closes the solid.
      for (int a = 0; a < 3; ++a) pos[a] = g_.coord(real0 ? p0[a] : p1[a], a);
    }
    const double len = std::sqrt(normal[0] * normal[0] + normal[1] * normal[1] + normal[2] * normal[2]);
    if (len > 0 && std::isfinite(len)) {
      for (double& c : normal) c /= len;
    } else {  // no usable gradient (or a cap): along the edge, from the inside end to the outside end
      normal = {0, 0, 0};
      normal[axis] = in0 ? 1.0 : -1.0;
    }
    out_.positions.push_back({float(pos[0]), float(pos[1]), float(pos[2])});
    out_.normals.push_back({float(normal[0]), float(normal[1]), float(normal[2])});
    return int32_t(out_.positions.size() - 1);
  }

  const Padded& g_;
  Chunk& out_;
};

constexpr int64_t kLayersPerChunk = 8;  // fixed, so the output does not depend on the thread count

}  // namespace

TriangleMesh marching_cubes(const at::Tensor& grid, float iso, std::array<float, 3> box_min,
                            std::array<float, 3> box_max) {
  require(grid.dim() == 3,
          "marching cubes: the grid must be 3-D, got " + std::to_string(grid.dim()) + " dims");
  require(grid.is_floating_point(), "marching cubes: the grid must be floating point");
  require(std::isfinite(iso), "marching cubes: the iso value must be finite");
  for (int a = 0; a < 3; ++a) {
    require(grid.size(a) >= 2, "marching cubes: every grid side must be >= 2, got " +
                                   std::to_string(grid.size(0)) + "x" + std::to_string(grid.size(1)) + "x" +
                                   std::to_string(grid.size(2)));
    require(std::isfinite(box_min[a]) && std::isfinite(box_max[a]) && box_max[a] > box_min[a],
            "marching cubes: box_max must exceed box_min on every axis");
  }

  Padded g;
  g.iso = iso;
  for (int a = 0; a < 3; ++a) {
    g.n[a] = grid.size(a) + 2;
    g.lo[a] = box_min[a];
    g.step[a] = (double(box_max[a]) - double(box_min[a])) / double(grid.size(a) - 1);
  }
  const auto values = grid.detach().to(at::kCPU, at::kFloat).contiguous();
  const float* src = values.data_ptr<float>();
  g.v.assign(size_t(g.n[0] * g.n[1] * g.n[2]), iso);
  const int64_t ry = grid.size(1), rz = grid.size(2);
  const float big = std::numeric_limits<float>::max();
  at::parallel_for(0, grid.size(0), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      for (int64_t j = 0; j < ry; ++j) {
        const float* row = src + (i * ry + j) * rz;
        float* dst = g.v.data() + g.at(i + 1, j + 1, 1);
        for (int64_t k = 0; k < rz; ++k)  // NaN → far outside; ±inf → ±max (the interpolation stays finite)
          dst[k] = std::isnan(row[k]) ? -big : std::min(std::max(row[k], -big), big);
      }
  });

  const int64_t layers = g.n[0] - 1;  // cube layers ix = 0 .. Rx
  const int64_t num_chunks = (layers + kLayersPerChunk - 1) / kLayersPerChunk;
  std::vector<Chunk> chunks(static_cast<size_t>(num_chunks));
  at::parallel_for(0, num_chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      ChunkMesher mesher(g, chunks[c]);
      mesher.run(c * kLayersPerChunk, std::min((c + 1) * kLayersPerChunk, layers));
    }
  });

  // Concatenate the chunks; each chunk's first plane is its predecessor's last plane: reuse those vertices.
  TriangleMesh mesh;
  std::vector<std::pair<int64_t, uint32_t>> previous_last;  // (slot, global id)
  for (size_t c = 0; c < chunks.size(); ++c) {
    Chunk& chunk = chunks[c];
    const uint32_t unset = std::numeric_limits<uint32_t>::max();
    std::vector<uint32_t> remap(chunk.positions.size(), unset);
    if (c > 0) {
      if (chunk.first_plane.size() != previous_last.size())
        throw std::logic_error("marching cubes: chunk seams disagree");
      for (size_t i = 0; i < chunk.first_plane.size(); ++i) {
        if (chunk.first_plane[i].first != previous_last[i].first)
          throw std::logic_error("marching cubes: chunk seams disagree");
        remap[chunk.first_plane[i].second] = previous_last[i].second;
      }
    }
    for (size_t v = 0; v < chunk.positions.size(); ++v) {
      if (remap[v] != unset) continue;
      remap[v] = uint32_t(mesh.positions.size());
      mesh.positions.push_back(chunk.positions[v]);
      mesh.normals.push_back(chunk.normals[v]);
    }
    for (const auto& t : chunk.triangles) mesh.triangles.push_back({remap[t[0]], remap[t[1]], remap[t[2]]});
    previous_last.clear();
    for (const auto& [slot, id] : chunk.last_plane) previous_last.emplace_back(slot, remap[id]);
    chunk = Chunk();  // free as we go
  }
  return mesh;
}

}  // namespace nd
