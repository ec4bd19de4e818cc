#include "pipeline/fit.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"
#include "data/transforms_dataset.h"
#include "io/checkpoint.h"
#include "io/image_io.h"
#include "pipeline/metrics.h"
#include "pipeline/nerf_trainer.h"
#include "synth/caption.h"
#include "synth/dataset_writer.h"

namespace fs = std::filesystem;

namespace nd {

double peak_rss_mb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
}

namespace {

// Refuses to clobber a non-empty directory unless allowed (the directory itself is made later, once the
// input has been read, so that bad input leaves nothing behind).
void check_out_dir(const std::string& dir, bool overwrite, bool resuming) {
  require(!dir.empty(), "--out: an output directory is required");
  if (!fs::exists(dir)) return;
  require(fs::is_directory(dir), dir + ": exists and is not a directory");
  require(fs::is_empty(dir) || overwrite || resuming,
          dir + ": exists and is not empty (use --overwrite to write into it)");
}

// The resolved path of a checkpoint given as a file or a run directory.
std::string checkpoint_path(const std::string& p) {
  if (fs::is_directory(p)) return (fs::path(p) / "checkpoint.safetensors").string();
  return p;
}

}  // namespace

double pixel_matched_finest_resolution(const std::vector<Camera>& cameras, double bound) {
  // Footprint of one pixel at the box centre, median over the views: distance / focal length.
  std::vector<double> footprints;
  for (const auto& cam : cameras) {
    const auto p = cam.position();
    const double distance = std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
    footprints.push_back(std::max(distance, 1e-3 * bound) / std::max(cam.intrinsics.fx, cam.intrinsics.fy));
  }
  std::nth_element(footprints.begin(), footprints.begin() + footprints.size() / 2, footprints.end());
  const double footprint = footprints[footprints.size() / 2];
  // Two grid cells per pixel footprint (Nyquist), expressed per unit of bound.
  return 2.0 * 2.0 / footprint;
}

FitResult run_fit(FitConfig config, const FitOptions& options) {
  const bool resuming = !options.resume.empty();
  Checkpoint ckpt;
  std::string ckpt_file;
  if (resuming) {
    ckpt_file = checkpoint_path(options.resume);
    require(fs::exists(ckpt_file), ckpt_file + ": no such checkpoint");
    ckpt = load_checkpoint(ckpt_file);
    // The checkpoint's config decides the model; the caller may only extend the training budget.
    FitConfig saved;
    try {
      saved = fit_config_from_json(ckpt.config);
    } catch (const InputError& e) {
      throw InputError(ckpt_file + ": incompatible checkpoint config: " + e.what());
    }
    saved.optim.steps = config.optim.steps;
    saved.optim.seconds = config.optim.seconds;
    config = saved;
  }
  validate(config);
  const std::string out = options.out_dir;
  check_out_dir(out, options.overwrite, resuming);

  // ---- data -------------------------------------------------------------------------------------
  std::string data_path = config.data.path;
  const bool synth = !config.data.synth.empty();
  if (synth) {
    data_path = (fs::path(out) / "data").string();
    if (!fs::exists(fs::path(data_path) / "transforms_train.json")) {
      parse_caption(config.data.synth);  // an unknown word fails here, before anything is written
      fs::create_directories(out);
      SynthDatasetOptions so;
      so.n_train = config.data.synth_train_views;
      so.n_test = config.data.synth_test_views;
      so.width = so.height = config.data.synth_resolution;
      so.seed = config.seed;
      so.overwrite = true;
      write_synth_dataset(config.data.synth, data_path, so);
    }
  }
  DatasetOptions dopt;
  dopt.downscale = config.data.downscale;
  dopt.holdout_every = config.data.holdout_every;
  DatasetSplits splits = load_transforms_dataset(data_path, dopt);
  const Dataset& train = splits.train;
  require(!train.cameras.empty(), data_path + ": no training frames");
  if (config.match_grid_to_pixels && !resuming) {
    const double matched = pixel_matched_finest_resolution(train.cameras, splits.bound);
    const double base = config.field.grid.base_resolution / splits.bound;
    config.field.grid.finest_resolution_per_bound =
        std::max(base * 2, std::min(config.field.grid.finest_resolution_per_bound, std::round(matched)));
  }
  config.field.grid.bound = splits.bound;
  const bool jitter =
      config.data.pixel_sampling == "jitter" || (config.data.pixel_sampling == "auto" && !synth);
  fs::create_directories(out);
  write_file_atomically((fs::path(out) / "config.json").string(), to_json(config).dump(2) + "\n");

  // ---- training -----------------------------------------------------------------------------------
  NerfTrainer trainer(config, train, splits.bound, jitter);
  if (resuming) trainer.restore(ckpt, ckpt_file);
  auto save = [&]() {
    save_checkpoint((fs::path(out) / "checkpoint.safetensors").string(), trainer.checkpoint());
  };
  const auto& oc = config.optim;
  FitResult result;
  ProgressBar bar(oc.steps, "fit", options.progress);
  const auto start = std::chrono::steady_clock::now();
  double loss_ema = -1;
  while (trainer.steps_done() < oc.steps) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (oc.seconds > 0 && elapsed >= oc.seconds) break;
    if ((options.interrupt && options.interrupt->load()) ||
        (options.stop_at_step > 0 && trainer.steps_done() >= options.stop_at_step)) {
      result.interrupted = true;
      break;
    }
    // Exponential learning-rate decay over the run (by steps, or by time under a time budget).
    double progress = double(trainer.steps_done()) / std::max<int64_t>(1, oc.steps);
    if (oc.seconds > 0) progress = std::max(progress, elapsed / oc.seconds);
    const double l = trainer.step(std::pow(oc.lr_final_ratio, std::min(1.0, progress)));
    // Stop before a diverged state reaches the checkpoint: the last one written stays good.
    require(std::isfinite(l), "training diverged at step " + std::to_string(trainer.steps_done()) +
                                  " (the loss is not finite); the last checkpoint in " + out + " is kept");
    loss_ema = loss_ema < 0 ? l : 0.95 * loss_ema + 0.05 * l;
    bar.update(trainer.steps_done(), {{"loss", loss_ema},
                                      {"psnr", -10 * std::log10(std::max(loss_ema, 1e-10))},
                                      {"rays", double(trainer.last_rays())},
                                      {"spr", trainer.last_samples_per_ray()}});
    if (config.checkpoint_every > 0 && trainer.steps_done() % config.checkpoint_every == 0) save();
  }
  bar.finish();
  result.steps = trainer.steps_done();
  result.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.final_loss = loss_ema;
  save();
  VolumeRenderer& renderer = trainer.renderer();
  NerfFieldImpl& field = trainer.field();

  // ---- evaluation ---------------------------------------------------------------------------------
  nlohmann::json per_view = nlohmann::json::array();
  if (options.evaluate && !result.interrupted && !splits.test.cameras.empty()) {
    const Dataset& test = splits.test;
    int64_t n = static_cast<int64_t>(test.cameras.size());
    if (config.eval_views > 0) n = std::min<int64_t>(n, config.eval_views);
    auto white = at::ones({3});
    double sum_psnr = 0, sum_ssim = 0;
    if (options.save_test_renders) fs::create_directories(fs::path(out) / "test");
    ProgressBar eval_bar(n, "eval", options.progress);
    for (int64_t i = 0; i < n; ++i) {
      RenderedImage img = renderer.render_image(field, test.cameras[i], white, ShadingParams{});
      auto gt = composite_on(test.rgba_float(i), {1.0f, 1.0f, 1.0f});
      auto pred = img.rgb.clamp(0, 1);
      const double p = psnr(pred, gt), s = ssim(pred, gt);
      sum_psnr += p;
      sum_ssim += s;
      per_view.push_back({{"file", test.files[i]}, {"psnr", p}, {"ssim", s}});
      if (options.save_test_renders) {
        char name[32];
        std::snprintf(name, sizeof name, "r_%03ld.png", long(i));
        save_png((fs::path(out) / "test" / name).string(), at::cat({pred, gt}, 1));  // render | ground truth
      }
      eval_bar.update(i + 1, {{"psnr", sum_psnr / (i + 1)}});
    }
    eval_bar.finish();
    result.test_views = static_cast<int>(n);
    result.test_psnr = sum_psnr / n;
    result.test_ssim = sum_ssim / n;
  }
  result.peak_rss_mb = peak_rss_mb();

  nlohmann::json metrics = {{"steps", result.steps},
                            {"train_seconds", result.train_seconds},
                            {"steps_per_second", result.steps / std::max(1e-9, result.train_seconds)},
                            {"final_train_loss", result.final_loss},
                            {"test_views", result.test_views},
                            {"test_psnr", result.test_psnr},
                            {"test_ssim", result.test_ssim},
                            {"peak_rss_mb", result.peak_rss_mb},
                            {"occupied_fraction", renderer.grid().occupied_fraction()},
                            {"interrupted", result.interrupted},
                            {"per_view", per_view}};
  write_file_atomically((fs::path(out) / "metrics.json").string(), metrics.dump(2) + "\n");
  return result;
}

}  // namespace nd
