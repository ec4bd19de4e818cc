#include "prior/prior_eval.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "camera/camera.h"
#include "core/error.h"
#include "core/progress.h"
#include "prior/prior_sampler.h"
#include "synth/caption.h"
#include "synth/synth_renderer.h"

namespace nd {

std::string PriorEvalItem::prompt() const { return caption + ", " + view_words().at(view) + " view"; }

const std::vector<View>& prior_eval_views() {
  static const std::vector<View> views = {{15, 0, 3, 45}, {15, 90, 3, 45}, {15, 180, 3, 45}, {70, 30, 3, 45}};
  return views;
}

std::vector<std::string> prior_eval_stacks() {
  const auto& shapes = caption_shape_table();
  const auto& colors = color_table();
  std::vector<std::string> out;
  for (int i = 0; i < 16; ++i) {
    // The shape offset (1 + i/5) and the color offset (2i + 5, odd) are never 0: no part repeats the other.
    const int top_shape = i % 5, bottom_shape = (i + i / 5 + 1) % 5;
    const int top_color = i % 8, bottom_color = (3 * i + 5) % 8;
    out.push_back(make_stack(colors[top_color].word, shapes[top_shape].shape, colors[bottom_color].word,
                             shapes[bottom_shape].shape)
                      .caption);
  }
  return out;
}

std::vector<PriorEvalItem> prior_eval_set(bool quick) {
  const std::vector<std::string> all = all_captions();
  std::vector<std::string> captions(all.begin(), all.begin() + 40);  // the singles come first
  for (const auto& n : named_object_words()) captions.push_back(make_named(n).caption);
  for (const auto& s : prior_eval_stacks()) captions.push_back(s);
  std::vector<PriorEvalItem> items;
  for (const auto& c : captions)
    for (int v = 0; v < kViewClasses; ++v) items.push_back({c, v, prior_eval_views()[v]});
  if (!quick) return items;
  // Every 29th item: 8 items over singles, a named object and stacks, each of the four views twice.
  std::vector<PriorEvalItem> subset;
  for (size_t i = 0; i < items.size() && subset.size() < 8; i += 29) subset.push_back(items[i]);
  return subset;
}

namespace {

std::string with_article(const std::string& phrase) {
  const bool vowel = !phrase.empty() && std::string("aeiou").find(phrase[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + phrase;
}

// The classifier's reading of sample i as a caption.
std::string describe(const ClassifierPrediction& p, int64_t i) {
  const auto& names = object_class_names();
  const auto& shapes = caption_shape_table();
  const auto& colors = color_table();
  auto get = [&](const at::Tensor& t) { return t[i].item<int64_t>(); };
  const int64_t object = get(p.object);
  std::string text;
  if (object == kStackClass)
    text =
        with_article(std::string(colors[get(p.color)].word) + " " + shapes[get(p.top_shape)].word) +
        " on top of " +
        with_article(std::string(colors[get(p.bottom_color)].word) + " " + shapes[get(p.bottom_shape)].word);
  else if (object >= kFirstNamedClass)
    text = with_article(names[object]);
  else
    text = with_article(std::string(colors[get(p.color)].word) + " " + names[object]);
  return text + ", " + view_words()[get(p.view)] + " view";
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A real render of `caption` at `view`, lit from the camera, as the prior's training data is: [3,R,R] in
// [0,1], 8-bit quantised.
at::Tensor real_render(const std::string& caption, const View& view, int resolution) {
  const Camera cam =
      orbit_camera(view.radius, view.elevation, view.azimuth, view.fov, resolution, resolution);
  constexpr double kDeg = M_PI / 180;
  const double e = view.elevation * kDeg, a = view.azimuth * kDeg;
  SynthRenderOptions ro;
  ro.light.direction_to_light = {static_cast<float>(std::cos(e) * std::sin(a)),
                                 static_cast<float>(std::sin(e)),
                                 static_cast<float>(std::cos(e) * std::cos(a))};
  ro.light.ambient = 0.3f;
  ro.supersample = 2;
  const at::Tensor rgb = render_synth(parse_caption(caption).object, cam, ro).rgb;
  return (rgb * 255.f + 0.5f).floor().clamp(0, 255).div(255.f).permute({2, 0, 1}).contiguous();
}

struct ZeroShot {
  int renders = 0, timesteps = 0, shape_right = 0, color_right = 0;
};

// Zero-shot classification of real single renders by the prior's denoising loss (see the header).
ZeroShot zero_shot(TinyPrior& prior, bool quick, bool camera, bool progress) {
  torch::NoGradGuard no_grad;
  prior.train(false);
  const auto& shapes = caption_shape_table();
  const auto& colors = color_table();
  const int r = prior.config().resolution;
  const int64_t big_t = prior.schedule().num_train_timesteps();
  ZeroShot z;
  z.timesteps = quick ? 4 : 8;
  std::vector<int64_t> ts;
  for (int k = 0; k < z.timesteps; ++k) ts.push_back(static_cast<int64_t>((k + 0.5) * big_t / z.timesteps));
  const at::Tensor t_col = at::tensor(ts);
  at::Generator gen = at::detail::createCPUGenerator(1234);
  const int step = quick ? 5 : 1;
  ProgressBar bar(40 / step, "zero-shot", progress);
  for (int i = 0; i < 40; i += step) {
    const int color = i / 5, shape = i % 5;  // all_captions() order: color-major
    const View& view = prior_eval_views()[i % 4];
    const std::string suffix = std::string(", ") + view_word(view.elevation, view.azimuth) + " view";
    // Candidates: the 5 shapes in the true color, then the 7 other colors of the true shape.
    std::vector<std::string> prompts;
    for (int s = 0; s < 5; ++s)
      prompts.push_back(make_single(colors[color].word, shapes[s].shape).caption + suffix);
    std::vector<int> color_candidates;  // prompt index of color c
    for (int c = 0; c < 8; ++c) {
      if (c == color) {
        color_candidates.push_back(shape);
        continue;
      }
      color_candidates.push_back(static_cast<int>(prompts.size()));
      prompts.push_back(make_single(colors[c].word, shapes[shape].shape).caption + suffix);
    }
    const int64_t nc = static_cast<int64_t>(prompts.size()), nt = z.timesteps;
    const at::Tensor x0 = real_render(prompts[shape], view, r) * 2 - 1;  // the true caption is prompt `shape`
    const at::Tensor noise = at::randn({nt, 3, r, r}, gen);
    const at::Tensor t = t_col.repeat({nc});             // [nc·nt], candidate-major
    const at::Tensor eps = noise.repeat({nc, 1, 1, 1});  // the same noises for every candidate
    const at::Tensor x_t = prior.schedule().add_noise(x0.unsqueeze(0).expand({nc * nt, 3, r, r}), eps, t);
    const at::Tensor ids = prior.tokenizer().encode_batch(prompts).repeat_interleave(nt, 0);
    const at::Tensor views = camera ? view_features(std::vector<View>(nc * nt, view))
                                    : at::zeros({nc * nt, kViewFeatures}, at::kFloat);
    const at::Tensor out = prior.predict(x_t, t, ids, views);
    const at::Tensor pred = prior.schedule().to_epsilon(prior.prediction_type(), out, x_t, t);
    const at::Tensor loss = (pred - eps).pow(2).mean({1, 2, 3}).view({nc, nt}).mean(1);  // [nc]
    z.shape_right += loss.narrow(0, 0, 5).argmin().item<int64_t>() == shape;
    z.color_right +=
        loss.index_select(0,
                          at::tensor(std::vector<int64_t>(color_candidates.begin(), color_candidates.end())))
            .argmin()
            .item<int64_t>() == color;
    ++z.renders;
    bar.update(z.renders);
  }
  bar.finish();
  return z;
}

double fraction(int right, int total) { return total ? static_cast<double>(right) / total : 0.0; }

}  // namespace

namespace {

// Scores the classifier's reading of images[j] against items[begin + j].
void score(const std::vector<PriorEvalItem>& items, int64_t begin, SynthClassifier& classifier,
           const at::Tensor& images, std::vector<PriorEvalSample>& out) {
  const ClassifierPrediction p = classify(classifier, images);
  for (int64_t j = 0; j < images.size(0); ++j) {
    PriorEvalSample s;
    s.item = items[begin + j];
    const ClassifierLabels l = caption_labels(s.item.caption);
    auto get = [&](const at::Tensor& t) { return static_cast<int>(t[j].item<int64_t>()); };
    s.shape_ok = get(p.object) == l.object &&
                 (l.object != kStackClass ||
                  (get(p.top_shape) == l.top_shape && get(p.bottom_shape) == l.bottom_shape));
    s.has_color = l.color >= 0;
    s.color_ok = s.has_color && get(p.color) == l.color &&
                 (l.bottom_color < 0 || get(p.bottom_color) == l.bottom_color);
    s.view_ok = (view_match_mask(l.object, s.item.view) >> get(p.view)) & 1;
    s.view_exact = get(p.view) == s.item.view;
    s.predicted = describe(p, j);
    out.push_back(std::move(s));
  }
}

struct Accuracy {
  double shape = 0, color = 0, view = 0, view_exact = 0;
};

Accuracy accuracy(const std::vector<PriorEvalSample>& samples) {
  int shape = 0, color = 0, colored = 0, view = 0, exact = 0;
  for (const auto& s : samples) {
    shape += s.shape_ok;
    color += s.color_ok;
    colored += s.has_color;
    view += s.view_ok;
    exact += s.view_exact;
  }
  const int n = static_cast<int>(samples.size());
  return {fraction(shape, n), fraction(color, colored), fraction(view, n), fraction(exact, n)};
}

}  // namespace

PriorEvalResult evaluate_prior(TinyPrior& prior, SynthClassifier& classifier, const PriorEvalOptions& o) {
  require(o.batch >= 1, "eval-prior: batch must be >= 1");
  PriorEvalResult res;
  res.steps = o.steps;
  res.eta = o.eta;
  res.guidance_scale = o.guidance_scale;
  res.camera = o.camera;
  const std::vector<PriorEvalItem> items = prior_eval_set(o.quick);
  const int64_t n = static_cast<int64_t>(items.size());
  const int r = prior.config().resolution;
  double sample_seconds = 0;
  ProgressBar bar(n, "sampling", o.progress);
  for (int64_t begin = 0, k = 0; begin < n; begin += o.batch, ++k) {
    const int64_t len = std::min<int64_t>(o.batch, n - begin);
    std::vector<std::string> prompts;
    std::vector<View> views;
    std::vector<at::Tensor> real;
    for (int64_t i = begin; i < begin + len; ++i) {
      prompts.push_back(items[i].prompt());
      if (o.camera) views.push_back(items[i].camera);
      if (o.reference) real.push_back(real_render(items[i].caption, items[i].camera, r));
    }
    PriorSampleOptions so;
    so.steps = o.steps;
    so.eta = o.eta;
    so.guidance_scale = o.guidance_scale;
    so.seed = o.seed + static_cast<uint64_t>(k);
    const auto t0 = std::chrono::steady_clock::now();
    const at::Tensor images = sample_prior(prior, prompts, views, so);
    sample_seconds += seconds_since(t0);
    score(items, begin, classifier, images, res.samples);
    if (o.reference) score(items, begin, classifier, at::stack(real), res.reference);
    bar.update(begin + len);
  }
  bar.finish();
  const Accuracy a = accuracy(res.samples);
  res.shape_acc = a.shape;
  res.color_acc = a.color;
  res.view_acc = a.view;
  res.view_exact_acc = a.view_exact;
  res.seconds_per_image = n ? sample_seconds / n : 0.0;
  if (o.reference) {
    const Accuracy ref = accuracy(res.reference);
    res.reference_shape_acc = ref.shape;
    res.reference_color_acc = ref.color;
    res.reference_view_acc = ref.view;
  }
  if (o.zero_shot) {
    const auto t0 = std::chrono::steady_clock::now();
    const ZeroShot z = zero_shot(prior, o.quick, o.camera, o.progress);
    res.zero_shot_seconds = seconds_since(t0);
    res.zero_shot_renders = z.renders;
    res.zero_shot_timesteps = z.timesteps;
    res.zero_shot_shape_acc = fraction(z.shape_right, z.renders);
    res.zero_shot_color_acc = fraction(z.color_right, z.renders);
  }
  return res;
}

std::string format_prior_eval(const PriorEvalResult& r) {
  // Accuracy per caption kind: singles, named objects, stacks, all.
  struct Tally {
    int right = 0, total = 0;
  };
  Tally t[3][4];  // [shape, color, view][kind]
  for (const auto& s : r.samples) {
    const int object = caption_labels(s.item.caption).object;
    const int kind = object == kStackClass ? 2 : object >= kFirstNamedClass ? 1 : 0;
    for (int k : {kind, 3}) {
      t[0][k].right += s.shape_ok, ++t[0][k].total;
      if (s.has_color) t[1][k].right += s.color_ok, ++t[1][k].total;
      t[2][k].right += s.view_ok, ++t[2][k].total;
    }
  }
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "eval-prior: %zu samples, %d DDIM steps (eta %.1f), cfg %.1f, camera %s\n",
                r.samples.size(), r.steps, r.eta, r.guidance_scale, r.camera ? "on" : "off");
  out += line;
  out += "            singles   named  stacks     all\n";
  const char* names[3] = {"shape", "color", "view"};
  for (int a = 0; a < 3; ++a) {
    std::snprintf(line, sizeof line, "%-10s", names[a]);
    out += line;
    for (int k = 0; k < 4; ++k) {
      if (t[a][k].total)
        std::snprintf(line, sizeof line, "  %6.3f", static_cast<double>(t[a][k].right) / t[a][k].total);
      else
        std::snprintf(line, sizeof line, "  %6s", "-");
      out += line;
    }
    out += "\n";
  }
  std::snprintf(line, sizeof line,
                "view, exact word (front/side/back are told apart only for chair, dumbbell): %.3f\n",
                r.view_exact_acc);
  out += line;
  if (!r.reference.empty()) {
    std::snprintf(
        line, sizeof line,
        "the classifier on real renders of the same set (its ceiling): shape %.3f, color %.3f, view %.3f\n",
        r.reference_shape_acc, r.reference_color_acc, r.reference_view_acc);
    out += line;
  }
  if (r.zero_shot_renders) {
    std::snprintf(
        line, sizeof line,
        "zero-shot by diffusion loss (%d real renders, %d timesteps): shape %.3f (of 5), color %.3f (of "
        "8), %.1f s\n",
        r.zero_shot_renders, r.zero_shot_timesteps, r.zero_shot_shape_acc, r.zero_shot_color_acc,
        r.zero_shot_seconds);
    out += line;
  }
  std::snprintf(line, sizeof line, "sampling: %.3f s/image\n", r.seconds_per_image);
  out += line;
  return out;
}

std::string format_prior_eval_samples(const PriorEvalResult& r) {
  auto line = [](const PriorEvalSample& s) {
    return s.item.prompt() + "  ->  " + s.predicted + "   [shape " + (s.shape_ok ? "ok" : "NO") + ", color " +
           (!s.has_color ? "-"
            : s.color_ok ? "ok"
                         : "NO") +
           ", view " + (s.view_ok ? "ok" : "NO") + "]\n";
  };
  std::string out = "samples:\n";
  for (const auto& s : r.samples) out += "  " + line(s);
  std::string misread;
  for (const auto& s : r.reference)
    if (!s.shape_ok || (s.has_color && !s.color_ok) || !s.view_ok) misread += "  " + line(s);
  if (!r.reference.empty())
    out += "real renders the classifier misreads:\n" + (misread.empty() ? "  none\n" : misread);
  return out;
}

std::string prior_eval_json_line(const PriorEvalResult& r) {
  auto round4 = [](double x) { return std::round(x * 1e4) / 1e4; };
  nlohmann::ordered_json j;
  j["shape_acc"] = round4(r.shape_acc);
  j["color_acc"] = round4(r.color_acc);
  j["view_acc"] = round4(r.view_acc);
  j["seconds_per_image"] = round4(r.seconds_per_image);
  if (r.zero_shot_renders) {
    j["zero_shot_shape_acc"] = round4(r.zero_shot_shape_acc);
    j["zero_shot_color_acc"] = round4(r.zero_shot_color_acc);
  }
  j["view_exact_acc"] = round4(r.view_exact_acc);
  if (!r.reference.empty()) {
    j["reference_shape_acc"] = round4(r.reference_shape_acc);
    j["reference_color_acc"] = round4(r.reference_color_acc);
    j["reference_view_acc"] = round4(r.reference_view_acc);
  }
  j["images"] = r.samples.size();
  j["steps"] = r.steps;
  j["eta"] = r.eta;
  j["cfg"] = r.guidance_scale;
  j["camera"] = r.camera;
  return j.dump();
}

}  // namespace nd
