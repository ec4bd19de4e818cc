#include "prior/tiny_prior.h"

#include <torch/csrc/autograd/grad_mode.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "core/config_json.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace nd {

namespace {

// One list of keys for both directions (core/config_json.h).
template <class IO, class C>
void visit(IO& io, C& c) {
  io.get("resolution", c.resolution);
  io.get("prediction_type", c.prediction_type);
  io.get("beta_schedule", c.beta_schedule);
  io.get("num_train_timesteps", c.num_train_timesteps);
  {
    auto u = io.section("unet");
    u.get("patch", c.unet.patch);
    u.get("channels", c.unet.channels);
    u.get("attention", c.unet.attention);
    u.get("layers_per_level", c.unet.layers_per_level);
    u.get("groups", c.unet.groups);
    u.get("heads", c.unet.heads);
    u.finish();
  }
  {
    auto t = io.section("text");
    t.get("width", c.text.width);
    t.get("layers", c.text.layers);
    t.get("heads", c.text.heads);
    t.finish();
  }
  {
    auto v = io.section("views");
    v.get("elevation_min", c.views.elevation_min);
    v.get("elevation_max", c.views.elevation_max);
    v.get("radius_min", c.views.radius_min);
    v.get("radius_max", c.views.radius_max);
    v.get("fov_min", c.views.fov_min);
    v.get("fov_max", c.views.fov_max);
    v.finish();
  }
}

}  // namespace

nlohmann::json TinyPriorConfig::to_json() const {
  ConfigWriter w;
  visit(w, *this);
  return w.json();
}

TinyPriorConfig TinyPriorConfig::from_json(const nlohmann::json& j) {
  TinyPriorConfig c;
  ConfigReader r(j, "");
  visit(r, c);
  r.finish();
  require(c.resolution >= 8 && c.resolution <= 512, "prior config: resolution must be in [8, 512]");
  require(!c.unet.channels.empty() && c.unet.channels.size() == c.unet.attention.size(),
          "prior config: unet.channels and unet.attention need one entry per level");
  for (int ch : c.unet.channels)
    require(ch > 0 && ch % c.unet.groups == 0 && ch % c.unet.heads == 0,
            "prior config: every unet channel count must be a multiple of groups and heads");
  require(c.unet.patch >= 1 && c.resolution % (c.unet.patch << (c.unet.channels.size() - 1)) == 0,
          "prior config: resolution must be a multiple of patch · 2^(levels − 1)");
  require(c.text.width % c.text.heads == 0, "prior config: text.width must be a multiple of text.heads");
  require(c.num_train_timesteps >= 2, "prior config: num_train_timesteps must be >= 2");
  parse_prediction_type(c.prediction_type, "prior config: prediction_type");
  return c;
}

namespace {

NoiseSchedule make_schedule(const TinyPriorConfig& c) {
  if (c.beta_schedule == "squaredcos_cap_v2") return NoiseSchedule::squaredcos_cap_v2(c.num_train_timesteps);
  if (c.beta_schedule == "linear") return NoiseSchedule::linear(c.num_train_timesteps, 1e-4, 0.02);
  throw InputError("prior config: beta_schedule must be squaredcos_cap_v2 or linear, got '" +
                   c.beta_schedule + "'");
}

}  // namespace

TinyPrior::TinyPrior(const TinyPriorConfig& config)
    : config_(config),
      schedule_(make_schedule(config)),
      prediction_type_(parse_prediction_type(config.prediction_type)) {
  config_.text.vocab_size = static_cast<int>(tokenizer_.vocab_size());
  config_.text.max_tokens = WordTokenizer::kMaxTokens;
  config_.unet.context_dim = config_.text.width;
  config_.unet.view_features = kViewFeatures;
  text_encoder_ = TinyTextEncoder(config_.text);
  unet_ = TinyUNet(config_.unet);
}

std::map<std::string, at::Tensor> TinyPrior::named_parameters() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : text_encoder_->named_parameters()) out["text_encoder." + p.key()] = p.value();
  for (const auto& p : unet_->named_parameters()) out["unet." + p.key()] = p.value();
  return out;
}

int64_t TinyPrior::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, p] : named_parameters()) n += p.numel();
  return n;
}

void TinyPrior::train(bool on) {
  text_encoder_->train(on);
  unet_->train(on);
}

at::Tensor TinyPrior::predict(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& ids,
                              const at::Tensor& views) {
  return unet_->forward(x_t, t, text_encoder_->forward(ids), views);
}

at::Tensor TinyPrior::predict_epsilon_guided(const at::Tensor& x_t, const at::Tensor& t,
                                             const at::Tensor& ids, const at::Tensor& views,
                                             double guidance_scale) {
  const int64_t b = x_t.size(0);
  const at::Tensor uncond = tokenizer_.encode_unconditional().unsqueeze(0).expand({b, -1});
  const at::Tensor tt = t.dim() == 0 ? t.expand({b}) : t;
  const at::Tensor x2 = at::cat({x_t, x_t}), t2 = at::cat({tt, tt});
  const at::Tensor out = predict(x2, t2, at::cat({ids, uncond}), at::cat({views, views}));
  const at::Tensor eps = schedule_.to_epsilon(prediction_type_, out, x2, t2);
  const auto parts = eps.chunk(2, 0);
  return parts[1] + guidance_scale * (parts[0] - parts[1]);
}

void TinyPrior::save(const std::string& path, const std::map<std::string, std::string>& extra) const {
  Checkpoint ckpt;
  ckpt.config = config_.to_json();
  ckpt.extra = extra;
  if (auto it = extra.find("step"); it != extra.end()) ckpt.step = std::stoll(it->second);
  for (const auto& [name, p] : named_parameters()) ckpt.tensors[name] = p.detach();
  save_checkpoint(path, ckpt, kPriorCheckpoint);
}

void TinyPrior::load_tensors(const std::map<std::string, at::Tensor>& tensors, const std::string& prefix,
                             const std::string& source) {
  restore_tensors(source, tensors, prefix, named_parameters());
}

std::unique_ptr<TinyPrior> TinyPrior::load(const std::string& path) {
  Checkpoint ckpt = load_checkpoint(path, kPriorCheckpoint);
  TinyPriorConfig config;
  try {
    // Weights files hold the model config; training checkpoints hold {model, data, train}.
    config =
        TinyPriorConfig::from_json(ckpt.config.contains("model") ? ckpt.config.at("model") : ckpt.config);
  } catch (const InputError& e) {
    throw InputError(path + ": " + e.what());
  }
  auto prior = std::make_unique<TinyPrior>(config);
  const bool has_ema = ckpt.tensors.count("ema.unet.conv_in.weight") > 0;
  const bool is_training = ckpt.tensors.count("model.unet.conv_in.weight") > 0;
  prior->load_tensors(ckpt.tensors, has_ema ? "ema." : is_training ? "model." : "", path);
  prior->train(false);
  return prior;
}

std::string find_shipped_model(const std::string& relative, const char* env_var, const std::string& what,
                               const std::string& how_to_make) {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv(env_var); env && *env) {
    require(fs::exists(env), std::string(env_var) + "=" + env + ": no such file");
    return env;
  }
  std::vector<std::string> tried;
#ifdef NERFDREAM_SOURCE_ROOT
  tried.push_back(std::string(NERFDREAM_SOURCE_ROOT) + "/" + relative);
#endif
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    tried.push_back((exe.parent_path() / ".." / relative).lexically_normal().string());
    tried.push_back((exe.parent_path() / relative).lexically_normal().string());
  }
  for (const auto& p : tried)
    if (fs::exists(p)) return p;
  std::string where;
  for (size_t i = 0; i < tried.size(); ++i)
    if (std::find(tried.begin(), tried.begin() + i, tried[i]) == tried.begin() + i)
      where += (where.empty() ? "" : ", ") + tried[i];
  throw InputError("no " + what + " found (looked at " + where + "); set " + env_var + " or " + how_to_make);
}

std::string default_prior_path() {
  return find_shipped_model("models/tiny-prior/prior.safetensors", "NERFDREAM_PRIOR", "tiny prior",
                            "pass --prior FILE (train one with `nerfdream train-prior`)");
}

}  // namespace nd
