// The tiny prior's training data: exact synth renders of every caption of the grammar from random cameras,
// lights and ambient ratios (shared/spec/synth-world.md), on white.
//
// Each item is independent and seeded by (seed, index), so a dataset is the same for any thread count and
// any prefix of it is a smaller dataset of the same kind. Items: the caption kind is drawn first (by
// default singles 40 %, stacks 40 %, named objects 20 %, so that 5 named objects are not drowned by 1600
// stacks; a fine-tune may weigh the named objects — the only ones whose look depends on the azimuth — more),
// then the caption uniformly within it; the view from ViewRange (sample_view); the light from around the
// camera: direction_to_light = normalise(camera direction + 0.8 · random unit vector), ambient uniform in
// [0.15, 0.45]; the caption carries the view suffix ("…, front view") with probability 0.8.
// Renders are 2×2 supersampled (box filter), then stored as 8-bit RGB.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "prior/view_condition.h"

namespace nd {

struct PriorDatasetOptions {
  int64_t size = 100000;
  int resolution = 32;
  int supersample = 2;
  uint64_t seed = 0;
  double view_suffix_probability = 0.8;
  // Relative weights of the caption kinds: singles, stacks, named objects (normalised when drawn).
  std::array<double, 3> kind_mix{0.4, 0.4, 0.2};
  ViewRange views;
};
// "a,b,c" → kind_mix (three non-negative numbers, not all zero); InputError naming `what` otherwise.
std::array<double, 3> parse_kind_mix(const std::string& text, const std::string& what);
void validate_kind_mix(const std::array<double, 3>& mix, const std::string& what);

struct PriorDataset {
  at::Tensor images;    // [N, R, R, 3] uint8, composited on white
  at::Tensor tokens;    // [N, kMaxTokens] int64, WordTokenizer ids of the caption (with suffix when drawn)
  at::Tensor views;     // [N, 4] float32: elevation, azimuth, radius, fov (degrees, world units)
  at::Tensor captions;  // [N] int32: index into all_captions() (no suffix)
  at::Tensor lights;    // [N, 4] float32: direction to light xyz, ambient
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  // The first n items (views of the tensors, no copy) / the items at `index` [K] int64: every tensor alike.
  PriorDataset head(int64_t n) const;
  PriorDataset rows(const at::Tensor& index) const;
};

struct PriorItem {
  int caption = 0;     // index into all_captions()
  bool suffix = true;  // the caption carries the view word
  View view;
  std::array<float, 3> light{};
  float ambient = 0.3f;
};

// The draw of item `index` (no rendering).
PriorItem draw_prior_item(const PriorDatasetOptions& options, int64_t index);

// Caption text of an item, e.g. "a red cube, front view".
std::string prior_item_caption(const PriorItem& item);

// The index of a canonical caption (no view suffix) in all_captions(); InputError naming it otherwise.
int canonical_caption_index(const std::string& caption);

// The items of `data` whose caption (canonical, without the view suffix) is one of `captions`, in order:
// for a fine-tune aimed at a few objects. InputError for a caption outside the grammar, or when no item
// matches.
PriorDataset select_captions(const PriorDataset& data, const std::vector<std::string>& captions);

// Renders the whole dataset, multi-threaded; `progress` (may be null) is called with items done so far.
PriorDataset make_prior_dataset(const PriorDatasetOptions& options,
                                const std::function<void(int64_t)>& progress = nullptr);

// Stored compactly as safetensors (uint8 images) with the options in the metadata; atomic write.
void save_prior_dataset(const std::string& path, const PriorDataset& data,
                        const PriorDatasetOptions& options);
// InputError for a file that is not a prior dataset or whose tensors disagree in size.
PriorDataset load_prior_dataset(const std::string& path, PriorDatasetOptions* options = nullptr);

}  // namespace nd
