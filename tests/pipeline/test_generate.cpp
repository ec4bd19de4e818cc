// `generate` end to end on a tiny random prior: every output is written, resume continues exactly, bad
// input is refused before anything is written.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "io/checkpoint.h"
#include "mesh/mesh_export.h"
#include "pipeline/asset_export.h"
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
  c.method = "sds";
  c.optim.steps = steps;
  c.shading.albedo_warmup_steps = 3;
  c.mesh.resolution = 32;
  c.mesh.density_threshold = 5;
  return c;
}

// No progress bar, small views, no intermediate checkpoints.
GenerateOptions quiet_options(const std::string& prior_path) {
  GenerateOptions o;
  o.prior_path = prior_path;
  o.progress = false;
  o.view_resolution = 16;
  o.checkpoint_every = 0;
  return o;
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
  GenerateOptions o = quiet_options(test::write_tiny_prior(dir.path));

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
  for (const auto& [name, t] : a.tensors) {
    if (name.rfind("field.", 0) == 0) {
      EXPECT_LT(test::max_abs_diff(t, b.tensors.at(name)), 1e-4) << name;
    }
  }
}

TEST(Generate, IterativeDatasetUpdateWritesEveryOutputAndResumesExactly) {
  test::TempDir dir;
  GenerateOptions o = quiet_options(test::write_tiny_prior(dir.path));
  GenerateConfig c = tiny_generate(14);
  c.method = "idu";
  c.idu.views = 3;
  c.idu.steps_per_view = 3;
  c.idu.refresh_every = 2;
  c.idu.sample_steps = 4;
  c.idu.rays_per_step = 128;

  o.out_dir = dir.path + "/straight";
  EXPECT_EQ(run_generate(c, o).steps, 14);
  for (const char* f : {"config.json", "checkpoint.safetensors", "mesh.glb", "mesh.obj", "mesh.ply",
                        "views.png", "dataset.png", "metrics.json"})
    EXPECT_TRUE(fs::exists(fs::path(o.out_dir) / f)) << f;
  const auto metrics = nlohmann::json::parse(read_file(o.out_dir + "/metrics.json"));
  EXPECT_EQ(metrics["method"], "idu");
  const auto config = nlohmann::json::parse(read_file(o.out_dir + "/config.json"));
  EXPECT_EQ(config["idu"]["views"], 3);
  EXPECT_EQ(config["render_resolution"], 16);  // resolved to the prior's

  // Stop between two views (step 5: two collected), resume: the same field and collection.
  o.out_dir = dir.path + "/resumed";
  o.stop_at_step = 5;
  EXPECT_TRUE(run_generate(c, o).interrupted);
  o.stop_at_step = 0;
  o.resume = true;
  EXPECT_EQ(run_generate(c, o).steps, 14);
  const Checkpoint a = load_checkpoint(dir.path + "/straight/checkpoint.safetensors", kGenerateCheckpoint);
  const Checkpoint b = load_checkpoint(dir.path + "/resumed/checkpoint.safetensors", kGenerateCheckpoint);
  EXPECT_EQ(a.extra.at("idu.collected"), "3");
  EXPECT_LT(test::max_abs_diff(a.tensors.at("idu.images"), b.tensors.at("idu.images")), 1e-5);
  for (const auto& [name, t] : a.tensors) {
    if (name.rfind("field.", 0) == 0) {
      EXPECT_LT(test::max_abs_diff(t, b.tensors.at(name)), 1e-4) << name;
    }
  }

  // Too few steps to cover the orbit is refused before anything is written.
  c.optim.steps = 5;
  o.resume = false;
  o.out_dir = dir.path + "/short";
  EXPECT_TRUE(test::contains(test::input_error_of([&] { run_generate(c, o); }), "idu.views"));
  EXPECT_FALSE(fs::exists(o.out_dir));
}

// Latent SDS end to end on the tiny golden Stable Diffusion pipeline (label golden; skips without it).
TEST(GenerateGolden, LatentSdsOnAStableDiffusionCheckpoint) {
  const std::string model = test::kGolden + "/sd1-tiny";
  if (!fs::exists(model + "/model_index.json")) GTEST_SKIP() << model << " not found";
  test::TempDir dir;
  GenerateOptions o = quiet_options("");
  o.out_dir = dir.path + "/sd";
  GenerateConfig c = tiny_generate(3);
  c.prompt = "a hamburger";  // any text: SD has no closed vocabulary
  c.model = model;
  c.render_resolution = 16;
  c.guidance.guidance_scale = 100;
  const GenerateResult r = run_generate(c, o);
  EXPECT_EQ(r.steps, 3);
  EXPECT_FALSE(r.synth_prompt);
  for (const char* f : {"config.json", "checkpoint.safetensors", "mesh.glb", "views.png", "metrics.json"})
    EXPECT_TRUE(fs::exists(fs::path(o.out_dir) / f)) << f;
  const auto metrics = nlohmann::json::parse(read_file(o.out_dir + "/metrics.json"));
  EXPECT_TRUE(test::contains(metrics["model"].get<std::string>(), "Stable Diffusion 1"));
  EXPECT_TRUE(std::isfinite(metrics["final_loss"].get<double>()));
  // The field moved: SDS gradients reached it through the VAE.
  const Checkpoint ckpt = load_checkpoint(o.out_dir + "/checkpoint.safetensors", kGenerateCheckpoint);
  EXPECT_EQ(ckpt.config["model"], model);
  // Bad combinations fail before writing.
  o.out_dir = dir.path + "/bad";
  o.prior_path = "x.safetensors";
  EXPECT_TRUE(test::contains(test::input_error_of([&] { run_generate(c, o); }), "--prior and --model"));
  o.prior_path.clear();
  o.device = "tpu";
  EXPECT_TRUE(test::contains(test::input_error_of([&] { run_generate(c, o); }), "--device"));
  EXPECT_FALSE(fs::exists(o.out_dir));
}

TEST(Generate, PartialFieldConfigKeepsTheTunedDefaults) {
  const GenerateConfig c =
      generate_config_from_json({{"field", {{"grid", {{"finest_resolution_per_bound", 32.0}}}}}});
  const GenerateConfig d;
  EXPECT_EQ(c.field.grid.finest_resolution_per_bound, 32.0);
  EXPECT_EQ(c.field.grid.levels, d.field.grid.levels);
  EXPECT_EQ(c.field.grid.log2_table_size, d.field.grid.log2_table_size);
  EXPECT_EQ(c.field.blob, d.field.blob);
  EXPECT_TRUE(test::contains(test::input_error_of([&] {
                               generate_config_from_json({{"method", "dreams"}});
                             }),
                             "method"));
  EXPECT_TRUE(test::contains(test::input_error_of([&] {
                               generate_config_from_json({{"idu", {{"strength", 2.0}}}, {"method", "idu"}});
                             }),
                             "idu.strength"));
}

TEST(Generate, MeshIsCappedAtMaxTriangles) {
  GenerateConfig c;  // its field starts as the magic3d density blob: a ball of radius ~0.5
  c.field.grid.bound = 1.0;
  torch::manual_seed(0);
  NerfField field(c.field);
  c.mesh.resolution = 64;
  c.mesh.density_threshold = 5;
  c.mesh.max_triangles = 0;
  const TriangleMesh full = extract_mesh(*field, c.mesh);
  ASSERT_GT(full.triangles.size(), 4000u);
  c.mesh.max_triangles = 1000;
  const TriangleMesh capped = extract_mesh(*field, c.mesh);
  EXPECT_LE(capped.triangles.size(), 1100u);
  EXPECT_GT(capped.triangles.size(), 500u);
  c.mesh.max_triangles = 50;
  EXPECT_TRUE(test::contains(test::input_error_of([&] { validate(c); }), "mesh.max_triangles"));
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
