// render_train_step: one full `fit` step at 4096 rays (rays → occupancy-grid marching → field →
// compositing → MSE → backward → Adam) on the synth scene "a red sphere on top of a blue cube" at
// 128×128, after a warm-up that makes the occupancy grid realistic. Fused kernels vs the reference
// ops (same trained state, restored from one checkpoint), measured alternately in one process.
#include <cstdio>

#include "bench/bench_common.h"
#include "core/threads.h"
#include "pipeline/nerf_trainer.h"
#include "synth/caption.h"
#include "synth/dataset_writer.h"
#include "synth/synth_renderer.h"

using namespace nd;

int main(int argc, char** argv) {
  const bool quick = bench::has_flag(argc, argv, "--quick");
  set_threads(0);
  keep_freed_memory();
  const std::string caption = "a red sphere on top of a blue cube";
  SynthDatasetOptions so;
  so.n_train = 100;
  Dataset train;
  train.width = train.height = 128;
  train.cameras = sample_dataset_cameras(so, so.n_train, so.seed);
  const SynthObject object = parse_caption(caption).object;
  std::vector<at::Tensor> images;
  for (const auto& cam : train.cameras) {
    SynthRenderOptions ro;
    ro.light = so.light;
    SynthImage img = render_synth(object, cam, ro);
    auto rgba = at::cat({straight_rgb(img), img.alpha.unsqueeze(2)}, 2);
    images.push_back((rgba * 255).round().clamp(0, 255).to(at::kByte));
    train.files.push_back("memory");
  }
  train.images = at::stack(images);

  FitConfig cfg;
  cfg.data.synth = caption;
  cfg.optim.batch_rays = 4096;
  cfg.optim.target_samples = 0;  // exactly 4096 rays per step
  NerfTrainer fused(cfg, train, 1.0, false);
  const int warmup = quick ? 100 : 300;
  std::fprintf(stderr, "render_train_step: warm-up of %d steps...\n", warmup);
  double loss = 0;
  for (int i = 0; i < warmup; ++i) loss = fused.step();
  std::fprintf(stderr, "  warm-up loss %.5f, %.1f samples/ray\n", loss, fused.last_samples_per_ray());
  FitConfig ref_cfg = cfg;
  ref_cfg.field.fused = false;
  NerfTrainer reference(ref_cfg, train, 1.0, false);
  reference.restore(fused.checkpoint(), "memory");
  const int rounds = quick ? 3 : 10;
  auto [t_fused, t_ref] = bench::time_alternating([&] { fused.step(); }, [&] { reference.step(); }, rounds);
  std::fprintf(stderr, "  fused %.1f ms/step, reference %.1f ms/step, %.1f samples/ray\n", t_fused * 1e3,
               t_ref * 1e3, fused.last_samples_per_ray());
  bench::print_figure("render_train_step", cfg.optim.batch_rays / t_fused, "rays/s",
                      {{"rays", cfg.optim.batch_rays},
                       {"scene", caption},
                       {"resolution", 128},
                       {"warmup_steps", warmup},
                       {"samples_per_ray", fused.last_samples_per_ray()},
                       {"threads", num_threads()}},
                      cfg.optim.batch_rays / t_ref);
  return 0;
}
