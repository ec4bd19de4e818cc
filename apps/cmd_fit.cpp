// `nerfdream fit`: train a NeRF on a transforms.json dataset or on a synth caption it renders itself.
#include <cstdio>
#include <filesystem>

#include "apps/commands.h"
#include "apps/config_options.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "pipeline/fit.h"

namespace nd {

namespace {

// The config key each flag sets (for --config files, which flags then override).
const FlagKeys kFlagKeys = {
    {"data", "/data/path"},
    {"--synth", "/data/synth"},
    {"--steps", "/optim/steps"},
    {"--seconds", "/optim/seconds"},
    {"--batch-rays", "/optim/batch_rays"},
    {"--lr-grid", "/optim/lr_grid"},
    {"--lr-mlp", "/optim/lr_mlp"},
    {"--downscale", "/data/downscale"},
    {"--holdout-every", "/data/holdout_every"},
    {"--background", "/data/background"},
    {"--pixel-sampling", "/data/pixel_sampling"},
    {"--synth-views", "/data/synth_train_views"},
    {"--synth-test-views", "/data/synth_test_views"},
    {"--synth-res", "/data/synth_resolution"},
    {"--levels", "/field/grid/levels"},
    {"--log2-table-size", "/field/grid/log2_table_size"},
    {"--finest-resolution", "/field/grid/finest_resolution_per_bound"},
    {"--max-steps-per-ray", "/render/max_steps"},
    {"--eval-views", "/eval_views"},
    {"--checkpoint-every", "/checkpoint_every"},
    {"--seed", "/seed"},
};

}  // namespace

void add_fit_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common) {
  auto* cmd =
      app.add_subcommand("fit", "Train a NeRF on posed images (transforms.json) or on a synth caption.");
  struct State {
    FitConfig cfg;
    FitOptions opt;
    std::string config_file, view_dependent = "auto";
    bool no_progress = false, no_grid = false, no_match = false;
  };
  auto st = std::make_shared<State>();
  FitConfig& c = st->cfg;
  cmd->add_option("data", c.data.path,
                  "Dataset: a directory with transforms.json (or _train/_test), or the json file");
  cmd->add_option("--synth", c.data.synth,
                  "Render this synth-world caption and fit it, e.g. \"a red sphere on top of a blue cube\"");
  cmd->add_option("-o,--out", st->opt.out_dir, "Output directory")->capture_default_str();
  st->opt.out_dir = "out/fit";
  cmd->add_flag("--overwrite", st->opt.overwrite, "Write into an existing non-empty output directory");
  cmd->add_option("--resume", st->opt.resume,
                  "Continue from a checkpoint (file or run directory); its config is used");
  cmd->add_option("--config", st->config_file,
                  "JSON config (sections data, field, render, optim); flags override it");
  cmd->add_option("--steps", c.optim.steps, "Training steps")->capture_default_str();
  cmd->add_option("--seconds", c.optim.seconds, "Wall-clock training budget in seconds (0 = none)")
      ->capture_default_str();
  cmd->add_option("--batch-rays", c.optim.batch_rays, "Rays per step")->capture_default_str();
  cmd->add_option("--lr-grid", c.optim.lr_grid, "Adam learning rate of the hash grid")->capture_default_str();
  cmd->add_option("--lr-mlp", c.optim.lr_mlp, "Adam learning rate of the MLPs")->capture_default_str();
  cmd->add_option("--downscale", c.data.downscale, "Load images at 1/N resolution")->capture_default_str();
  cmd->add_option("--holdout-every", c.data.holdout_every,
                  "Single transforms.json: every Nth frame is a test frame")
      ->capture_default_str();
  cmd->add_option("--background", c.data.background,
                  "Training background behind RGBA images: random|white|black")
      ->capture_default_str();
  cmd->add_option("--pixel-sampling", c.data.pixel_sampling,
                  "Ray position in a pixel: center|jitter|auto (center for synth)")
      ->capture_default_str();
  cmd->add_option("--view-dependent", st->view_dependent,
                  "View-dependent color: on|off|auto (on for photos, off for synth)")
      ->capture_default_str();
  cmd->add_option("--synth-views", c.data.synth_train_views, "Synth: training views")->capture_default_str();
  cmd->add_option("--synth-test-views", c.data.synth_test_views, "Synth: test views")->capture_default_str();
  cmd->add_option("--synth-res", c.data.synth_resolution, "Synth: image width and height")
      ->capture_default_str();
  cmd->add_option("--levels", c.field.grid.levels, "Hash grid levels L")->capture_default_str();
  cmd->add_option("--log2-table-size", c.field.grid.log2_table_size, "Hash grid table size 2^T")
      ->capture_default_str();
  cmd->add_option(
         "--finest-resolution", c.field.grid.finest_resolution_per_bound,
         "Hash grid finest resolution per unit of bound (an upper limit unless --no-match-resolution)")
      ->capture_default_str();
  cmd->add_flag(
      "--no-match-resolution", st->no_match,
      "Keep --finest-resolution as given instead of lowering it to two cells per training-pixel footprint");
  cmd->add_option("--max-steps-per-ray", c.render.march.max_steps,
                  "Ray-marching steps across the box diagonal")
      ->capture_default_str();
  cmd->add_flag("--no-occupancy-grid", st->no_grid, "Sample the whole box (no empty-space skipping)");
  cmd->add_option("--eval-views", c.eval_views, "Test views to evaluate (0 = all)")->capture_default_str();
  cmd->add_option("--checkpoint-every", c.checkpoint_every, "Steps between checkpoints (0 = at the end)")
      ->capture_default_str();
  cmd->add_option("--seed", c.seed, "Random seed")->capture_default_str();
  cmd->add_option("--threads", common.threads, "CPU threads (0 = all cores)")->capture_default_str();
  cmd->add_flag("--no-progress", st->no_progress, "No progress bar");

  commands.push_back(
      {cmd, [cmd, st]() -> int {
         FitConfig cfg = st->cfg;
         if (!st->config_file.empty())
           cfg = fit_config_from_json(config_file_with_flags(st->config_file, *cmd, kFlagKeys, to_json(cfg)));
         if (st->no_grid) cfg.render.use_occupancy_grid = false;
         if (st->no_match) cfg.match_grid_to_pixels = false;
         const std::string& vd = st->view_dependent;
         require(vd == "auto" || vd == "on" || vd == "off",
                 "--view-dependent: expected on, off or auto, got '" + vd + "'");
         if (vd == "auto") {
           if (st->config_file.empty()) cfg.field.view_dependent = cfg.data.synth.empty();
         } else {
           cfg.field.view_dependent = vd == "on";
         }
         if (st->opt.resume.empty()) {
           // Re-validate the field section too (flags may have changed it).
           cfg.field = field_config_from_json(to_json(cfg.field));
           validate(cfg);
         }
         FitOptions opt = st->opt;
         // --resume DIR without --out continues in DIR.
         if (!opt.resume.empty() && cmd->count("--out") == 0)
           opt.out_dir = std::filesystem::is_directory(opt.resume)
                             ? opt.resume
                             : std::filesystem::path(opt.resume).parent_path().string();
         opt.progress = !st->no_progress;
         opt.interrupt = interrupt_on_sigint();
         FitResult r = run_fit(cfg, opt);
         std::fprintf(stderr, "%s: %ld steps in %.1f s", r.interrupted ? "interrupted" : "done",
                      long(r.steps), r.train_seconds);
         if (r.test_views > 0)
           std::fprintf(stderr, "; test PSNR %.2f dB, SSIM %.4f over %d views", r.test_psnr, r.test_ssim,
                        r.test_views);
         std::fprintf(stderr,
                      "; peak memory %.0f MB\nwrote %s/{config.json,checkpoint.safetensors,metrics.json}\n",
                      r.peak_rss_mb, opt.out_dir.c_str());
         return r.interrupted ? 130 : 0;
       }});
}

}  // namespace nd
