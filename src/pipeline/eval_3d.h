// `nerfdream eval-3d`: `generate` over a fixed list of prompts and seeds, scored against the synth world's
// ground truth — IoU and color error (pipeline/shape_metrics.h), wall time, and for "a chair" whether it
// faces +Z (pipeline/view_consistency.h: no Janus) — with per-run results and their means.
//
// Prompt files: one prompt per line; blank lines and lines starting with '#' are skipped. The whole file is
// checked before anything runs: an empty list, or a word the tiny prior does not know, is an InputError
// naming the file and line.
#pragma once
#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/generate.h"

namespace nd {

std::vector<std::string> read_eval_prompts(const std::string& path);

struct Eval3DOptions {
  std::string out_dir = "outputs/eval-3d";  // one folder per run: <out>/<prompt-slug>/seed-<k>
  int seeds = 1;                            // each prompt with seeds 0 .. seeds − 1
  std::string prior_path;                   // empty: the shipped prior
  bool overwrite = false;                   // replace existing run folders (else refuse before running)
  bool progress = true;
  int view_resolution = 128;  // views.png tiles and turntable frames
  const std::atomic<bool>* interrupt = nullptr;
};

struct Eval3DRun {
  std::string prompt, dir;
  uint64_t seed = 0;
  GenerateResult result;
  bool chair = false;    // the prompt is "a chair": asymmetry and faces_front are set
  double asymmetry = 0;  // front_back_mass(kChairBackrestRegion).asymmetry()
  bool faces_front = false;
};

struct Eval3DSummary {
  int runs = 0, synth_runs = 0;  // all runs, and those with IoU / color error (synth-grammar prompts)
  double mean_iou = 0, mean_color_error = 0, mean_seconds = 0;
  int chair_runs = 0, chair_faces_front = 0;
  bool interrupted = false;
};

// <out>/<slug of the prompt>/seed-<seed>
std::string eval_run_dir(const std::string& out_dir, const std::string& prompt, uint64_t seed);

// Runs generate for every prompt × seed with `base` (its prompt and seed replaced), calling on_run after
// each. Every run folder is checked before the first run (InputError unless overwrite). Stops after the
// current run when options.interrupt is set.
Eval3DSummary run_eval_3d(const std::vector<std::string>& prompts, const GenerateConfig& base,
                          const Eval3DOptions& options,
                          const std::function<void(const Eval3DRun&)>& on_run = {});

Eval3DSummary summarize(const std::vector<Eval3DRun>& runs);

// One JSON object per run and for the summary (the --json lines).
nlohmann::json to_json(const Eval3DRun& run);
nlohmann::json to_json(const Eval3DSummary& summary);

}  // namespace nd
