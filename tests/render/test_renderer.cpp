// The assembled renderer: occupancy-grid culling must not change the image; shading modes.
#include <gtest/gtest.h>

#include "core/threads.h"
#include "render/renderer.h"
#include "render/shading.h"

namespace nd {
namespace {

FieldConfig blob_field() {
  FieldConfig c;
  c.grid.levels = 6;
  c.grid.log2_table_size = 12;
  c.grid.finest_resolution_per_bound = 128;
  // σ = exp(100·(1 − |x|/0.5)): a ball of radius 0.5 with a thin halo (optical thickness ~0.01 outside),
  // so the occupancy grid's threshold (Instant-NGP's 0.01 per step) may rightly cull the halo.
  c.blob = "magic3d";
  c.blob_density = 100;
  c.blob_radius = 0.5;
  return c;
}

TEST(Renderer, OccupancyCullingKeepsTheImage) {
  set_threads(0);
  torch::manual_seed(0);
  NerfField field(blob_field());
  RenderConfig with_grid;
  with_grid.grid_resolution = 32;
  with_grid.march.max_steps = 512;
  RenderConfig no_grid = with_grid;
  no_grid.use_occupancy_grid = false;
  VolumeRenderer culled(with_grid, 1.0), full(no_grid, 1.0);
  std::mt19937_64 rng(0);
  // Each update probes one random point per cell; after a few dozen, every cell that touches the ball
  // has been found (the grid keeps the maximum), as in a training run.
  for (int step = 0; step < 32; ++step) culled.update_occupancy(*field, step, rng);
  EXPECT_LT(culled.grid().occupied_fraction(), 0.5);
  EXPECT_GT(culled.grid().occupied_fraction(), 0.01);
  auto cam = orbit_camera(3.0, 20.0, 30.0, 40.0, 48, 48);
  auto white = at::ones({3});
  auto a = culled.render_image(*field, cam, white, ShadingParams{});
  auto b = full.render_image(*field, cam, white, ShadingParams{});
  // Culling drops the halo where one marching step has optical thickness < 0.01 (Instant-NGP's rule):
  // a few percent at most on grazing silhouette rays, nothing elsewhere.
  EXPECT_LT((a.rgb - b.rgb).abs().max().item<float>(), 0.04);
  EXPECT_LT((a.rgb - b.rgb).abs().mean().item<float>(), 1e-3);
  EXPECT_GT(a.opacity.max().item<float>(), 0.99);  // the ball is opaque
  EXPECT_LT(a.opacity[0][0].item<float>(), 1e-3);  // the corner sees the background
}

TEST(Renderer, ShadingModes) {
  torch::manual_seed(0);
  NerfField field(blob_field());
  RenderConfig rc;
  rc.use_occupancy_grid = false;
  rc.march.max_steps = 256;
  VolumeRenderer r(rc, 1.0);
  auto cam = orbit_camera(3.0, 0.0, 0.0, 40.0, 24, 24);
  auto white = at::ones({3});
  ShadingParams s;
  s.light_dir = {0, 0, 1};  // from the camera
  s.ambient = 0.0f;
  s.mode = Shading::Textureless;
  auto lit = r.render_image(*field, cam, white, s);
  // Facing the light, the centre of a textureless ball is white; its rim darker.
  EXPECT_GT(lit.rgb[12][12][0].item<float>(), 0.9f);
  s.mode = Shading::Normal;
  auto normals = r.render_image(*field, cam, white, s);
  // The centre normal faces +Z (towards the camera): encoded blue ≈ 1.
  EXPECT_GT(normals.rgb[12][12][2].item<float>(), 0.95f);
  s.light_dir = {0, 0, -1};  // from behind
  s.mode = Shading::Lambertian;
  auto dark = r.render_image(*field, cam, white, s);
  EXPECT_LT(dark.rgb[12][12][0].item<float>(), 0.05f);

  // A headlight lights every camera from its eye.
  ShadingParams head;
  head.mode = Shading::Textureless;
  head.ambient = 0.0f;
  head.headlight = true;
  // From the front and from behind, the centre of the ball faces the eye: lit either way.
  for (double azimuth : {0.0, 180.0}) {
    auto img = r.render_image(*field, orbit_camera(3.0, 0.0, azimuth, 40.0, 24, 24), white, head);
    EXPECT_GT(img.rgb[12][12][0].item<float>(), 0.9f) << azimuth;
  }
  // A per-sample light equal to a fixed one gives the fixed light's shading exactly.
  const at::Tensor albedo = at::rand({5, 3}), raw = at::randn({5, 3});
  const at::Tensor unit_normals = raw / raw.norm(2, {1}, true);
  const at::Tensor dirs = at::tensor({0.0f, 0.0f, -1.0f}).expand({5, 3});
  ShadingParams fixed;
  fixed.mode = Shading::Lambertian;
  fixed.light_dir = {0, 0, 1};
  fixed.ambient = 0.25f;
  head.mode = Shading::Lambertian;
  head.ambient = 0.25f;
  EXPECT_TRUE(at::allclose(shade(albedo, unit_normals, head, dirs), shade(albedo, unit_normals, fixed)));
}

}  // namespace
}  // namespace nd
