#include "prior/synth_classifier.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "camera/camera.h"
#include "core/config_json.h"
#include "core/error.h"
#include "core/progress.h"
#include "optim/adam.h"
#include "prior/tiny_prior.h"
#include "synth/caption.h"

namespace nd {

const std::vector<std::string>& object_class_names() {
  static const std::vector<std::string> names = {"cube",  "sphere",   "cylinder", "cone",
                                                 "torus", "tree",     "mushroom", "table",
                                                 "chair", "dumbbell", "stack"};
  return names;
}

namespace {

int index_of(const std::vector<std::string>& list, const std::string& word) {
  const auto it = std::find(list.begin(), list.end(), word);
  return it == list.end() ? -1 : static_cast<int>(it - list.begin());
}

int shape_index(const std::string& word) {
  const auto& t = caption_shape_table();
  for (size_t i = 0; i < t.size(); ++i)
    if (word == t[i].word) return static_cast<int>(i);
  return -1;
}

int color_index(const std::string& word) {
  const auto& t = color_table();
  for (size_t i = 0; i < t.size(); ++i)
    if (word == t[i].word) return static_cast<int>(i);
  return -1;
}

// Labels of every caption of all_captions(), in its order.
const std::vector<ClassifierLabels>& caption_label_table() {
  static const std::vector<ClassifierLabels> table = [] {
    std::vector<ClassifierLabels> t;
    for (const auto& c : all_captions()) t.push_back(caption_labels(c));
    return t;
  }();
  return table;
}

constexpr int kOverhead = 3;

}  // namespace

ClassifierLabels caption_labels(const std::string& caption) {
  // The canonical caption ("a red cube on top of an orange sphere") splits into fixed word positions.
  const std::string canonical = parse_caption(caption).object.caption;
  std::vector<std::string> w;
  std::istringstream ss(canonical);
  for (std::string word; ss >> word;) w.push_back(word);
  ClassifierLabels l;
  if (w.size() == 2) {
    const int named = index_of(named_object_words(), w[1]);
    require(named >= 0, "classifier labels: unexpected caption '" + canonical + "'");
    l.object = kFirstNamedClass + named;
  } else if (w.size() == 3) {
    l.color = color_index(w[1]);
    l.object = shape_index(w[2]);
  } else {
    require(w.size() == 9, "classifier labels: unexpected caption '" + canonical + "'");
    l.object = kStackClass;
    l.color = color_index(w[1]);
    l.top_shape = shape_index(w[2]);
    l.bottom_color = color_index(w[7]);
    l.bottom_shape = shape_index(w[8]);
  }
  return l;
}

int view_label(double elevation_deg, double azimuth_deg) {
  return index_of(view_words(), view_word(elevation_deg, azimuth_deg));
}

int view_match_mask(int object, int view) {
  if (object == 1)
    return (1 << kViewClasses) - 1;  // a sphere lit from the camera looks the same from anywhere
  if (view == kOverhead) return 1 << kOverhead;
  if (object == kFirstNamedClass + 3) return 1 << view;  // the chair: its backrest says where you are
  if (object == kFirstNamedClass + 4) return view == 1 ? 1 << 1 : (1 << 0) | (1 << 2);  // the dumbbell
  return (1 << 0) | (1 << 1) | (1 << 2);
}

ClassifierTargets classifier_targets(const at::Tensor& captions, const at::Tensor& views) {
  const int64_t n = captions.size(0);
  require(views.dim() == 2 && views.size(0) == n && views.size(1) == 4,
          "classifier targets: views must be [N,4], one per caption");
  const auto& table = caption_label_table();
  const at::Tensor cap = captions.to(at::kLong).contiguous();
  const at::Tensor v = views.to(at::kFloat).contiguous();
  ClassifierTargets t;
  for (at::Tensor* x : {&t.object, &t.top_shape, &t.bottom_shape, &t.color, &t.bottom_color})
    *x = at::empty({n}, at::kLong);
  t.view_mask = at::empty({n, kViewClasses}, at::kBool);
  const int64_t* c = cap.data_ptr<int64_t>();
  const float* va = v.data_ptr<float>();
  bool* m = t.view_mask.data_ptr<bool>();
  for (int64_t i = 0; i < n; ++i) {
    require(c[i] >= 0 && c[i] < static_cast<int64_t>(table.size()),
            "classifier targets: caption index " + std::to_string(c[i]) + " out of range");
    const ClassifierLabels& l = table[c[i]];
    t.object.data_ptr<int64_t>()[i] = l.object;
    t.top_shape.data_ptr<int64_t>()[i] = l.top_shape;
    t.bottom_shape.data_ptr<int64_t>()[i] = l.bottom_shape;
    t.color.data_ptr<int64_t>()[i] = l.color;
    t.bottom_color.data_ptr<int64_t>()[i] = l.bottom_color;
    const int mask = view_match_mask(l.object, view_label(va[i * 4], va[i * 4 + 1]));
    for (int k = 0; k < kViewClasses; ++k) m[i * kViewClasses + k] = (mask >> k) & 1;
  }
  return t;
}

// ---- Config and model ----

nlohmann::json SynthClassifierConfig::to_json() const {
  return {{"channels", channels},
          {"reduce", reduce},
          {"hidden", hidden},
          {"groups", groups},
          {"resolution", kClassifierResolution}};
}

SynthClassifierConfig SynthClassifierConfig::from_json(const nlohmann::json& j) {
  SynthClassifierConfig c;
  ConfigReader r(j, "");
  int resolution = kClassifierResolution;
  r.get("channels", c.channels);
  r.get("reduce", c.reduce);
  r.get("hidden", c.hidden);
  r.get("groups", c.groups);
  r.get("resolution", resolution);
  r.finish();
  require(resolution == kClassifierResolution, "classifier config: resolution must be 32");
  require(c.channels.size() >= 1 && c.channels.size() <= 6,
          "classifier config: channels needs 1 to 6 levels");
  require(c.groups >= 1, "classifier config: groups must be >= 1");
  for (int ch : c.channels)
    require(ch > 0 && ch % c.groups == 0,
            "classifier config: every channel count must be a multiple of groups");
  require(c.reduce > 0 && c.hidden > 0, "classifier config: reduce and hidden must be > 0");
  return c;
}

SynthClassifierImpl::SynthClassifierImpl(const SynthClassifierConfig& c) : config_(c) {
  namespace nn = torch::nn;
  convs_ = register_module("convs", nn::ModuleList());
  norms_ = register_module("norms", nn::ModuleList());
  auto add = [&](int in, int out, int stride) {
    convs_->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1)));
    norms_->push_back(nn::GroupNorm(nn::GroupNormOptions(c.groups, out)));
    strides_.push_back(stride);
  };
  add(3, c.channels[0], 1);
  for (size_t i = 1; i < c.channels.size(); ++i) {
    add(c.channels[i - 1], c.channels[i], 2);
    add(c.channels[i], c.channels[i], 1);
  }
  const int side = kClassifierResolution >> (c.channels.size() - 1);
  reduce_ = register_module("reduce", nn::Conv2d(nn::Conv2dOptions(c.channels.back(), c.reduce, 1)));
  fc_ = register_module("fc", nn::Linear(c.reduce * side * side, c.hidden));
  object_ = register_module("object", nn::Linear(c.hidden, kObjectClasses));
  top_shape_ = register_module("top_shape", nn::Linear(c.hidden, kShapeClasses));
  bottom_shape_ = register_module("bottom_shape", nn::Linear(c.hidden, kShapeClasses));
  color_ = register_module("color", nn::Linear(c.hidden, kColorClasses));
  bottom_color_ = register_module("bottom_color", nn::Linear(c.hidden, kColorClasses));
  view_ = register_module("view", nn::Linear(c.hidden, kViewClasses));
}

ClassifierOutput SynthClassifierImpl::forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == kClassifierResolution &&
                  x.size(3) == kClassifierResolution,
              "SynthClassifier: input must be [B,3,32,32], got ", x.sizes());
  at::Tensor h = x * 2 - 1;
  for (size_t i = 0; i < convs_->size(); ++i)
    h = at::silu(
        norms_[i]->as<torch::nn::GroupNorm>()->forward(convs_[i]->as<torch::nn::Conv2d>()->forward(h)));
  h = at::silu(reduce_->forward(h)).flatten(1);
  h = at::silu(fc_->forward(h));
  return {object_->forward(h), top_shape_->forward(h),    bottom_shape_->forward(h),
          color_->forward(h),  bottom_color_->forward(h), view_->forward(h)};
}

namespace {

// Cross-entropy over the items whose label is >= 0 (0 when there are none).
at::Tensor masked_cross_entropy(const at::Tensor& logits, const at::Tensor& target) {
  const at::Tensor valid = target.ge(0);
  const at::Tensor logp = at::log_softmax(logits, 1).gather(1, target.clamp_min(0).unsqueeze(1)).squeeze(1);
  return -(logp * valid.to(logp.scalar_type())).sum() / valid.sum().clamp_min(1).to(logp.scalar_type());
}

}  // namespace

at::Tensor classifier_loss(const ClassifierOutput& out, const ClassifierTargets& t) {
  at::Tensor loss =
      masked_cross_entropy(out.object, t.object) + masked_cross_entropy(out.top_shape, t.top_shape) +
      masked_cross_entropy(out.bottom_shape, t.bottom_shape) + masked_cross_entropy(out.color, t.color) +
      masked_cross_entropy(out.bottom_color, t.bottom_color);
  // The view head: −log of the probability of the set of views the image cannot be told from.
  const at::Tensor all = at::logsumexp(out.view, 1);
  const at::Tensor in_set = at::logsumexp(out.view.masked_fill(t.view_mask.logical_not(), -1e9), 1);
  return loss + (all - in_set).mean();
}

ClassifierPrediction classify(SynthClassifier& model, const at::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "classify: images must be [B,3,R,R], got ",
              images.sizes());
  torch::NoGradGuard no_grad;
  model->train(false);
  at::Tensor x = images.to(at::kFloat);
  const int64_t r = kClassifierResolution;
  if (x.size(2) > r || x.size(3) > r) x = at::adaptive_avg_pool2d(x, {r, r});  // area resize
  if (x.size(2) != r || x.size(3) != r) x = at::upsample_bilinear2d(x, {r, r}, false);
  const ClassifierOutput o = model->forward(x.contiguous());
  return {o.object.argmax(1), o.top_shape.argmax(1),    o.bottom_shape.argmax(1),
          o.color.argmax(1),  o.bottom_color.argmax(1), o.view.argmax(1)};
}

// ---- Weights ----

void save_classifier(const std::string& path, SynthClassifier& model,
                     const std::map<std::string, std::string>& extra) {
  Checkpoint ckpt;
  ckpt.config = model->config().to_json();
  ckpt.extra = extra;
  for (const auto& p : model->named_parameters()) ckpt.tensors[p.key()] = p.value().detach();
  save_checkpoint(path, ckpt, kSynthClassifierFormat);
}

SynthClassifier load_classifier(const std::string& path) {
  const Checkpoint ckpt = load_checkpoint(path, kSynthClassifierFormat);
  SynthClassifierConfig config;
  try {
    config = SynthClassifierConfig::from_json(ckpt.config);
  } catch (const InputError& e) {
    throw InputError(path + ": " + e.what());
  }
  SynthClassifier model(config);
  std::map<std::string, at::Tensor> params;
  for (const auto& p : model->named_parameters()) params[p.key()] = p.value();
  for (const auto& [name, t] : ckpt.tensors) {
    require(params.count(name) > 0, path + ": incompatible classifier: unexpected tensor '" + name + "'");
    require(t.scalar_type() == at::kFloat, path + ": classifier tensor '" + name + "' must be F32");
  }
  restore_tensors(path, ckpt.tensors, "", params);
  model->train(false);
  return model;
}

std::string default_classifier_path() {
  return find_shipped_model("models/synth-classifier/classifier.safetensors", "NERFDREAM_CLASSIFIER",
                            "synth classifier",
                            "pass --classifier FILE (train one with `nerfdream train-classifier`)");
}

// ---- Training ----

at::Tensor augment_classifier_batch(const at::Tensor& images, at::Generator& gen) {
  const int64_t b = images.size(0), r = images.size(2);
  const auto per_item = [&](const at::Tensor& t) { return t.view({b, 1, 1, 1}); };
  at::Tensor x = images.to(at::kFloat);
  // Mirror left-right: every synth object is symmetric under x → −x and the view word is kept.
  x = at::where(per_item(at::rand({b}, gen).lt(0.5)), x.flip({3}), x);
  // Shift by up to 2 px, on white.
  constexpr int kShift = 2;
  const at::Tensor padded = at::constant_pad_nd(x, {kShift, kShift, kShift, kShift}, 1.0);
  const at::Tensor offsets = at::randint(0, 2 * kShift + 1, {b, 2}, gen);
  const auto o = offsets.accessor<int64_t, 2>();
  std::vector<at::Tensor> shifted;
  for (int64_t i = 0; i < b; ++i) shifted.push_back(padded[i].narrow(1, o[i][0], r).narrow(2, o[i][1], r));
  x = at::stack(shifted);
  // Blur ([1 2 1]/4 separable, σ ≈ 0.7 px) mixed in with a random weight, for half the batch.
  const at::Tensor k1 = at::tensor({0.25f, 0.5f, 0.25f});
  const at::Tensor kernel = (k1.view({3, 1}) * k1.view({1, 3})).view({1, 1, 3, 3}).expand({3, 1, 3, 3});
  const at::Tensor blurred =
      at::conv2d(at::replication_pad2d(x, {1, 1, 1, 1}), kernel, at::Tensor(), at::IntArrayRef{1, 1},
                 at::IntArrayRef{0, 0}, at::IntArrayRef{1, 1}, 3);
  const at::Tensor alpha = at::rand({b}, gen) * at::rand({b}, gen).lt(0.5).to(at::kFloat);
  x = x + per_item(alpha) * (blurred - x);
  // Brightness: gain and offset, the same for the three channels (hue is a label).
  const at::Tensor gain = 1 + 0.1 * (2 * at::rand({b}, gen) - 1);
  const at::Tensor offset = 0.04 * (2 * at::rand({b}, gen) - 1);
  x = x * per_item(gain) + per_item(offset);
  // Gaussian pixel noise, σ up to 0.05.
  x = x + per_item(0.05 * at::rand({b}, gen)) * at::randn(x.sizes(), gen);
  return x.clamp(0, 1).contiguous();
}

namespace {

// [B,R,R,3] uint8 → [B,3,R,R] float in [0,1].
at::Tensor to_float_images(const at::Tensor& u8) {
  return u8.permute({0, 3, 1, 2}).to(at::kFloat).div(255.f);
}

// The view lies at least `margin` degrees from every edge of the view-word bands.
bool clear_view(double e, double a, double margin) {
  a = std::fmod(a, 360.0);
  if (a > 180) a -= 360;
  if (a <= -180) a += 360;
  if (std::abs(e - 60) < margin) return false;
  if (e >= 60) return true;
  const double aa = std::abs(a);
  return std::abs(aa - 45) >= margin && std::abs(aa - 135) >= margin;
}

}  // namespace

std::map<std::string, double> classifier_accuracy(SynthClassifier& model, const PriorDataset& data) {
  const int64_t n = data.size();
  const ClassifierTargets t = classifier_targets(data.captions, data.views);
  std::map<std::string, std::pair<int64_t, int64_t>> hits;  // name → (right, applicable)
  auto count = [&](const char* name, const at::Tensor& right, const at::Tensor& applies) {
    auto& h = hits[name];
    h.first += (right & applies).sum().item<int64_t>();
    h.second += applies.sum().item<int64_t>();
  };
  const at::Tensor views = data.views.to(at::kFloat).contiguous();
  for (int64_t begin = 0; begin < n; begin += 500) {
    const int64_t len = std::min<int64_t>(500, n - begin);
    const ClassifierPrediction p = classify(model, to_float_images(data.images.narrow(0, begin, len)));
    auto slice = [&](const at::Tensor& x) { return x.narrow(0, begin, len); };
    const at::Tensor obj = slice(t.object), top = slice(t.top_shape), bot = slice(t.bottom_shape);
    const at::Tensor col = slice(t.color), bcol = slice(t.bottom_color);
    const at::Tensor all = at::ones({len}, at::kBool), stack = obj.eq(kStackClass);
    count("object", p.object.eq(obj), all);
    count("top_shape", p.top_shape.eq(top), top.ge(0));
    count("bottom_shape", p.bottom_shape.eq(bot), bot.ge(0));
    count("color", p.color.eq(col), col.ge(0));
    count("bottom_color", p.bottom_color.eq(bcol), bcol.ge(0));
    // From overhead the top part hides most of the bottom one: the stack heads below the overhead band.
    const at::Tensor low = slice(views).select(1, 0).lt(60);
    count("bottom_shape_below_60", p.bottom_shape.eq(bot), bot.ge(0) & low);
    count("bottom_color_below_60", p.bottom_color.eq(bcol), bcol.ge(0) & low);
    count("shape", p.object.eq(obj) & (stack.logical_not() | (p.top_shape.eq(top) & p.bottom_shape.eq(bot))),
          all);
    const at::Tensor view_right = slice(t.view_mask).gather(1, p.view.unsqueeze(1)).squeeze(1);
    count("view", view_right, all);
    at::Tensor exact = at::empty({len}, at::kLong), clear = at::empty({len}, at::kBool);
    for (int64_t i = 0; i < len; ++i) {
      const float* v = views.data_ptr<float>() + (begin + i) * 4;
      exact.data_ptr<int64_t>()[i] = view_label(v[0], v[1]);
      clear.data_ptr<bool>()[i] = clear_view(v[0], v[1], 5.0);
    }
    count("view_exact", p.view.eq(exact), all);
    count("view_clear", view_right, clear);
  }
  std::map<std::string, double> out;
  for (const auto& [name, h] : hits) out[name] = h.second ? static_cast<double>(h.first) / h.second : 0.0;
  return out;
}

ClassifierTrainResult train_synth_classifier(const ClassifierTrainOptions& o) {
  require(o.steps >= 1, "--steps must be >= 1");
  require(o.batch >= 1, "--batch must be >= 1");
  require(o.heldout_size >= 1, "held-out size must be >= 1");
  require(o.data.resolution == kClassifierResolution, "classifier data: resolution must be 32");
  using clock = std::chrono::steady_clock;
  ClassifierTrainResult result;

  const auto t0 = clock::now();
  PriorDataset train_data, heldout;
  {
    ProgressBar bar(o.data.size + o.heldout_size, "rendering", o.progress);
    train_data = make_prior_dataset(o.data, [&](int64_t done) { bar.update(done); });
    PriorDatasetOptions h = o.data;
    h.seed = o.data.seed + 1;
    h.size = o.heldout_size;
    heldout = make_prior_dataset(h, [&](int64_t done) { bar.update(o.data.size + done); });
    bar.finish();
  }
  result.data_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  const ClassifierTargets targets = classifier_targets(train_data.captions, train_data.views);

  torch::manual_seed(o.seed);  // initialisation
  SynthClassifier model(o.model);
  std::vector<at::Tensor> params;
  for (const auto& p : model->parameters()) params.push_back(p);
  AdamOptions adam_options;
  adam_options.beta2 = 0.999;
  adam_options.eps = 1e-8;
  FusedAdam adam({AdamGroup{"all", params, o.lr, o.weight_decay}}, adam_options);
  at::Generator gen = at::detail::createCPUGenerator(o.seed + 1);

  const int64_t n = train_data.size(), warmup = std::min<int64_t>(100, o.steps / 10);
  at::Tensor order = at::randperm(n, gen);
  int64_t cursor = 0;
  ProgressBar bar(o.steps, "training", o.progress);
  const auto t1 = clock::now();
  double loss_avg = 0;
  int64_t step = 0;
  model->train(true);
  for (; step < o.steps; ++step) {
    if (o.interrupt && o.interrupt->load()) {
      result.interrupted = true;
      break;
    }
    if (cursor + o.batch > n) {
      order = at::randperm(n, gen);
      cursor = 0;
    }
    const at::Tensor idx = order.narrow(0, cursor, std::min<int64_t>(o.batch, n));
    cursor += idx.size(0);
    at::Tensor x = to_float_images(train_data.images.index_select(0, idx));
    if (o.augment) x = augment_classifier_batch(x, gen);
    const ClassifierTargets t{
        targets.object.index_select(0, idx),       targets.top_shape.index_select(0, idx),
        targets.bottom_shape.index_select(0, idx), targets.color.index_select(0, idx),
        targets.bottom_color.index_select(0, idx), targets.view_mask.index_select(0, idx)};
    // Linear warm-up, then cosine decay to 2 % of the rate.
    const double progress =
        step < warmup ? 0.0 : static_cast<double>(step - warmup) / std::max<int64_t>(1, o.steps - warmup);
    const double lr = step < warmup ? o.lr * (step + 1) / warmup
                                    : o.lr * (0.02 + 0.98 * 0.5 * (1 + std::cos(M_PI * progress)));
    adam.set_lr("all", lr);
    adam.zero_grad();
    const at::Tensor loss = classifier_loss(model->forward(x), t);
    loss.backward();
    adam.step();
    const double l = loss.item<double>();
    loss_avg = step == 0 ? l : 0.98 * loss_avg + 0.02 * l;
    bar.update(step + 1, {{"loss", loss_avg}});
  }
  bar.finish();
  result.train_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  result.steps_done = step;
  result.final_loss = loss_avg;
  result.heldout = classifier_accuracy(model, heldout);
  result.model = model;
  return result;
}

}  // namespace nd
