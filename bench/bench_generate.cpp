// Text-to-3D benchmarks (shared/spec/bench.md):
//   generate_time  wall seconds of `generate "a red cube"` at defaults, export included (--quick: 100 steps)
//   sds_step       steps/s of TextTo3D::step at defaults, "a red cube": 150 steps after 300 (--quick: 20
//                  after 10), occupancy-grid updates included
//   generate_iou   mean IoU over prompts/eval-3d.txt at defaults, one seed (--quick: the first 2 prompts,
//                  60 steps, a 64³ mesh)
// The prior: the shipped models/tiny-prior/prior.safetensors when present, else $NERFDREAM_PRIOR; without
// either the benchmarks print nothing and say so on stderr.
// Usage: bench_generate [--quick] [--threads N] [time|step|iou]
#include <ATen/Parallel.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "bench/bench_common.h"
#include "core/threads.h"
#include "guidance/tiny_prior_guide.h"
#include "pipeline/eval_3d.h"
#include "pipeline/generate.h"
#include "pipeline/text_to_3d.h"
#include "prior/tiny_prior.h"

using namespace nd;
using namespace nd::bench;
namespace fs = std::filesystem;

namespace {

std::string prior_path() {
  const std::string shipped = NERFDREAM_SOURCE_ROOT "/models/tiny-prior/prior.safetensors";
  if (fs::exists(shipped)) return shipped;
  const char* env = std::getenv("NERFDREAM_PRIOR");
  return env && fs::exists(env) ? env : "";
}

// A scratch output folder, removed afterwards.
struct ScratchDir {
  std::string path =
      (fs::temp_directory_path() / ("nd_bench_generate_" + std::to_string(::getpid()))).string();
  ScratchDir() { fs::remove_all(path); }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void generate_time(const std::string& prior, bool quick) {
  GenerateConfig c;
  c.prompt = "a red cube";
  if (quick) {
    c.optim.steps = 100;
    c.idu.steps_per_view = 5;
  }
  ScratchDir dir;
  GenerateOptions o;
  o.out_dir = dir.path;
  o.prior_path = prior;
  const double t0 = now_seconds();
  const GenerateResult r = run_generate(c, o);
  const double seconds = now_seconds() - t0;
  print_figure("generate_time", seconds, "s",
               {{"prompt", c.prompt},
                {"steps", r.steps},
                {"train_seconds", r.train_seconds},
                {"steps_per_second", r.steps / std::max(r.train_seconds, 1e-9)},
                {"iou", r.iou},
                {"color_error", r.color_error},
                {"mesh_resolution", c.mesh.resolution},
                {"triangles", r.triangles},
                {"prior", prior},
                {"threads", at::get_num_threads()}});
}

void sds_step(const std::string& prior_file, bool quick) {
  auto prior = TinyPrior::load(prior_file);
  GenerateConfig c;
  c.prompt = "a red cube";
  c.method = "sds";
  TinyPriorGuide guide(*prior);
  TextTo3D run(c, guide);
  // Steps get slower as the shape grows out of the initial blob: time a window after a warm-up.
  const int warmup = quick ? 10 : 300, steps = quick ? 20 : 150;
  for (int i = 0; i < warmup; ++i) run.step();
  const double t0 = now_seconds();
  for (int i = 0; i < steps; ++i) run.step();
  const double seconds = now_seconds() - t0;
  print_figure("sds_step", steps / seconds, "steps/s",
               {{"prompt", c.prompt},
                {"warmup_steps", warmup},
                {"steps_timed", steps},
                {"views_per_step", c.views_per_step},
                {"render_resolution", prior->config().resolution},
                {"camera_conditioning", c.guidance.camera_conditioning},
                {"prior", prior_file},
                {"threads", at::get_num_threads()}});
}

void generate_iou(const std::string& prior, bool quick) {
  std::vector<std::string> prompts = read_eval_prompts(NERFDREAM_SOURCE_ROOT "/prompts/eval-3d.txt");
  GenerateConfig c;
  if (quick) {
    prompts.resize(2);
    c.optim.steps = 60;
    c.idu.steps_per_view = 5;
    c.mesh.resolution = 64;
  }
  ScratchDir dir;
  Eval3DOptions o;
  o.out_dir = dir.path;
  o.prior_path = prior;
  o.progress = false;
  nlohmann::json per_prompt = nlohmann::json::object();
  const Eval3DSummary s = run_eval_3d(prompts, c, o, [&](const Eval3DRun& r) {
    per_prompt[r.prompt] = r.result.iou;
    std::fprintf(stderr, "generate_iou: %s: IoU %.3f, color error %.3f, %.1f s%s\n", r.prompt.c_str(),
                 r.result.iou, r.result.color_error, r.result.total_seconds,
                 r.chair ? (r.faces_front ? ", faces +Z" : ", does NOT face +Z") : "");
  });
  nlohmann::json config = {{"prompts", prompts.size()},
                           {"prompt_file", "prompts/eval-3d.txt"},
                           {"seeds", 1},
                           {"steps", c.optim.steps},
                           {"mesh_resolution", c.mesh.resolution},
                           {"mean_color_error", s.mean_color_error},
                           {"mean_seconds", s.mean_seconds},
                           {"iou_per_prompt", per_prompt},
                           {"prior", prior},
                           {"threads", at::get_num_threads()}};
  if (s.chair_runs) config["chair_faces_front"] = s.chair_faces_front;
  print_figure("generate_iou", s.mean_iou, "IoU", config);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--threads") threads = std::atoi(argv[i + 1]);
  set_threads(threads);
  keep_freed_memory();
  const bool quick = has_flag(argc, argv, "--quick");
  const bool time = has_flag(argc, argv, "time"), step = has_flag(argc, argv, "step"),
             iou = has_flag(argc, argv, "iou"), all = !time && !step && !iou;
  const std::string prior = prior_path();
  if (prior.empty()) {
    std::fprintf(stderr,
                 "bench_generate: no prior (models/tiny-prior/prior.safetensors or $NERFDREAM_PRIOR): "
                 "skipped\n");
    return 0;
  }
  if (all || time) generate_time(prior, quick);
  if (all || step) sds_step(prior, quick);
  if (all || iou) generate_iou(prior, quick);
  return 0;
}
