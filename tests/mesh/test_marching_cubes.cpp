#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/error.h"
#include "core/threads.h"
#include "mesh/marching_cubes.h"
#include "mesh/mesh_test_util.h"
#include "test_support.h"

namespace nd {
namespace {

using test::lattice_grid;
using test::sphere_grid;
using test::sphere_mesh;

void expect_closed_and_oriented(const TriangleMesh& mesh) {
  const EdgeStats s = edge_stats(mesh);
  EXPECT_EQ(s.boundary, 0);
  EXPECT_EQ(s.non_manifold, 0);
  EXPECT_EQ(s.misoriented, 0);
  EXPECT_GT(signed_volume(mesh), 0.0);
  ASSERT_EQ(mesh.normals.size(), mesh.positions.size());
  for (const auto& n : mesh.normals) ASSERT_NEAR(n[0] * n[0] + n[1] * n[1] + n[2] * n[2], 1.0, 1e-5);
}

TEST(EdgeStats, Tetrahedron) {
  TriangleMesh tet;
  tet.positions = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  tet.triangles = {{0, 2, 1}, {0, 1, 3}, {0, 3, 2}, {1, 2, 3}};  // counter-clockwise seen from outside
  EXPECT_TRUE(edge_stats(tet).closed_and_oriented());
  EXPECT_EQ(edge_stats(tet).edges, 6);
  EXPECT_NEAR(signed_volume(tet), 1.0 / 6.0, 1e-12);
  EXPECT_NEAR(surface_area(tet), 1.5 + std::sqrt(3.0) / 2.0, 1e-6);
  const BoundingBox box = bounding_box(tet);
  EXPECT_EQ(box.min, (std::array<float, 3>{0, 0, 0}));
  EXPECT_EQ(box.max, (std::array<float, 3>{1, 1, 1}));

  TriangleMesh open = tet;
  open.triangles.pop_back();
  EXPECT_EQ(edge_stats(open).boundary, 3);
  TriangleMesh flipped = tet;
  std::swap(flipped.triangles[3][1], flipped.triangles[3][2]);
  EXPECT_EQ(edge_stats(flipped).misoriented, 3);
  TriangleMesh fin = tet;
  fin.positions.push_back({1, 1, 1});
  fin.triangles.push_back({1, 2, 4});
  EXPECT_EQ(edge_stats(fin).non_manifold, 1);
}

TEST(MarchingCubes, SphereAreaAndVolumeWithinOnePercent) {
  const double r = 0.6, pi = 3.14159265358979323846;
  const TriangleMesh mesh = sphere_mesh(128, r);
  const double area = surface_area(mesh), volume = signed_volume(mesh);
  const double true_area = 4 * pi * r * r, true_volume = 4.0 / 3.0 * pi * r * r * r;
  std::printf("R=128 sphere r=0.6: %zu vertices, %zu triangles, area error %+.4f%%, volume error %+.4f%%\n",
              mesh.num_vertices(), mesh.num_triangles(), 100 * (area / true_area - 1),
              100 * (volume / true_volume - 1));
  EXPECT_NEAR(area / true_area, 1.0, 0.01);
  EXPECT_NEAR(volume / true_volume, 1.0, 0.01);
  expect_closed_and_oriented(mesh);
  // Every vertex on the sphere (linear interpolation of a distance field) with its normal pointing outward.
  for (size_t i = 0; i < mesh.num_vertices(); ++i) {
    const auto& p = mesh.positions[i];
    const auto& n = mesh.normals[i];
    const double len = std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
    ASSERT_NEAR(len, r, 2e-3);
    ASSERT_GT((p[0] * n[0] + p[1] * n[1] + p[2] * n[2]) / len, 0.999);
  }
}

TEST(MarchingCubes, Sphere256Timing) {
  set_threads(0);
  const auto grid = sphere_grid(256, 0.6);
  const auto t0 = std::chrono::steady_clock::now();
  const TriangleMesh mesh = marching_cubes(grid, 0.0f, {-1, -1, -1}, {1, 1, 1});
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("marching_cubes R=256 sphere: %.1f ms on %d threads, %zu vertices, %zu triangles\n", ms,
              num_threads(), mesh.num_vertices(), mesh.num_triangles());
  const double pi = 3.14159265358979323846;
  EXPECT_NEAR(signed_volume(mesh) / (4.0 / 3.0 * pi * 0.216), 1.0, 0.003);
  expect_closed_and_oriented(mesh);
}

// Random values hit every cube case, the ambiguous faces included: the mesh must still be closed. Odd trials
// draw from {−1, 0, 1} with iso 0: samples exactly at the iso value put several vertices on one lattice
// point.
TEST(MarchingCubes, ClosedAndOrientedOnNoise) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t r = 6 + trial % 17;
    auto grid = at::empty({r, r + trial % 3, r + 1}, at::kFloat);  // anisotropic on purpose
    for (int64_t i = 0; i < grid.numel(); ++i)
      grid.data_ptr<float>()[i] = trial % 2 ? float(int(rng() % 3) - 1) : u(rng);
    const float iso = trial % 4 == 0 ? 0.5f : 0.0f;
    const TriangleMesh mesh = marching_cubes(grid, iso, {-1, -2, 0}, {1, 2, 0.5f});
    ASSERT_GT(mesh.num_triangles(), 50u);
    SCOPED_TRACE("trial " + std::to_string(trial));
    expect_closed_and_oriented(mesh);
  }
}

TEST(MarchingCubes, SolidsTouchingTheBoxAreCappedOnIt) {
  // Everything inside: the box itself.
  const TriangleMesh box = marching_cubes(at::ones({5, 6, 7}), 0.5f, {-1, -1, -1}, {1, 1, 1});
  expect_closed_and_oriented(box);
  EXPECT_NEAR(signed_volume(box), 8.0, 1e-5);
  EXPECT_NEAR(surface_area(box), 24.0, 1e-4);
  for (const auto& p : box.positions)
    for (float c : p) ASSERT_TRUE(c >= -1.0f && c <= 1.0f);
  // A half-space x < 0.3: a slab with exact volume (linear field, lattice positions).
  const TriangleMesh slab =
      marching_cubes(lattice_grid(21, -1, 1, [](double x, double, double) { return 0.3 - x; }), 0.0f,
                     {-1, -1, -1}, {1, 1, 1});
  expect_closed_and_oriented(slab);
  EXPECT_NEAR(signed_volume(slab), 1.3 * 4.0, 1e-4);
  EXPECT_NEAR(surface_area(slab), 2 * 4.0 + 4 * 2 * 1.3, 1e-4);
}

TEST(MarchingCubes, LatticeConvention) {
  // Value 0.3 − x on R = 6 samples of [0, 1] (x_i = i / 5): the surface is exactly the plane x = 0.3, and a
  // grid[i] holds the value at x_i (first index ↔ x, last ↔ z).
  const int64_t r = 6;
  auto grid = at::empty({r, r, r}, at::kFloat);
  for (int64_t i = 0; i < r; ++i) grid[i].fill_(0.3f - float(i) / 5.0f);
  const TriangleMesh mesh = marching_cubes(grid, 0.0f, {0, 0, 0}, {1, 1, 1});
  int on_plane = 0;
  for (size_t v = 0; v < mesh.num_vertices(); ++v) {
    const auto& p = mesh.positions[v];
    if (std::abs(p[0] - 0.3f) < 1e-6f) {
      ++on_plane;
      EXPECT_NEAR(mesh.normals[v][0], 1.0f, 1e-6f);  // outward = +x (the value falls along +x)
    } else {  // the caps on the box faces, at the inside samples x_0 = 0 and x_1 = 0.2
      EXPECT_TRUE(p[0] == 0.0f || p[0] == 0.2f) << p[0];
      EXPECT_TRUE(p[0] == 0.0f || p[1] == 0.0f || p[1] == 1.0f || p[2] == 0.0f || p[2] == 1.0f);
    }
  }
  EXPECT_EQ(on_plane, 36);  // one vertex per x-edge crossing: 6 × 6 lattice lines
  // Transposing the grid moves the plane to z.
  const TriangleMesh z = marching_cubes(grid.permute({2, 1, 0}), 0.0f, {0, 0, 0}, {1, 1, 1});
  EXPECT_NEAR(signed_volume(z), 0.3, 1e-5);
  const BoundingBox b = bounding_box(z);
  EXPECT_NEAR(b.max[2], 0.3f, 1e-6f);
  EXPECT_EQ(b.max[0], 1.0f);
}

TEST(MarchingCubes, SameMeshForAnyThreadCount) {
  const auto grid = lattice_grid(70, -1, 1, [](double x, double y, double z) {
    return std::sin(5 * x) * std::cos(4 * y) + std::sin(3 * z + x) - 0.2;  // many pieces and handles
  });
  set_threads(1);
  const TriangleMesh one = marching_cubes(grid, 0.1f, {-1, -1, -1}, {1, 1, 1});
  set_threads(0);
  const TriangleMesh all = marching_cubes(grid, 0.1f, {-1, -1, -1}, {1, 1, 1});
  EXPECT_EQ(one.positions, all.positions);
  EXPECT_EQ(one.normals, all.normals);
  EXPECT_EQ(one.triangles, all.triangles);
  expect_closed_and_oriented(one);
}

TEST(MarchingCubes, EmptyFullNaNAndBadInput) {
  EXPECT_EQ(marching_cubes(at::zeros({8, 8, 8}), 0.5f, {0, 0, 0}, {1, 1, 1}).num_triangles(), 0u);
  // NaN counts as far outside: a NaN sample in a solid block cuts out the octahedron of its six neighbours
  // (volume 4/3·h³, h = 1/8), and the result stays closed.
  auto grid = at::ones({9, 9, 9});
  grid[4][4][4] = std::nanf("");
  const TriangleMesh holed = marching_cubes(grid, 0.5f, {0, 0, 0}, {1, 1, 1});
  expect_closed_and_oriented(holed);
  EXPECT_NEAR(signed_volume(holed), 1.0 - 4.0 / 3.0 / 512.0, 1e-6);
  // Doubles and non-contiguous grids are fine.
  EXPECT_EQ(
      marching_cubes(sphere_grid(16, 0.5).to(at::kDouble).transpose(0, 2), 0.0f, {-1, -1, -1}, {1, 1, 1})
          .num_vertices(),
      sphere_mesh(16, 0.5).num_vertices());

  EXPECT_TRUE(test::contains(test::input_error_of([] {
                               marching_cubes(at::zeros({8, 8}), 0.0f, {0, 0, 0}, {1, 1, 1});
                             }),
                             "3-D"));
  EXPECT_TRUE(test::contains(test::input_error_of([] {
                               marching_cubes(at::zeros({8, 1, 8}), 0.0f, {0, 0, 0}, {1, 1, 1});
                             }),
                             ">= 2"));
  EXPECT_TRUE(test::contains(test::input_error_of([] {
                               marching_cubes(at::zeros({4, 4, 4}), 0.0f, {0, 0, 0}, {1, -1, 1});
                             }),
                             "box"));
  EXPECT_TRUE(test::contains(test::input_error_of([] {
                               marching_cubes(at::zeros({4, 4, 4}), NAN, {0, 0, 0}, {1, 1, 1});
                             }),
                             "iso"));
  EXPECT_TRUE(test::contains(test::input_error_of([] {
                               marching_cubes(at::zeros({4, 4, 4}, at::kInt), 0.0f, {0, 0, 0}, {1, 1, 1});
                             }),
                             "floating"));
}

}  // namespace
}  // namespace nd
