// End-to-end fits on tiny synth scenes: quality, resume, checkpoints and bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/threads.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "pipeline/fit.h"

namespace fs = std::filesystem;

namespace nd {
namespace {

std::string temp_dir(const std::string& name) {
  auto p = fs::temp_directory_path() / ("nerfdream-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

// A small but real fit: 32×32 views of the spec scene, a reduced hash grid.
FitConfig tiny_config() {
  FitConfig c;
  c.data.synth = "a red sphere on top of a blue cube";
  c.data.synth_resolution = 32;
  c.data.synth_train_views = 40;
  c.data.synth_test_views = 4;
  c.field.grid.levels = 8;
  c.field.grid.log2_table_size = 15;
  c.field.grid.finest_resolution_per_bound = 256;
  c.render.grid_resolution = 64;
  c.render.march.max_steps = 256;
  c.optim.batch_rays = 1024;
  c.optim.steps = 400;
  return c;
}

TEST(Fit, TinySynthFitReaches25dB) {
  set_threads(0);
  FitOptions opt;
  opt.out_dir = temp_dir("fit");
  opt.progress = false;
  FitResult r = run_fit(tiny_config(), opt);
  EXPECT_EQ(r.steps, 400);
  EXPECT_EQ(r.test_views, 4);
  EXPECT_GE(r.test_psnr, 25.0) << "test PSNR " << r.test_psnr;
  EXPECT_GT(r.test_ssim, 0.8);
  for (const char* f : {"config.json", "checkpoint.safetensors", "metrics.json", "test/r_000.png",
                        "data/transforms_train.json"})
    EXPECT_TRUE(fs::exists(fs::path(opt.out_dir) / f)) << f;
  fs::remove_all(opt.out_dir);
}

TEST(Fit, ResumeContinuesExactly) {
  set_threads(0);
  FitConfig c = tiny_config();
  c.optim.steps = 60;
  c.data.synth_train_views = 10;
  c.data.synth_test_views = 1;
  FitOptions straight;
  straight.out_dir = temp_dir("straight");
  straight.progress = false;
  straight.evaluate = false;
  run_fit(c, straight);

  FitConfig first = c;  // the same run, stopped (as by Ctrl-C) after 30 steps
  FitOptions part;
  part.stop_at_step = 30;
  part.out_dir = temp_dir("resumed");
  part.progress = false;
  part.evaluate = false;
  run_fit(first, part);
  FitOptions resume = part;
  resume.stop_at_step = 0;
  resume.resume = part.out_dir;
  FitConfig rest = c;  // the caller may only extend the step budget
  FitResult r = run_fit(rest, resume);
  EXPECT_EQ(r.steps, 60);

  auto a = load_checkpoint(straight.out_dir + "/checkpoint.safetensors");
  auto b = load_checkpoint(part.out_dir + "/checkpoint.safetensors");
  EXPECT_EQ(a.step, b.step);
  for (const auto& [name, t] : a.tensors) {
    if (name.rfind("field.", 0) != 0) continue;
    ASSERT_TRUE(b.tensors.count(name)) << name;
    EXPECT_LT((t - b.tensors[name]).abs().max().item<float>(), 1e-4) << name;
  }
  fs::remove_all(straight.out_dir);
  fs::remove_all(part.out_dir);
}

TEST(Fit, RefusesNonEmptyOutputDirectory) {
  FitOptions opt;
  opt.out_dir = temp_dir("nonempty");
  fs::create_directories(opt.out_dir);
  std::ofstream(opt.out_dir + "/keep.txt") << "precious";
  opt.progress = false;
  try {
    run_fit(tiny_config(), opt);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--overwrite"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(opt.out_dir + "/keep.txt"));
  fs::remove_all(opt.out_dir);
}

TEST(Fit, ResumeRejectsIncompatibleCheckpoint) {
  const std::string dir = temp_dir("badckpt");
  fs::create_directories(dir);
  // A safetensors file that is not a NeRF checkpoint.
  save_safetensors(dir + "/checkpoint.safetensors", {{"x", at::zeros({2})}}, {{"format", "something-else"}});
  FitOptions opt;
  opt.out_dir = dir;
  opt.resume = dir;
  opt.progress = false;
  try {
    run_fit(tiny_config(), opt);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint.safetensors"), std::string::npos) << e.what();
  }
  // A real checkpoint whose field tensors do not match its config.
  Checkpoint c;
  c.config = to_json(tiny_config());
  c.step = 3;
  c.tensors["field.encoder.table"] = at::zeros({7, 2});
  save_checkpoint(dir + "/checkpoint.safetensors", c);
  try {
    run_fit(tiny_config(), opt);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("incompatible checkpoint"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(FitConfig, RejectsUnknownKeysAndBadValues) {
  auto j = to_json(tiny_config());
  EXPECT_NO_THROW(fit_config_from_json(j));
  auto bad = j;
  bad["optim"]["learning_rate"] = 1;
  try {
    fit_config_from_json(bad);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("optim.learning_rate"), std::string::npos) << e.what();
  }
  bad = j;
  bad["field"]["grid"]["levels"] = "many";
  EXPECT_THROW(fit_config_from_json(bad), InputError);
  bad = j;
  bad["optim"]["batch_rays"] = 0;
  EXPECT_THROW(fit_config_from_json(bad), InputError);
  bad = j;
  bad["format_version"] = 99;
  EXPECT_THROW(fit_config_from_json(bad), InputError);
}

}  // namespace
}  // namespace nd
