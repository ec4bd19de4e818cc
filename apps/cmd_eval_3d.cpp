// `nerfdream eval-3d --prompts FILE`: generate over a list of prompts and seeds, and print IoU, color
// error, time and the chair's facing per run, then the means (pipeline/eval_3d.h).
#include <cstdio>

#include "apps/commands.h"
#include "core/interrupt.h"
#include "pipeline/eval_3d.h"

namespace nd {
namespace {

void print_row(const Eval3DRun& r) {
  char iou[16] = "-", err[16] = "-", front[24] = "";
  if (r.result.synth_prompt) {
    std::snprintf(iou, sizeof iou, "%.3f", r.result.iou);
    std::snprintf(err, sizeof err, "%.3f", r.result.color_error);
  }
  if (r.chair) std::snprintf(front, sizeof front, "%s (%+.2f)", r.faces_front ? "yes" : "NO", r.asymmetry);
  std::printf("%-40s %4llu %7s %8s %8.1f  %s\n", r.prompt.c_str(), (unsigned long long)r.seed, iou, err,
              r.result.total_seconds, front);
  std::fflush(stdout);
}

}  // namespace

void add_eval_3d_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common) {
  auto* cmd =
      app.add_subcommand("eval-3d", "Run generate over a prompt list; print IoU, color error, time, facing.");
  struct State {
    GenerateConfig cfg;
    Eval3DOptions opt;
    std::string prompts;
    bool no_camera = false, json = false, no_progress = false;
  };
  auto st = std::make_shared<State>();
  cmd->add_option("--prompts", st->prompts,
                  "Prompt file: one per line, # comments (e.g. prompts/eval-3d.txt)")
      ->required();
  cmd->add_option("-o,--out", st->opt.out_dir, "Output root: one folder per prompt and seed")
      ->capture_default_str();
  cmd->add_option("--steps", st->cfg.optim.steps, "Optimisation steps per run")->capture_default_str();
  cmd->add_option("--method", st->cfg.method, "sds | idu (iterative dataset update): compare the two")
      ->capture_default_str();
  cmd->add_option("--seeds", st->opt.seeds, "Seeds per prompt (0 .. K-1)")->capture_default_str();
  cmd->add_flag("--no-camera-cond", st->no_camera,
                "Text-only guidance (DreamFusion); default passes the camera");
  cmd->add_option("--prior", st->opt.prior_path,
                  "Tiny prior weights (default: the shipped models/tiny-prior)");
  cmd->add_option("--mesh-res", st->cfg.mesh.resolution, "Marching-cubes resolution")->capture_default_str();
  cmd->add_flag("--json", st->json, "One JSON line per run and a summary line instead of the table");
  cmd->add_flag("--overwrite", st->opt.overwrite, "Replace existing run folders");
  cmd->add_flag("--no-progress", st->no_progress, "No progress bars");
  cmd->add_option("--threads", common.threads, "CPU threads (0 = all cores)")->capture_default_str();
  commands.push_back({cmd, [st]() -> int {
                        // The whole list is checked before anything runs.
                        const std::vector<std::string> prompts = read_eval_prompts(st->prompts);
                        GenerateConfig cfg = st->cfg;
                        if (st->no_camera) cfg.guidance.camera_conditioning = false;
                        validate(cfg);
                        Eval3DOptions opt = st->opt;
                        opt.progress = !st->no_progress;
                        opt.interrupt = interrupt_on_sigint();
                        bool header = st->json;  // printed after the first run: nothing when refused
                        const Eval3DSummary s = run_eval_3d(prompts, cfg, opt, [&](const Eval3DRun& r) {
                          if (!header)
                            std::printf("%-40s %4s %7s %8s %8s  %s\n", "prompt", "seed", "IoU", "color",
                                        "seconds", "faces +Z");
                          header = true;
                          if (st->json) {
                            std::printf("%s\n", to_json(r).dump().c_str());
                            std::fflush(stdout);
                          } else {
                            print_row(r);
                          }
                        });
                        if (st->json) {
                          std::printf("%s\n", to_json(s).dump().c_str());
                        } else {
                          char front[32] = "";
                          if (s.chair_runs)
                            std::snprintf(front, sizeof front, "%d of %d", s.chair_faces_front, s.chair_runs);
                          const std::string label = "mean of " + std::to_string(s.runs) + " runs";
                          std::printf("%-40s %4s %7.3f %8.3f %8.1f  %s\n", label.c_str(), "", s.mean_iou,
                                      s.mean_color_error, s.mean_seconds, front);
                        }
                        return s.interrupted ? 130 : 0;
                      }});
}

}  // namespace nd
