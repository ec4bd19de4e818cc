#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "mesh/marching_cubes.h"
#include "mesh/mesh_cleanup.h"
#include "mesh/mesh_test_util.h"
#include "test_support.h"

namespace nd {
namespace {

// A sphere of radius 0.5 at the origin and a small blob (radius 0.08) near a corner of the box.
TriangleMesh sphere_and_floater(int64_t r) {
  const auto grid = test::lattice_grid(r, -1, 1, [](double x, double y, double z) {
    const double sphere = 0.5 - std::sqrt(x * x + y * y + z * z);
    const double blob =
        0.08 - std::sqrt((x - 0.75) * (x - 0.75) + (y - 0.75) * (y - 0.75) + (z + 0.7) * (z + 0.7));
    return std::max(sphere, blob);
  });
  return marching_cubes(grid, 0.0f, {-1, -1, -1}, {1, 1, 1});
}

TEST(MeshCleanup, RemovesASmallFarBlob) {
  const TriangleMesh mesh = sphere_and_floater(64);
  const auto sizes = component_sizes(mesh);
  ASSERT_EQ(sizes.size(), 2u);
  EXPECT_LT(double(sizes[1]), 0.05 * double(sizes[0]));

  for (const TriangleMesh& kept :
       {remove_small_components(mesh), remove_small_components(mesh, 0.0, 1), cleanup_mesh(mesh)}) {
    EXPECT_EQ(component_sizes(kept), std::vector<int64_t>{sizes[0]});
    EXPECT_TRUE(edge_stats(kept).closed_and_oriented());
    EXPECT_EQ(kept.normals.size(), kept.positions.size());
    for (const auto& p : kept.positions) ASSERT_LT(std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]), 0.55f);
    const double pi = 3.14159265358979323846;
    EXPECT_NEAR(signed_volume(kept) / (4.0 / 3.0 * pi * 0.125), 1.0, 0.01);
  }
  // Fraction 0 and no cap keep everything; a fraction above the blob's share keeps it only when it is met.
  EXPECT_EQ(remove_small_components(mesh, 0.0).num_triangles(), mesh.num_triangles());
  EXPECT_EQ(remove_small_components(mesh, 0.0, 2).num_triangles(), mesh.num_triangles());
  EXPECT_EQ(remove_small_components(mesh, 0.9 * double(sizes[1]) / double(sizes[0])).num_triangles(),
            mesh.num_triangles());
  EXPECT_THROW(remove_small_components(mesh, 1.5), InputError);
  EXPECT_THROW(remove_small_components(mesh, 0.05, -1), InputError);
}

TEST(MeshCleanup, RemoveUnusedVerticesRenumbers) {
  TriangleMesh mesh;
  mesh.positions = {{9, 9, 9}, {0, 0, 0}, {1, 0, 0}, {8, 8, 8}, {0, 1, 0}};
  mesh.colors = {{1, 1, 1}, {0.1f, 0, 0}, {0.2f, 0, 0}, {1, 1, 1}, {0.4f, 0, 0}};
  mesh.triangles = {{1, 2, 4}};
  const TriangleMesh out = remove_unused_vertices(mesh);
  ASSERT_EQ(out.num_vertices(), 3u);
  EXPECT_EQ(out.triangles[0], (std::array<uint32_t, 3>{0, 1, 2}));
  EXPECT_EQ(out.positions[2], (std::array<float, 3>{0, 1, 0}));
  EXPECT_EQ(out.colors[2][0], 0.4f);
  EXPECT_TRUE(out.normals.empty());
  mesh.triangles.push_back({0, 1, 5});
  EXPECT_TRUE(test::contains(test::input_error_of([&] { remove_unused_vertices(mesh); }), "vertex 5 of 5"));
}

TEST(MeshCleanup, WeldMergesTheBoxCapDuplicatesAndStaysClosed) {
  // A block filling the box: marching cubes puts three vertices on each box corner (one per pad edge).
  const TriangleMesh box = marching_cubes(at::ones({4, 4, 4}), 0.5f, {0, 0, 0}, {1, 1, 1});
  const TriangleMesh welded = weld_vertices(box);
  EXPECT_LT(welded.num_vertices(), box.num_vertices());
  EXPECT_TRUE(edge_stats(welded).closed_and_oriented());
  EXPECT_NEAR(surface_area(welded), 6.0, 1e-5);
  EXPECT_NEAR(signed_volume(welded), 1.0, 1e-5);
  // No duplicate positions remain.
  auto positions = welded.positions;
  std::sort(positions.begin(), positions.end());
  EXPECT_EQ(std::adjacent_find(positions.begin(), positions.end()), positions.end());
}

TEST(MeshCleanup, SimplifyKeepsTheShape) {
  const TriangleMesh mesh = test::sphere_mesh(64, 0.6);
  const TriangleMesh simple = simplify(mesh, 0.25, 0.01);
  std::printf("simplify: %zu → %zu triangles, closed %d\n", mesh.num_triangles(), simple.num_triangles(),
              int(edge_stats(simple).closed_and_oriented()));
  EXPECT_LE(double(simple.num_triangles()), 0.25 * double(mesh.num_triangles()) + 2);
  EXPECT_GT(double(simple.num_triangles()), 0.15 * double(mesh.num_triangles()));
  EXPECT_EQ(simple.normals.size(), simple.num_vertices());
  EXPECT_NEAR(surface_area(simple) / surface_area(mesh), 1.0, 0.02);
  EXPECT_NEAR(signed_volume(simple) / signed_volume(mesh), 1.0, 0.02);
  EXPECT_EQ(edge_stats(simple).boundary, 0);
  EXPECT_EQ(edge_stats(simple).misoriented, 0);
  // The cleanup pipeline's simplify option, and ratio 1 = unchanged.
  CleanupOptions options;
  options.simplify_ratio = 0.5;
  EXPECT_LT(cleanup_mesh(mesh, options).num_triangles(), mesh.num_triangles() * 6 / 10);
  EXPECT_EQ(simplify(mesh, 1.0).num_triangles(), mesh.num_triangles());
  EXPECT_THROW(simplify(mesh, 0.0), InputError);
}

}  // namespace
}  // namespace nd
