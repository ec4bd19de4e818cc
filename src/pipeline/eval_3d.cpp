#include "pipeline/eval_3d.h"

#include <cctype>
#include <filesystem>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "pipeline/generate.h"
#include "pipeline/text_to_3d.h"
#include "pipeline/training_state.h"
#include "pipeline/view_consistency.h"
#include "prior/word_tokenizer.h"
#include "synth/caption.h"

namespace nd {
namespace fs = std::filesystem;

namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

bool is_chair(const std::string& prompt) {
  try {
    return parse_caption(prompt).object.caption == "a chair";
  } catch (const InputError&) {
    return false;
  }
}

// The trained field of a finished run, rebuilt from its checkpoint.
NerfField field_of_run(const std::string& dir) {
  const std::string path = (fs::path(dir) / "checkpoint.safetensors").string();
  const Checkpoint ckpt = load_checkpoint(path, kGenerateCheckpoint);
  NerfField field(generate_config_from_json(ckpt.config).field);
  restore_tensors(path, ckpt.tensors, "field.", named_tensors(*field));
  return field;
}

}  // namespace

std::vector<std::string> read_eval_prompts(const std::string& path) {
  std::istringstream in(read_file(path));
  const WordTokenizer tokenizer;
  std::vector<std::string> prompts;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    try {
      tokenizer.encode(line);
      tokenizer.encode(view_dependent_prompt(line, 0, 0));  // what generate will ask the prior
    } catch (const InputError& e) {
      throw InputError(path + ":" + std::to_string(number) + ": " + e.what());
    }
    prompts.push_back(line);
  }
  require(!prompts.empty(), path + ": no prompts (one per line; blank lines and # comments are skipped)");
  return prompts;
}

std::string eval_run_dir(const std::string& out_dir, const std::string& prompt, uint64_t seed) {
  return (fs::path(out_dir) / prompt_slug(prompt) / ("seed-" + std::to_string(seed))).string();
}

Eval3DSummary run_eval_3d(const std::vector<std::string>& prompts, const GenerateConfig& base,
                          const Eval3DOptions& o, const std::function<void(const Eval3DRun&)>& on_run) {
  require(!prompts.empty(), "eval-3d: no prompts");
  require(o.seeds >= 1, "eval-3d: --seeds must be at least 1");
  // Refuse before the first run, not in the middle of the list.
  for (const auto& p : prompts)
    for (int s = 0; s < o.seeds; ++s) {
      const std::string dir = eval_run_dir(o.out_dir, p, s);
      require(o.overwrite || !fs::exists(dir) || fs::is_empty(dir),
              dir + " exists and is not empty: pass --overwrite to replace it, or another --out");
    }
  std::vector<Eval3DRun> runs;
  for (const auto& prompt : prompts)
    for (int s = 0; s < o.seeds; ++s) {
      if (o.interrupt && o.interrupt->load()) break;
      Eval3DRun run;
      run.prompt = prompt;
      run.seed = static_cast<uint64_t>(s);
      run.dir = eval_run_dir(o.out_dir, prompt, run.seed);
      GenerateConfig config = base;
      config.prompt = prompt;
      config.seed = run.seed;
      GenerateOptions g;
      g.out_dir = run.dir;
      g.overwrite = true;  // checked above
      g.prior_path = o.prior_path;
      g.progress = o.progress;
      g.view_resolution = o.view_resolution;
      g.interrupt = o.interrupt;
      run.result = run_generate(config, g);
      if (run.result.interrupted) break;  // a half-trained run would skew the means
      if ((run.chair = is_chair(prompt))) {
        NerfField field = field_of_run(run.dir);
        run.faces_front = chair_faces_front(*field, &run.asymmetry);
      }
      runs.push_back(run);
      if (on_run) on_run(run);
    }
  Eval3DSummary summary = summarize(runs);
  summary.interrupted = o.interrupt && o.interrupt->load();
  return summary;
}

Eval3DSummary summarize(const std::vector<Eval3DRun>& runs) {
  Eval3DSummary s;
  for (const auto& r : runs) {
    ++s.runs;
    s.mean_seconds += r.result.total_seconds;
    if (r.result.synth_prompt) {
      ++s.synth_runs;
      s.mean_iou += r.result.iou;
      s.mean_color_error += r.result.color_error;
    }
    if (r.chair) {
      ++s.chair_runs;
      s.chair_faces_front += r.faces_front;
    }
  }
  if (s.runs) s.mean_seconds /= s.runs;
  if (s.synth_runs) s.mean_iou /= s.synth_runs, s.mean_color_error /= s.synth_runs;
  return s;
}

nlohmann::json to_json(const Eval3DRun& r) {
  nlohmann::json j = {{"prompt", r.prompt},
                      {"seed", r.seed},
                      {"dir", r.dir},
                      {"steps", r.result.steps},
                      {"seconds", r.result.total_seconds},
                      {"train_seconds", r.result.train_seconds},
                      {"triangles", r.result.triangles}};
  if (r.result.synth_prompt) {
    j["iou"] = r.result.iou;
    j["iou_density"] = r.result.iou_density;
    j["color_error"] = r.result.color_error;
  }
  if (r.chair) {
    j["faces_front"] = r.faces_front;
    j["front_back_asymmetry"] = r.asymmetry;
  }
  return j;
}

nlohmann::json to_json(const Eval3DSummary& s) {
  nlohmann::json j = {{"summary", true},
                      {"runs", s.runs},
                      {"synth_runs", s.synth_runs},
                      {"mean_iou", s.mean_iou},
                      {"mean_color_error", s.mean_color_error},
                      {"mean_seconds", s.mean_seconds},
                      {"interrupted", s.interrupted}};
  if (s.chair_runs) {
    j["chair_runs"] = s.chair_runs;
    j["chair_faces_front"] = s.chair_faces_front;
  }
  return j;
}

}  // namespace nd
