// `nerfdream eval-prior`: how well the tiny prior draws what it is asked — the analogue of DreamFusion's
// CLIP R-precision, scored by the synth classifier (prior/synth_classifier.h).
//
// 1. Samples: a FIXED set — the 40 single captions, the 5 named objects and 16 fixed stacks, each at the four
//    eval views (front e=15 a=0, side e=15 a=90, back e=15 a=180, overhead e=70 a=30; radius 3, fov 45) with
//    the view suffix in the prompt ("a red cube, front view") and the camera given to the prior (unless
//    camera = false) — are drawn with sample_prior in batches and classified. Accuracies:
//      shape: the object head right and, for stacks, both shape heads right (all samples);
//      color: the color head right and, for stacks, the bottom color too (singles and stacks);
//      view:  the view head names a view that cannot be told from the asked one (view_match_mask; all).
// 2. Zero-shot: real renders of the singles (caption i at eval view i mod 4) classified by the prior's own
//    denoising loss: for each candidate caption (the 5 shapes with the true color; the 8 colors with the true
//    shape) the mean over fixed timesteps of ‖ε̂(x_t, t, caption) − ε‖², with the same noises for every
//    candidate; the lowest loss wins.
// 3. Reference: the classifier on real renders of the same items (lit from the camera, ambient 0.3) — what a
//    perfect prior would score, since the classifier cannot see everything (e.g. a stack's bottom part from
//    overhead).
// quick: 8 samples spread over the set and 8 renders at 4 timesteps (for smoke tests; < 30 s on 2 cores).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "prior/synth_classifier.h"
#include "prior/tiny_prior.h"
#include "prior/view_condition.h"

namespace nd {

struct PriorEvalItem {
  std::string caption;  // canonical, no suffix
  int view = 0;         // index into view_words()
  View camera;
  std::string prompt() const;  // "<caption>, <view word> view"
};

// The eval views, in view_words() order.
const std::vector<View>& prior_eval_views();
// The 16 fixed stacks: every shape and color on top and below, never one shape or color twice in a stack.
std::vector<std::string> prior_eval_stacks();
// The fixed set, caption-major (singles in all_captions() order, named objects, stacks), views inner.
std::vector<PriorEvalItem> prior_eval_set(bool quick);

struct PriorEvalOptions {
  int steps = 50;               // DDIM steps
  double eta = 0.0;             // DDIM η
  double guidance_scale = 1.0;  // see PriorSampleOptions
  bool camera = true;
  bool quick = false;
  int batch = 32;     // prompts per sample_prior call
  uint64_t seed = 0;  // batch k uses seed + k
  bool zero_shot = true;
  bool reference = true;  // also classify real renders of the same set: the classifier's ceiling on it
  bool progress = true;
};

struct PriorEvalSample {
  PriorEvalItem item;
  std::string predicted;  // the classifier's reading, e.g. "a red cube, side view"
  bool shape_ok = false, color_ok = false, view_ok = false, view_exact = false;
  bool has_color = false;  // singles and stacks
};

struct PriorEvalResult {
  std::vector<PriorEvalSample> samples;
  std::vector<PriorEvalSample> reference;  // the classifier on real renders of the same items
  double reference_shape_acc = 0, reference_color_acc = 0, reference_view_acc = 0;
  double shape_acc = 0, color_acc = 0, view_acc = 0, view_exact_acc = 0;
  double seconds_per_image = 0;  // sampling wall time / images
  int zero_shot_renders = 0, zero_shot_timesteps = 0;
  double zero_shot_shape_acc = 0, zero_shot_color_acc = 0;
  double zero_shot_seconds = 0;
  int steps = 0;
  double eta = 0;
  double guidance_scale = 0;
  bool camera = true;
};

PriorEvalResult evaluate_prior(TinyPrior& prior, SynthClassifier& classifier,
                               const PriorEvalOptions& options);

// The human-readable report: accuracies per caption kind, the zero-shot scores, seconds per image.
std::string format_prior_eval(const PriorEvalResult& result);
// One line per sample: prompt, the classifier's reading, and which of shape/color/view were right; then the
// reference renders the classifier misread.
std::string format_prior_eval_samples(const PriorEvalResult& result);
// {"shape_acc":…, "color_acc":…, "view_acc":…, "seconds_per_image":…, then further keys}: one line.
std::string prior_eval_json_line(const PriorEvalResult& result);

}  // namespace nd
