// `generate` end to end on a tiny random prior: every output is written, resume continues exactly, bad
// input is refused before anything is written.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "io/checkpoint.h"
#include "mesh/mesh_export.h"
#include "pipeline/generate.h"
#include "pipeline/shape_metrics.h"
#include "pipeline/text_to_3d.h"
#include "prior/tiny_prior.h"
#include "synth/scene.h"
#include "test_support.h"
#include "tiny_prior_fixture.h"

namespace fs = std::filesystem;

namespace nd {
namespace {

GenerateConfig tiny_generate(int64_t steps) {
  GenerateConfig c;
  c.prompt = "a red cube";
  c.optim.steps = steps;
  c.shading.albedo_warmup_steps = 3;
  c.mesh.resolution = 32;
  c.mesh.density_threshold = 5;
  return c;
}

TEST(Generate, ViewDependentPrompt) {
  EXPECT_EQ(view_dependent_prompt("a red cube", 10, 0), "a red cube, front view");
  EXPECT_EQ(view_dependent_prompt("a red cube", 10, 100), "a red cube, side view");
  EXPECT_EQ(view_dependent_prompt("a red cube", 10, -170), "a red cube, back view");
  EXPECT_EQ(view_dependent_prompt("a red cube", 70, 0), "a red cube, overhead view");
  EXPECT_EQ(view_dependent_prompt("a red cube, side view", 10, 0), "a red cube, side view");
}

TEST(Generate, WritesEveryOutputAndResumesExactly) {
  test::TempDir dir;
  GenerateOptions o;
  o.prior_path = test::write_tiny_prior(dir.path);
  o.progress = false;
  o.view_resolution = 16;
  o.checkpoint_every = 0;

  o.out_dir = dir.path + "/straight";
  const GenerateResult r = run_generate(tiny_generate(12), o);
  EXPECT_EQ(r.steps, 12);
  for (const char* f : {"config.json", "checkpoint.safetensors", "mesh.glb", "mesh.obj", "mesh.mtl",
                        "mesh.ply", "views.png", "metrics.json"})
    EXPECT_TRUE(fs::exists(fs::path(o.out_dir) / f)) << f;
  const auto metrics = nlohmann::json::parse(read_file(o.out_dir + "/metrics.json"));
  EXPECT_TRUE(metrics.contains("iou") && metrics.contains("color_error") &&
              metrics.contains("steps_per_second"));
  const TriangleMesh glb = read_glb(o.out_dir + "/mesh.glb"), ply = read_ply(o.out_dir + "/mesh.ply");
  EXPECT_EQ(glb.triangles.size(), ply.triangles.size());
  EXPECT_EQ(static_cast<int64_t>(glb.triangles.size()), r.triangles);

  // An existing output directory is refused (and left alone) without --overwrite.
  EXPECT_TRUE(
      test::contains(test::input_error_of([&] { run_generate(tiny_generate(12), o); }), "--overwrite"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/mesh.glb"));

  // 6 steps, stop, resume to 12: the same field as 12 straight.
  o.out_dir = dir.path + "/resumed";
  o.stop_at_step = 6;
  EXPECT_TRUE(run_generate(tiny_generate(12), o).interrupted);
  o.stop_at_step = 0;
  o.resume = true;
  EXPECT_EQ(run_generate(tiny_generate(12), o).steps, 12);
  const Checkpoint a = load_checkpoint(dir.path + "/straight/checkpoint.safetensors", kGenerateCheckpoint);
  const Checkpoint b = load_checkpoint(dir.path + "/resumed/checkpoint.safetensors", kGenerateCheckpoint);
  for (const auto& [name, t] : a.tensors)
    if (name.rfind("field.", 0) == 0) EXPECT_LT(test::max_abs_diff(t, b.tensors.at(name)), 1e-4) << name;
}

TEST(Generate, BadInputFailsBeforeWriting) {
  test::TempDir dir;
  GenerateOptions o;
  o.prior_path = test::write_tiny_prior(dir.path);
  o.progress = false;
  o.out_dir = dir.path + "/out";
  GenerateConfig c = tiny_generate(5);
  c.prompt = "a crimson cube";
  EXPECT_TRUE(test::contains(test::input_error_of([&] { run_generate(c, o); }), "'crimson'"));
  EXPECT_FALSE(fs::exists(o.out_dir));
  c = tiny_generate(5);
  c.guidance.guidance_scale = -1;
  EXPECT_NE(test::input_error_of([&] {
              validate(c);
              run_generate(c, o);
            }),
            "<no InputError>");
  o.prior_path = dir.path + "/missing.safetensors";
  EXPECT_NE(test::input_error_of([&] { run_generate(tiny_generate(5), o); }), "<no InputError>");
  EXPECT_FALSE(fs::exists(o.out_dir));
  EXPECT_TRUE(test::contains(test::input_error_of([&] {
                               generate_config_from_json({{"optim", {{"stepz", 3}}}});
                             }),
                             "optim.stepz"));
}

TEST(ShapeMetrics, IouOfTheTruthIsOne) {
  const SynthObject cube = parse_caption("a red cube").object;
  const at::Tensor truth = occupancy_grid(cube, 32);
  EXPECT_DOUBLE_EQ(occupancy_iou(truth, truth), 1.0);
  EXPECT_DOUBLE_EQ(occupancy_iou(truth, at::zeros_like(truth)), 0.0);
}

}  // namespace
}  // namespace nd
