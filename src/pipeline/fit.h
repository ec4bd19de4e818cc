// `nerfdream fit`: train a NeRF on posed images (a transforms.json dataset, or a synth caption that it
// renders itself), evaluate it on the held-out views, and write checkpoint, metrics and renders.
//
//   dataset ─▶ random pixels of random views ─▶ rays ─▶ VolumeRenderer(field) ─▶ MSE vs pixels ─▶ Adam
//   every N steps: occupancy-grid update;  at the end: test views ─▶ PSNR / SSIM ─▶ metrics.json
#pragma once
#include <atomic>
#include <string>

#include "camera/camera.h"
#include "pipeline/fit_config.h"

namespace nd {

struct FitOptions {
  std::string out_dir;
  bool overwrite = false;  // allow writing into an existing non-empty out_dir
  std::string resume;      // checkpoint file or run directory to continue from
  bool progress = true;    // progress bar on stderr
  bool evaluate = true;    // render and score the test views at the end
  bool save_test_renders = true;
  const std::atomic<bool>* interrupt = nullptr;  // set (e.g. by SIGINT): stop, checkpoint, exit cleanly
  int64_t stop_at_step = 0;                      // > 0: stop there as if interrupted (tests of --resume)
};

struct FitResult {
  int64_t steps = 0;
  double train_seconds = 0;
  double final_loss = 0;
  double test_psnr = 0, test_ssim = 0;
  int test_views = 0;
  bool interrupted = false;
  double peak_rss_mb = 0;
};

// Output files in out_dir: config.json, checkpoint.safetensors, metrics.json, test/<name>.png (renders),
// and for --synth runs data/ (the rendered dataset).
FitResult run_fit(FitConfig config, const FitOptions& options);

// The hash grid's finest resolution (per unit of bound) that puts two grid cells in the median footprint
// of one training pixel at the scene centre. fit uses min(this, the configured resolution).
double pixel_matched_finest_resolution(const std::vector<Camera>& cameras, double bound);

// Peak resident memory of this process so far, in MB (from getrusage).
double peak_rss_mb();

}  // namespace nd
