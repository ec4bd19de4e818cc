#include "diffusion/scheduler_config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "core/error.h"

namespace nd {

TimestepSpacing parse_timestep_spacing(const std::string& word, const std::string& field) {
  if (word == "leading") return TimestepSpacing::kLeading;
  if (word == "trailing") return TimestepSpacing::kTrailing;
  if (word == "linspace") return TimestepSpacing::kLinspace;
  throw InputError(field + ": unknown timestep spacing '" + word +
                   "' (expected leading, trailing or linspace)");
}

const char* timestep_spacing_name(TimestepSpacing spacing) {
  switch (spacing) {
    case TimestepSpacing::kLeading:
      return "leading";
    case TimestepSpacing::kTrailing:
      return "trailing";
    case TimestepSpacing::kLinspace:
      return "linspace";
  }
  return "?";
}

namespace {

// diffusers v0.25.1's Stable-Diffusion-compatible schedulers (KarrasDiffusionSchedulers, plus LCM).
const std::set<std::string>& known_classes() {
  static const std::set<std::string> names = {"DDIMScheduler",
                                              "DDPMScheduler",
                                              "PNDMScheduler",
                                              "EulerDiscreteScheduler",
                                              "LMSDiscreteScheduler",
                                              "EulerAncestralDiscreteScheduler",
                                              "HeunDiscreteScheduler",
                                              "DPMSolverMultistepScheduler",
                                              "DPMSolverSinglestepScheduler",
                                              "DPMSolverSDEScheduler",
                                              "KDPM2DiscreteScheduler",
                                              "KDPM2AncestralDiscreteScheduler",
                                              "DEISMultistepScheduler",
                                              "UniPCMultistepScheduler",
                                              "LCMScheduler"};
  return names;
}

// Typed access to the keys of one config object, with diffusers' "absent" rules.
class KeyReader {
 public:
  KeyReader(const nlohmann::json& j, std::string source) : j_(j), source_(std::move(source)) {
    require(j_.is_object(), source_ + ": expected a JSON object");
    auto it = j_.find("_use_default_values");
    if (it != j_.end() && !it->is_null()) {
      require(it->is_array(), where("_use_default_values") + "expected a list of key names");
      for (const auto& k : *it) {
        require(k.is_string(), where("_use_default_values") + "expected a list of key names");
        defaulted_.insert(k.get<std::string>());
      }
    }
    used_.insert("_use_default_values");
  }

  // The value of `key`, or nullptr when absent, null or listed in _use_default_values.
  const nlohmann::json* find(const char* key) {
    used_.insert(key);
    if (defaulted_.count(key)) return nullptr;
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool get(const char* key, bool& out) {
    const nlohmann::json* v = find(key);
    if (!v) return false;
    require(v->is_boolean(), where(key) + "expected true or false, got " + v->dump());
    out = v->get<bool>();
    return true;
  }
  bool get(const char* key, int64_t& out) {
    const nlohmann::json* v = find(key);
    if (!v) return false;
    const bool integral =
        v->is_number_integer() || (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
                                   std::abs(v->get<double>()) < 1e15);
    require(integral, where(key) + "expected an integer, got " + v->dump());
    out = v->is_number_integer() ? v->get<int64_t>() : static_cast<int64_t>(v->get<double>());
    return true;
  }
  bool get(const char* key, double& out) {
    const nlohmann::json* v = find(key);
    if (!v) return false;
    require(v->is_number() && std::isfinite(v->get<double>()),
            where(key) + "expected a number, got " + v->dump());
    out = v->get<double>();
    return true;
  }
  bool get(const char* key, std::string& out) {
    const nlohmann::json* v = find(key);
    if (!v) return false;
    require(v->is_string(), where(key) + "expected a string, got " + v->dump());
    out = v->get<std::string>();
    return true;
  }
  std::string where(const std::string& key) const { return source_ + ": " + key + ": "; }
  std::string field(const std::string& key) const { return source_ + ": " + key; }

  std::vector<std::string> unused() const {
    std::vector<std::string> out;
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!used_.count(it.key())) out.push_back(it.key());
    return out;  // json objects iterate in sorted key order
  }

 private:
  const nlohmann::json& j_;
  std::string source_;
  std::set<std::string> defaulted_;
  std::set<std::string> used_;
};

void require_one_of(const std::string& value, std::initializer_list<const char*> allowed,
                    const std::string& where) {
  std::string list;
  for (const char* a : allowed) {
    if (value == a) return;
    list += list.empty() ? a : std::string(", ") + a;
  }
  throw InputError(where + "unknown value '" + value + "' (expected one of: " + list + ")");
}

}  // namespace

SchedulerConfig SchedulerConfig::from_json(const nlohmann::json& j, const std::string& source) {
  SchedulerConfig c;
  c.source = source;
  KeyReader r(j, source);

  if (r.get("_class_name", c.class_name))
    require(known_classes().count(c.class_name) > 0,
            r.where("_class_name") + "unknown scheduler class '" + c.class_name +
                "' (nerfdream builds DDIMScheduler, DDPMScheduler, PNDMScheduler, EulerDiscreteScheduler)");

  r.get("num_train_timesteps", c.num_train_timesteps);
  require(c.num_train_timesteps >= 2 && c.num_train_timesteps <= 1000000,
          r.where("num_train_timesteps") + "must be in [2, 1000000], got " +
              std::to_string(c.num_train_timesteps));
  r.get("beta_start", c.beta_start);
  r.get("beta_end", c.beta_end);
  require(c.beta_start >= 0 && c.beta_start < 1, r.where("beta_start") + "must be in [0, 1)");
  require(c.beta_end >= 0 && c.beta_end < 1, r.where("beta_end") + "must be in [0, 1)");
  r.get("beta_schedule", c.beta_schedule);

  if (const nlohmann::json* tb = r.find("trained_betas")) {
    require(tb->is_array(), r.where("trained_betas") + "expected null or a list of numbers");
    for (const auto& v : *tb) {
      require(v.is_number(), r.where("trained_betas") + "expected null or a list of numbers");
      const double b = v.get<double>();
      require(std::isfinite(b) && b >= 0 && b <= 1,
              r.where("trained_betas") + "every beta must be in [0, 1]");
      c.trained_betas.push_back(b);
    }
    require(static_cast<int64_t>(c.trained_betas.size()) == c.num_train_timesteps,
            r.where("trained_betas") + "has " + std::to_string(c.trained_betas.size()) +
                " entries, num_train_timesteps is " + std::to_string(c.num_train_timesteps));
  } else {
    require_one_of(c.beta_schedule, {"linear", "scaled_linear", "squaredcos_cap_v2"},
                   r.where("beta_schedule"));
  }

  std::string word;
  if (r.get("prediction_type", word))
    c.prediction_type = parse_prediction_type(word, r.field("prediction_type"));
  if (r.get("timestep_spacing", word))
    c.timestep_spacing = parse_timestep_spacing(word, r.field("timestep_spacing"));
  r.get("steps_offset", c.steps_offset);
  require(c.steps_offset >= 0 && c.steps_offset < c.num_train_timesteps,
          r.where("steps_offset") + "must be in [0, num_train_timesteps)");

  bool flag = false;
  if (r.get("clip_sample", flag)) c.clip_sample = flag;
  r.get("clip_sample_range", c.clip_sample_range);
  require(c.clip_sample_range > 0, r.where("clip_sample_range") + "must be > 0");
  if (r.get("set_alpha_to_one", flag)) c.set_alpha_to_one = flag;
  r.get("thresholding", c.thresholding);
  r.get("dynamic_thresholding_ratio", c.dynamic_thresholding_ratio);
  require(c.dynamic_thresholding_ratio > 0 && c.dynamic_thresholding_ratio <= 1,
          r.where("dynamic_thresholding_ratio") + "must be in (0, 1]");
  r.get("sample_max_value", c.sample_max_value);
  require(c.sample_max_value >= 1, r.where("sample_max_value") + "must be >= 1");
  r.get("rescale_betas_zero_snr", c.rescale_betas_zero_snr);
  r.get("skip_prk_steps", c.skip_prk_steps);

  // variance_type is also a DPMSolver key with other words: validate it only where DDPM reads it.
  if (r.get("variance_type", c.variance_type) && c.class_name == "DDPMScheduler")
    require_one_of(c.variance_type,
                   {"fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "learned_range"},
                   r.where("variance_type"));

  if (r.get("interpolation_type", c.interpolation_type))
    require_one_of(c.interpolation_type, {"linear", "log_linear"}, r.where("interpolation_type"));
  r.get("use_karras_sigmas", c.use_karras_sigmas);
  double s = 0;
  if (r.get("sigma_min", s)) {
    require(s > 0, r.where("sigma_min") + "must be > 0");
    c.sigma_min = s;
  }
  if (r.get("sigma_max", s)) {
    require(s > 0, r.where("sigma_max") + "must be > 0");
    c.sigma_max = s;
  }
  if (r.get("timestep_type", c.timestep_type))
    require_one_of(c.timestep_type, {"discrete", "continuous"}, r.where("timestep_type"));

  c.ignored_keys = r.unused();
  return c;
}

SchedulerConfig SchedulerConfig::load(const std::string& path) {
  std::ifstream in(path);
  require(in.good(), path + ": cannot open the scheduler config");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  return from_json(j, path);
}

NoiseSchedule SchedulerConfig::make_noise_schedule(bool allow_rescale) const {
  at::Tensor betas;
  if (!trained_betas.empty()) {
    betas = at::tensor(trained_betas, at::kDouble).to(at::kFloat);
  } else if (beta_schedule == "linear") {
    betas = NoiseSchedule::linear(num_train_timesteps, beta_start, beta_end).betas();
  } else if (beta_schedule == "scaled_linear") {
    betas = NoiseSchedule::scaled_linear(num_train_timesteps, beta_start, beta_end).betas();
  } else if (beta_schedule == "squaredcos_cap_v2") {
    betas = NoiseSchedule::squaredcos_cap_v2(num_train_timesteps).betas();
  } else {
    throw InputError(source + ": beta_schedule: unknown value '" + beta_schedule + "'");
  }
  if (rescale_betas_zero_snr && allow_rescale) betas = NoiseSchedule::rescale_zero_terminal_snr(betas);
  return NoiseSchedule(betas);
}

}  // namespace nd
