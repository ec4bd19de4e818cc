// fit_psnr: test PSNR reached by `nerfdream fit --synth "a red sphere on top of a blue cube"` at 128×128
// (100 train, 20 test views) after 60 s of training wall time (--quick: 15 s). Also reports peak memory.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "bench/bench_common.h"
#include "core/threads.h"
#include "pipeline/fit.h"

using namespace nd;

int main(int argc, char** argv) {
  const bool quick = bench::has_flag(argc, argv, "--quick");
  set_threads(0);
  keep_freed_memory();
  FitConfig cfg;
  cfg.data.synth = "a red sphere on top of a blue cube";
  cfg.data.synth_resolution = 128;
  cfg.data.synth_train_views = 100;
  cfg.data.synth_test_views = 20;
  cfg.optim.seconds = quick ? 15 : 60;
  cfg.optim.steps = 1000000;
  FitOptions opt;
  opt.out_dir =
      (std::filesystem::temp_directory_path() / ("nerfdream-bench-fit-" + std::to_string(::getpid())))
          .string();
  opt.overwrite = true;
  opt.save_test_renders = false;
  FitResult r = run_fit(cfg, opt);
  std::filesystem::remove_all(opt.out_dir);
  bench::print_figure("fit_psnr", r.test_psnr, "dB",
                      {{"scene", cfg.data.synth},
                       {"resolution", 128},
                       {"train_views", 100},
                       {"test_views", r.test_views},
                       {"seconds", cfg.optim.seconds},
                       {"steps", r.steps},
                       {"test_ssim", r.test_ssim},
                       {"peak_rss_mb", r.peak_rss_mb},
                       {"threads", num_threads()}});
  return 0;
}
