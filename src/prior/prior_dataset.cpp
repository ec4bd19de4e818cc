#include "prior/prior_dataset.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "camera/camera.h"
#include "core/error.h"
#include "core/number_list.h"
#include "io/safetensors.h"
#include "prior/word_tokenizer.h"
#include "synth/caption.h"
#include "synth/synth_renderer.h"

namespace nd {
namespace {

struct CaptionKinds {
  std::vector<std::string> all;
  std::vector<int> singles, stacks, named;
  std::vector<SynthObject> objects;
};

const CaptionKinds& caption_kinds() {
  static const CaptionKinds kinds = [] {
    CaptionKinds k;
    k.all = all_captions();
    for (size_t i = 0; i < k.all.size(); ++i) {
      SynthObject o = parse_caption(k.all[i]).object;
      const bool is_stack = k.all[i].find(" on top of ") != std::string::npos;
      const auto& names = named_object_words();
      const bool is_named = std::find(names.begin(), names.end(), k.all[i].substr(2)) != names.end();
      (is_stack ? k.stacks : is_named ? k.named : k.singles).push_back(static_cast<int>(i));
      k.objects.push_back(std::move(o));
    }
    return k;
  }();
  return kinds;
}

constexpr const char* kDatasetFormat = "nerfdream.prior-dataset";

}  // namespace

void validate_kind_mix(const std::array<double, 3>& mix, const std::string& what) {
  for (double w : mix) require(std::isfinite(w) && w >= 0, what + ": the kind weights must be >= 0");
  require(mix[0] + mix[1] + mix[2] > 0, what + ": the kind weights must not all be 0");
}

std::array<double, 3> parse_kind_mix(const std::string& text, const std::string& what) {
  const std::vector<double> w = parse_number_list(text, what);
  require(w.size() == 3, what + ": expected three weights (singles,stacks,named), got '" + text + "'");
  const std::array<double, 3> mix{w[0], w[1], w[2]};
  validate_kind_mix(mix, what);
  return mix;
}

PriorItem draw_prior_item(const PriorDatasetOptions& o, int64_t index) {
  std::seed_seq seq{static_cast<uint32_t>(o.seed), static_cast<uint32_t>(o.seed >> 32),
                    static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32)};
  std::mt19937_64 rng(seq);
  const CaptionKinds& k = caption_kinds();
  PriorItem item;
  const double total = o.kind_mix[0] + o.kind_mix[1] + o.kind_mix[2];
  const double kind = uniform01(rng) * total;
  const std::vector<int>& list = kind < o.kind_mix[0]                   ? k.singles
                                 : kind < o.kind_mix[0] + o.kind_mix[1] ? k.stacks
                                                                        : k.named;
  item.caption = list[std::min<size_t>(list.size() - 1, static_cast<size_t>(uniform01(rng) * list.size()))];
  item.suffix = uniform01(rng) < o.view_suffix_probability;
  item.view = sample_view(o.views, rng);
  item.light = light_near_camera(item.view, rng);
  item.ambient = static_cast<float>(0.15 + 0.3 * uniform01(rng));
  return item;
}

std::string prior_item_caption(const PriorItem& item) {
  const std::string& base = caption_kinds().all.at(item.caption);
  if (!item.suffix) return base;
  return base + ", " + view_word(item.view.elevation, item.view.azimuth) + " view";
}

PriorDataset make_prior_dataset(const PriorDatasetOptions& o, const std::function<void(int64_t)>& progress) {
  require(o.size >= 1, "prior dataset: size must be >= 1");
  require(o.resolution >= 8 && o.resolution <= 512, "prior dataset: resolution must be in [8, 512]");
  require(o.supersample >= 1 && o.supersample <= 8, "prior dataset: supersample must be in [1, 8]");
  const int64_t n = o.size, r = o.resolution;
  const WordTokenizer tokenizer;
  PriorDataset d;
  d.images = at::empty({n, r, r, 3}, at::kByte);
  d.tokens = at::empty({n, WordTokenizer::kMaxTokens}, at::kLong);
  d.views = at::empty({n, 4}, at::kFloat);
  d.captions = at::empty({n}, at::kInt);
  d.lights = at::empty({n, 4}, at::kFloat);
  const CaptionKinds& k = caption_kinds();
  std::atomic<int64_t> done{0};
  // Grain 64: items are ~0.3 ms each; the renderer's own row parallelism is off inside this region.
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const PriorItem item = draw_prior_item(o, i);
      const Camera cam = orbit_camera(item.view.radius, item.view.elevation, item.view.azimuth, item.view.fov,
                                      static_cast<int>(r), static_cast<int>(r));
      SynthRenderOptions ro;
      ro.light.direction_to_light = item.light;
      ro.light.ambient = item.ambient;
      ro.supersample = o.supersample;
      const SynthImage img = render_synth(k.objects[item.caption], cam, ro);
      d.images[i].copy_((img.rgb * 255.f + 0.5f).clamp(0, 255).to(at::kByte));
      d.tokens[i].copy_(tokenizer.encode(prior_item_caption(item)));
      auto v = d.views.accessor<float, 2>();
      v[i][0] = static_cast<float>(item.view.elevation);
      v[i][1] = static_cast<float>(item.view.azimuth);
      v[i][2] = static_cast<float>(item.view.radius);
      v[i][3] = static_cast<float>(item.view.fov);
      d.captions.data_ptr<int32_t>()[i] = item.caption;
      auto l = d.lights.accessor<float, 2>();
      for (int c = 0; c < 3; ++c) l[i][c] = item.light[c];
      l[i][3] = item.ambient;
      const int64_t now = ++done;
      if (progress && at::get_thread_num() == 0) progress(now);
    }
  });
  if (progress) progress(n);
  return d;
}

void save_prior_dataset(const std::string& path, const PriorDataset& d, const PriorDatasetOptions& o) {
  nlohmann::json j = {{"size", o.size},
                      {"resolution", o.resolution},
                      {"supersample", o.supersample},
                      {"seed", o.seed},
                      {"view_suffix_probability", o.view_suffix_probability},
                      {"kind_mix", o.kind_mix}};
  save_safetensors(path,
                   {{"images", d.images},
                    {"tokens", d.tokens.to(at::kByte)},
                    {"views", d.views},
                    {"captions", d.captions},
                    {"lights", d.lights}},
                   {{"format", kDatasetFormat}, {"options", j.dump()}});
}

int canonical_caption_index(const std::string& caption) {
  static const std::vector<std::string> all = all_captions();
  const auto it = std::find(all.begin(), all.end(), caption);
  require(it != all.end(),
          "'" + caption + "' is not a canonical caption of the synth grammar (e.g. 'a chair', 'a red cube')");
  return static_cast<int>(it - all.begin());
}

PriorDataset select_captions(const PriorDataset& data, const std::vector<std::string>& captions) {
  at::Tensor keep = at::zeros({data.size()}, at::kBool);
  for (const std::string& c : captions) keep |= data.captions == canonical_caption_index(c);
  const at::Tensor idx = keep.nonzero().squeeze(1);
  require(idx.numel() > 0, "the dataset holds no image of the selected captions");
  return data.rows(idx);
}

PriorDataset PriorDataset::head(int64_t n) const {
  return {images.narrow(0, 0, n), tokens.narrow(0, 0, n), views.narrow(0, 0, n), captions.narrow(0, 0, n),
          lights.narrow(0, 0, n)};
}

PriorDataset PriorDataset::rows(const at::Tensor& index) const {
  return {images.index_select(0, index), tokens.index_select(0, index), views.index_select(0, index),
          captions.index_select(0, index), lights.index_select(0, index)};
}

PriorDataset load_prior_dataset(const std::string& path, PriorDatasetOptions* options) {
  SafetensorsFile f = SafetensorsFile::open(path);
  auto it = f.metadata().find("format");
  require(it != f.metadata().end() && it->second == kDatasetFormat,
          path + ": not a nerfdream prior dataset (no format '" + kDatasetFormat + "' in its metadata)");
  PriorDataset d;
  for (const char* name : {"images", "tokens", "views", "captions", "lights"})
    require(f.contains(name), path + ": prior dataset lacks tensor '" + std::string(name) + "'");
  d.images = f.load_as_stored("images");
  d.tokens = f.load_as_stored("tokens").to(at::kLong);
  d.views = f.load_as_stored("views");
  d.captions = f.load_as_stored("captions");
  d.lights = f.load_as_stored("lights");
  const int64_t n = d.images.size(0);
  require(d.images.dim() == 4 && d.images.size(3) == 3 && d.images.scalar_type() == at::kByte,
          path + ": 'images' must be [N,R,R,3] uint8");
  require(d.tokens.sizes() == at::IntArrayRef({n, WordTokenizer::kMaxTokens}) &&
              d.views.sizes() == at::IntArrayRef({n, 4}) && d.captions.sizes() == at::IntArrayRef({n}) &&
              d.lights.sizes() == at::IntArrayRef({n, 4}),
          path + ": prior dataset tensors disagree in size");
  require(d.tokens.max().item<int64_t>() < WordTokenizer().vocab_size(),
          path + ": prior dataset has token ids outside this build's vocabulary");
  if (options) {
    try {
      const auto j = nlohmann::json::parse(f.metadata().at("options"));
      options->size = n;
      options->resolution = static_cast<int>(d.images.size(1));
      options->supersample = j.at("supersample").get<int>();
      options->seed = j.at("seed").get<uint64_t>();
      options->view_suffix_probability = j.at("view_suffix_probability").get<double>();
      // Datasets written before the mix was an option used the default.
      options->kind_mix = j.value("kind_mix", PriorDatasetOptions{}.kind_mix);
    } catch (const std::exception&) {
      throw InputError(path + ": corrupt prior dataset metadata");
    }
  }
  return d;
}

}  // namespace nd
