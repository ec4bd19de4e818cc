// `nerfdream generate "a red mushroom"`: the whole text-to-3D job — optimise a NeRF with the prior
// (TextTo3D), then export it. Outputs under out_dir:
//   config.json (resolved), checkpoint.safetensors (--resume continues it), mesh.glb, mesh.obj + mesh.mtl,
//   mesh.ply, views.png (8 azimuths), metrics.json (wall time, steps/s, final losses, and for prompts of the
//   synth grammar the IoU against the ground-truth occupancy and the color error).
// Every file is written atomically; Ctrl-C (interrupt) checkpoints and writes the outputs so far.
#pragma once
#include <atomic>
#include <functional>
#include <string>

#include "diffusion/sd_load_options.h"
#include "pipeline/generate_config.h"

namespace nd {

struct GenerateOptions {
  std::string out_dir;
  bool overwrite = false;  // replace an existing output directory (else refuse)
  bool resume = false;     // continue the run in out_dir from its checkpoint (its config wins)
  std::string prior_path;  // empty: the shipped prior
  SdLoadOptions sd_load;   // config.model is a single-file SD checkpoint: where its tokenizer/configs are
  std::string device =
      "cpu";  // Stable Diffusion's device: cpu | cuda (fp16 there; the NeRF stays on the CPU)
  int64_t checkpoint_every = 500;
  int64_t stop_at_step = 0;   // > 0: stop there as if interrupted (tests of --resume)
  int view_resolution = 128;  // views.png tiles
  bool progress = true;
  const std::atomic<bool>* interrupt = nullptr;
};

struct GenerateResult {
  int64_t steps = 0;
  double train_seconds = 0, total_seconds = 0;
  bool interrupted = false;
  bool synth_prompt = false;        // the prompt is in the synth grammar: iou and color_error are set
  double iou = 0, color_error = 0;  // iou: of the solid (pipeline/shape_metrics.h)
  double iou_density = 0;
  int64_t vertices = 0, triangles = 0;
};

GenerateResult run_generate(const GenerateConfig& config, const GenerateOptions& options);

// A folder name for a prompt: "a red sphere on top of a blue cube" → "a-red-sphere-on-top-of-a-blue-cube".
std::string prompt_slug(const std::string& prompt);

}  // namespace nd
