// A small CNN that names what a synth image shows: the object class, the shapes and colors of its parts,
// and the view word. It scores samples of the tiny prior (`nerfdream eval-prior`, the analogue of
// DreamFusion's CLIP R-precision) and is trained on exact synth renders (`nerfdream train-classifier`).
//
// Input: [B,3,32,32] float32 in [0,1], white background (other sizes are area-resized to 32×32).
// Heads (logits):
//   object        11: cube sphere cylinder cone torus (singles), tree mushroom table chair dumbbell, stack
//   top_shape      5: the stack's top shape      (stacks only)
//   bottom_shape   5: the stack's bottom shape   (stacks only)
//   color          8: a single's color, a stack's top color (not named objects: their colors are fixed)
//   bottom_color   8: the stack's bottom color   (stacks only)
//   view           4: front side back overhead (nd::view_word of the camera)
// Labels that do not apply are -1 and masked out of the loss.
//
// Views and symmetry: every synth object except the chair and the dumbbell looks the same from any azimuth
// band (rotationally symmetric shapes; the cube and the table repeat every 90°, the width of the front and
// back bands), and the light follows the camera, so front/side/back cannot be told apart from the image.
// A view is therefore "right" when it is one the true view cannot be told from (view_match_mask): for the
// chair the exact word; for the dumbbell {front, back} vs side; for a single sphere any word (a ball lit from
// the camera looks the same from everywhere); for the rest overhead vs not. The view head
// is trained on that set (loss −log Σ_{v ∈ set} p(v)), so its argmax lies in the set.
//
// Weights file: safetensors of the modules' parameters with io/checkpoint.h metadata (format
// "nerfdream.synth-classifier", the SynthClassifierConfig as JSON under "config").
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "prior/prior_dataset.h"

namespace nd {

constexpr CheckpointFormat kSynthClassifierFormat{"nerfdream.synth-classifier", 1, "synth classifier"};

constexpr int kObjectClasses = 11, kShapeClasses = 5, kColorClasses = 8, kViewClasses = 4;
constexpr int kStackClass = 10;      // object class of every stack
constexpr int kFirstNamedClass = 5;  // tree; then mushroom table chair dumbbell
constexpr int kClassifierResolution = 32;

// "cube" … "torus", "tree" … "dumbbell", "stack".
const std::vector<std::string>& object_class_names();

struct ClassifierLabels {
  int object = -1;
  int top_shape = -1, bottom_shape = -1;  // stacks
  int color = -1;                         // singles and stacks (top)
  int bottom_color = -1;                  // stacks
};

// Labels of a caption (view suffix ignored). Shapes and colors index caption_shape_table() / color_table().
// InputError for a caption outside the grammar.
ClassifierLabels caption_labels(const std::string& caption);
// Index into view_words() of the camera's view word.
int view_label(double elevation_deg, double azimuth_deg);
// Bit v set ⇔ view v cannot be told from `view` for an object of class `object` (see the top comment).
int view_match_mask(int object, int view);

// Label tensors of a batch: [B] int64 (−1 where a head does not apply) and view_mask [B,4] bool.
struct ClassifierTargets {
  at::Tensor object, top_shape, bottom_shape, color, bottom_color, view_mask;
};
// captions: [N] int indices into all_captions(); views: [N,4] (elevation, azimuth, radius, fov).
ClassifierTargets classifier_targets(const at::Tensor& captions, const at::Tensor& views);

struct SynthClassifierConfig {
  std::vector<int> channels{16, 32, 64, 96};  // per resolution 32, 16, 8, 4
  int reduce = 32;                            // 1×1 conv before the flattened 4×4 features
  int hidden = 128;
  int groups = 8;

  nlohmann::json to_json() const;
  static SynthClassifierConfig from_json(const nlohmann::json& j);  // strict; InputError naming the key
};

struct ClassifierOutput {
  at::Tensor object, top_shape, bottom_shape, color, bottom_color, view;  // logits [B, classes]
};

// stem conv (32²) → per further level: stride-2 conv, conv (16², 8², 4²) → 1×1 reduce → flatten →
// linear → SiLU → one linear per head. Every conv is followed by GroupNorm and SiLU.
class SynthClassifierImpl : public torch::nn::Module {
 public:
  explicit SynthClassifierImpl(const SynthClassifierConfig& config);
  // x: [B,3,32,32] in [0,1].
  ClassifierOutput forward(const at::Tensor& x);
  const SynthClassifierConfig& config() const { return config_; }

 private:
  SynthClassifierConfig config_;
  torch::nn::ModuleList convs_{nullptr}, norms_{nullptr};
  std::vector<int> strides_;
  torch::nn::Conv2d reduce_{nullptr};
  torch::nn::Linear fc_{nullptr};
  torch::nn::Linear object_{nullptr}, top_shape_{nullptr}, bottom_shape_{nullptr}, color_{nullptr},
      bottom_color_{nullptr}, view_{nullptr};
};
TORCH_MODULE(SynthClassifier);

// Mean over the batch of the summed per-head cross-entropies (each head averaged over the items it
// applies to; the view head on its set of indistinguishable views).
at::Tensor classifier_loss(const ClassifierOutput& out, const ClassifierTargets& targets);

// Argmax of each head: [B] int64 each.
struct ClassifierPrediction {
  at::Tensor object, top_shape, bottom_shape, color, bottom_color, view;
};
// Eval mode, no grad; images [B,3,R,R] in [0,1], resized to 32×32 when R differs.
ClassifierPrediction classify(SynthClassifier& model, const at::Tensor& images);

// Weights with the config in the metadata; atomic.
void save_classifier(const std::string& path, SynthClassifier& model,
                     const std::map<std::string, std::string>& extra_metadata = {});
// InputError naming the file for anything wrong (not a classifier, bad config, missing or misshapen tensor).
SynthClassifier load_classifier(const std::string& path);

// $NERFDREAM_CLASSIFIER when set, else models/synth-classifier/classifier.safetensors next to the source
// tree, else beside the executable; InputError saying where it looked.
std::string default_classifier_path();

// ---- Training ----

// Training-time augmentation that makes the classifier robust to diffusion samples (no hue changes: color
// is a label): left-right mirror (the view word is unchanged), shifts of up to 2 px on white, brightness
// gain and offset, a blur mixed in, gaussian pixel noise. images: [B,3,R,R] in [0,1].
at::Tensor augment_classifier_batch(const at::Tensor& images, at::Generator& gen);

struct ClassifierTrainOptions {
  SynthClassifierConfig model;
  PriorDatasetOptions data;     // training renders; data.seed must differ from the prior's (0)
  int64_t heldout_size = 4000;  // held-out renders, seed data.seed + 1
  int64_t steps = 5000;
  int batch = 128;
  double lr = 2e-3;  // Adam, cosine decay to 2% after a 100-step warm-up
  double weight_decay = 1e-4;
  uint64_t seed = 0;  // initialisation, batches and augmentation
  bool augment = true;
  bool progress = true;
  const std::atomic<bool>* interrupt = nullptr;
};

// Accuracies on a dataset, each over the items its head applies to: one per head; "shape" (object right and,
// for stacks, both shapes); "view" symmetry-aware, "view_exact" the exact word, "view_clear" symmetry-aware
// on views at least 5° from a band edge; "bottom_shape_below_60", "bottom_color_below_60" on stacks seen
// from below the overhead band (from above, the top part hides most of the bottom one).
std::map<std::string, double> classifier_accuracy(SynthClassifier& model, const PriorDataset& data);

struct ClassifierTrainResult {
  SynthClassifier model{nullptr};
  std::map<std::string, double> heldout;  // classifier_accuracy on the held-out renders
  double train_seconds = 0, data_seconds = 0;
  double final_loss = 0;
  int64_t steps_done = 0;
  bool interrupted = false;
};

ClassifierTrainResult train_synth_classifier(const ClassifierTrainOptions& options);

}  // namespace nd
