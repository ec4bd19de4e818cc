#include "prior/prior_trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"
#include "io/checkpoint.h"
#include "io/image_io.h"
#include "optim/adam.h"
#include "prior/prior_sampler.h"

namespace nd {
namespace fs = std::filesystem;

nlohmann::json PriorTrainOptions::to_json() const {
  return {{"model", model.to_json()},
          {"data",
           {{"size", data.size},
            {"resolution", data.resolution},
            {"supersample", data.supersample},
            {"seed", data.seed},
            {"view_suffix_probability", data.view_suffix_probability},
            {"kind_mix", data.kind_mix}}},
          {"train",
           {{"steps", steps},
            {"batch", batch},
            {"lr", lr},
            {"warmup_steps", warmup_steps},
            {"grad_clip", grad_clip},
            {"ema_decay", ema_decay},
            {"caption_dropout", caption_dropout},
            {"view_dropout", view_dropout},
            {"min_snr_gamma", min_snr_gamma},
            {"x0_weight_max", x0_weight_max},
            {"high_noise_fraction", high_noise_fraction},
            {"only_captions", only_captions},
            {"mirror", mirror},
            {"seed", seed}}}};
}

at::Tensor prior_loss_weights(const at::Tensor& snr, double min_snr_gamma, double x0_weight_max,
                              bool epsilon_prediction) {
  at::Tensor x0_weight = at::clamp_max(snr, min_snr_gamma);
  if (x0_weight_max > 0) x0_weight = at::maximum(x0_weight, at::clamp_max(snr * x0_weight_max, 1.0));
  // The x0 error is the ε error / √SNR, and the v error / √(SNR + 1).
  return epsilon_prediction ? x0_weight / snr : x0_weight / (snr + 1);
}

at::Tensor sample_train_timesteps(int64_t num_timesteps, int64_t batch, double high_noise_fraction,
                                  at::Generator& gen) {
  const at::Tensor t = at::randint(num_timesteps, {batch}, gen, at::kLong);
  if (high_noise_fraction <= 0) return t;
  const int64_t half = num_timesteps / 2;
  const at::Tensor high = half + at::randint(num_timesteps - half, {batch}, gen, at::kLong);
  return at::where(at::rand({batch}, gen) < high_noise_fraction, high, t);
}

namespace {

// The fixed prompts and views of the periodic sample grids: what a reader checks by eye.
struct GridEntry {
  const char* prompt;
  View view;
};
const std::vector<GridEntry>& grid_entries() {
  static const std::vector<GridEntry> entries = {
      {"a red cube, front view", {15, 20, 3, 45}},
      {"a blue sphere, side view", {15, 90, 3, 45}},
      {"a yellow cone, front view", {10, -10, 3, 45}},
      {"a green torus, overhead view", {70, 30, 3, 45}},
      {"a purple cylinder, back view", {20, 170, 3, 45}},
      {"a red sphere on top of a blue cube, front view", {15, 0, 3, 45}},
      {"a chair, side view", {20, 80, 3, 45}},
      {"a mushroom, front view", {15, 10, 3, 45}},
  };
  return entries;
}

at::Tensor sample_grid(TinyPrior& prior, int steps) {
  std::vector<std::string> prompts;
  std::vector<View> views;
  for (const auto& e : grid_entries()) {
    prompts.push_back(e.prompt);
    views.push_back(e.view);
  }
  PriorSampleOptions so;
  so.steps = steps;
  const at::Tensor images = sample_prior(prior, prompts, views, so);  // [8,3,R,R]
  std::vector<at::Tensor> tiles;
  for (int64_t i = 0; i < images.size(0); ++i) tiles.push_back(images[i].permute({1, 2, 0}));
  return image_grid(tiles, 4);
}

void copy_parameters(const std::map<std::string, at::Tensor>& from,
                     const std::map<std::string, at::Tensor>& to) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, p] : to) p.copy_(from.at(name));
}

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%07lld", static_cast<long long>(step));
  return buf;
}

}  // namespace

PriorTrainResult train_prior(const PriorTrainOptions& options_in) {
  PriorTrainOptions o = options_in;
  require(!o.out_dir.empty(), "train-prior: --out is required");
  require(o.steps >= 1, "--steps must be >= 1");
  require(o.batch >= 1 && o.batch <= 4096, "--batch must be in [1, 4096]");
  require(o.lr > 0 && o.lr < 1, "--lr must be in (0, 1)");
  require(o.ema_decay >= 0 && o.ema_decay < 1, "--ema-decay must be in [0, 1)");
  require(o.caption_dropout >= 0 && o.caption_dropout < 1, "caption dropout must be in [0, 1)");
  require(o.view_dropout >= 0 && o.view_dropout <= 1, "view dropout must be in [0, 1]");
  require(o.min_snr_gamma > 0, "--min-snr-gamma must be > 0");
  require(o.x0_weight_max >= 0 && o.x0_weight_max <= 1e4, "--x0-weight-max must be in [0, 10000]");
  require(o.high_noise_fraction >= 0 && o.high_noise_fraction <= 1,
          "--high-noise-fraction must be in [0, 1]");
  validate_kind_mix(o.data.kind_mix, "data.kind_mix");
  for (const std::string& c : o.only_captions) canonical_caption_index(c);  // before rendering any data
  const std::string ckpt_path = (fs::path(o.out_dir) / "checkpoint.safetensors").string();

  // Resume: the checkpoint's model and data define the run; --steps and the schedule may change.
  Checkpoint resumed;
  if (o.resume) {
    require(fs::exists(ckpt_path), "--resume: no checkpoint at " + ckpt_path);
    resumed = load_checkpoint(ckpt_path, kPriorCheckpoint);
    try {
      o.model = TinyPriorConfig::from_json(resumed.config.at("model"));
      const auto& d = resumed.config.at("data");
      o.data.size = d.at("size").get<int64_t>();
      o.data.resolution = d.at("resolution").get<int>();
      o.data.supersample = d.at("supersample").get<int>();
      o.data.seed = d.at("seed").get<uint64_t>();
      o.data.view_suffix_probability = d.at("view_suffix_probability").get<double>();
      o.data.kind_mix = d.value("kind_mix", PriorDatasetOptions{}.kind_mix);
    } catch (const nlohmann::json::exception&) {
      throw InputError(ckpt_path + ": corrupt training config in the checkpoint");
    }
  } else {
    require(!fs::exists(ckpt_path),
            o.out_dir + " already holds a training run: pass --resume to continue it");
  }
  // --init: the weights' own architecture.
  Checkpoint init;
  if (!o.init_from.empty()) {
    require(!o.resume, "--init and --resume exclude each other");
    init = load_checkpoint(o.init_from, kPriorCheckpoint);
    try {
      o.model = TinyPriorConfig::from_json(init.config);
    } catch (const InputError& e) {
      throw InputError(o.init_from + ": " + e.what());
    }
  }
  o.data.resolution = o.model.resolution;
  o.data.views = o.model.views;

  at::manual_seed(o.seed);  // the initial weights come from the global generator
  TinyPrior model(o.model), ema(o.model);
  const auto params = model.named_parameters();
  const auto ema_params = ema.named_parameters();
  copy_parameters(params, ema_params);
  std::vector<at::Tensor> param_list;
  for (const auto& [name, p] : params) param_list.push_back(p);
  FusedAdam adam({AdamGroup{"model", param_list, o.lr, 0.0}}, AdamOptions{0.9, 0.999, 1e-8});
  at::Generator gen = at::detail::createCPUGenerator(o.seed);
  int64_t step = 0;
  std::string log_text;
  if (o.resume) {
    restore_tensors(ckpt_path, resumed.tensors, "model.", params);
    restore_tensors(ckpt_path, resumed.tensors, "ema.", ema_params);
    adam.load_state(resumed.tensors, "optim.");
    auto g = resumed.tensors.find("rng.torch");
    require(g != resumed.tensors.end(), ckpt_path + ": checkpoint lacks the generator state");
    gen.set_state(g->second);
    step = resumed.step;
    const auto log_path = fs::path(o.out_dir) / "train_log.jsonl";
    if (fs::exists(log_path)) log_text = read_file(log_path.string());
  }
  if (!o.init_from.empty()) {
    restore_tensors(o.init_from, init.tensors, "", params);
    restore_tensors(o.init_from, init.tensors, "", ema_params);
    step = init.step;
  }
  fs::create_directories(fs::path(o.out_dir) / "samples");
  write_file_atomically((fs::path(o.out_dir) / "config.json").string(), o.to_json().dump(2) + "\n");

  // The data: loaded, or rendered (and cached when a path is given).
  PriorDataset data;
  if (!o.data_path.empty() && fs::exists(o.data_path)) {
    PriorDatasetOptions stored;
    data = load_prior_dataset(o.data_path, &stored);
    require(stored.seed == o.data.seed && stored.size >= o.data.size &&
                stored.resolution == o.data.resolution && stored.kind_mix == o.data.kind_mix,
            o.data_path + ": this dataset (seed " + std::to_string(stored.seed) + ", " +
                std::to_string(stored.size) + " images at " + std::to_string(stored.resolution) +
                ", kind mix " + nlohmann::json(stored.kind_mix).dump() + ") is not the one the run asks for");
    if (stored.size > o.data.size) data = data.head(o.data.size);
  } else {
    ProgressBar bar(o.data.size, "rendering dataset", o.progress);
    data = make_prior_dataset(o.data, [&](int64_t done) { bar.update(done); });
    bar.finish();
    if (!o.data_path.empty()) save_prior_dataset(o.data_path, data, o.data);
  }
  if (!o.only_captions.empty()) data = select_captions(data, o.only_captions);
  const int64_t n = data.size();
  {
    // What the prior learns from, for a reader: the first 16 images.
    std::vector<at::Tensor> tiles;
    for (int64_t i = 0; i < std::min<int64_t>(16, n); ++i) tiles.push_back(data.images[i]);
    save_png((fs::path(o.out_dir) / "samples" / "data.png").string(), image_grid(tiles, 8));
  }
  const at::Tensor uncond = model.tokenizer().encode_unconditional();

  // Schedule coefficients per timestep for the loss weights.
  const at::Tensor snr_all = model.schedule().snr(at::arange(o.model.num_train_timesteps, at::kLong));
  const bool eps_pred = model.prediction_type() == PredictionType::kEpsilon;
  const at::Tensor weight_all = prior_loss_weights(snr_all, o.min_snr_gamma, o.x0_weight_max, eps_pred);

  auto save_all = [&] {
    Checkpoint c;
    c.config = o.to_json();
    c.step = step;
    for (const auto& [name, p] : params) c.tensors["model." + name] = p.detach();
    for (const auto& [name, p] : ema_params) c.tensors["ema." + name] = p.detach();
    for (const auto& [name, t] : adam.state("optim.")) c.tensors[name] = t;
    c.tensors["rng.torch"] = gen.get_state();
    save_checkpoint(ckpt_path, c, kPriorCheckpoint);
    ema.save((fs::path(o.out_dir) / "prior.safetensors").string(),
             {{"step", std::to_string(step)}, {"trained_by", "nerfdream train-prior"}});
    write_file_atomically((fs::path(o.out_dir) / "train_log.jsonl").string(), log_text);
  };

  PriorTrainResult result;
  ProgressBar bar(o.steps, "train-prior", o.progress);
  bar.update(step);
  model.train(true);
  const auto start = std::chrono::steady_clock::now();
  double loss_sum = 0;
  int64_t loss_count = 0;
  const int64_t r = o.model.resolution;
  while (step < o.steps) {
    if (o.interrupt && o.interrupt->load()) {
      result.interrupted = true;
      break;
    }
    const double minutes =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 60.0;
    if (o.max_minutes > 0 && minutes >= o.max_minutes) break;

    // --- batch
    const int64_t b = o.batch;
    const at::Tensor idx = at::randint(n, {b}, gen, at::kLong);
    at::Tensor x0 = data.images.index_select(0, idx).permute({0, 3, 1, 2}).to(at::kFloat).div_(127.5).sub_(1);
    at::Tensor views = data.views.index_select(0, idx).clone();
    at::Tensor ids = data.tokens.index_select(0, idx);
    if (o.mirror) {
      const at::Tensor flip = at::rand({b}, gen) < 0.5;
      x0 = at::where(flip.view({b, 1, 1, 1}), x0.flip({3}), x0);
      views.select(1, 1).copy_(at::where(flip, -views.select(1, 1), views.select(1, 1)));
    }
    const at::Tensor drop_caption = at::rand({b}, gen) < o.caption_dropout;
    ids = at::where(drop_caption.view({b, 1}), uncond.unsqueeze(0), ids);
    const at::Tensor known = at::rand({b}, gen) >= o.view_dropout;
    const at::Tensor view_feat = view_features(views, known);
    const at::Tensor t = sample_train_timesteps(o.model.num_train_timesteps, b, o.high_noise_fraction, gen);
    const at::Tensor noise = at::randn({b, 3, r, r}, gen);
    const at::Tensor x_t = model.schedule().add_noise(x0, noise, t);
    const at::Tensor target = eps_pred ? noise : model.schedule().velocity(x0, noise, t);

    // --- step
    const double warm = o.warmup_steps > 0 ? std::min(1.0, (step + 1.0) / o.warmup_steps) : 1.0;
    adam.set_lr("model", o.lr * warm);
    adam.zero_grad();
    const at::Tensor out = model.predict(x_t, t, ids, view_feat);
    const at::Tensor per_item = (out - target).pow(2).mean({1, 2, 3});
    const at::Tensor loss = (per_item * weight_all.index_select(0, t)).mean();
    loss.backward();
    const double loss_value = loss.item<double>();
    require(std::isfinite(loss_value), "train-prior: the loss became " + std::to_string(loss_value) +
                                           " at step " + std::to_string(step) +
                                           "; the last checkpoint is kept (try a lower --lr)");
    if (o.grad_clip > 0) {
      double sq = 0;
      for (auto& p : param_list)
        if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
      const double norm = std::sqrt(sq);
      if (norm > o.grad_clip)
        for (auto& p : param_list)
          if (p.grad().defined()) p.mutable_grad().mul_(o.grad_clip / norm);
    }
    adam.step();
    {
      torch::NoGradGuard no_grad;
      // Warm-up of the EMA as in diffusers' EMAModel: decay grows from 0 so early weights wash out.
      const double d = std::min(o.ema_decay, (1.0 + step) / (10.0 + step));
      for (const auto& [name, p] : params) ema_params.at(name).mul_(d).add_(p.detach(), 1 - d);
    }
    ++step;
    ++result.steps_done;
    loss_sum += loss_value;
    ++loss_count;

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    bar.update(step, {{"loss", loss_value}, {"img/s", result.steps_done * b / std::max(seconds, 1e-9)}});
    if (step % o.log_every == 0 || step == o.steps) {
      std::ostringstream line;
      line << nlohmann::json({{"step", step},
                              {"loss", loss_sum / loss_count},
                              {"images_per_second", result.steps_done * b / std::max(seconds, 1e-9)},
                              {"seconds", seconds}})
                  .dump()
           << "\n";
      log_text += line.str();
      result.final_loss = loss_sum / loss_count;
      loss_sum = 0;
      loss_count = 0;
    }
    if (o.sample_every > 0 && step % o.sample_every == 0)
      save_png((fs::path(o.out_dir) / "samples" / (step_name(step) + ".png")).string(), sample_grid(ema, 25));
    if (o.checkpoint_every > 0 && step % o.checkpoint_every == 0) save_all();
    model.train(true);
  }
  bar.finish();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.step = step;
  result.images_per_second = result.steps_done * o.batch / std::max(result.seconds, 1e-9);
  if (loss_count > 0) result.final_loss = loss_sum / loss_count;
  save_all();
  return result;
}

}  // namespace nd
