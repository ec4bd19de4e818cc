// A diffusers scheduler configuration (scheduler/scheduler_config.json of a Stable Diffusion folder, or
// nerfdream's own prior), read as diffusers v0.25.1 `SchedulerClass.from_config(...)` reads it.
//
// Keys read (defaults are diffusers'; three depend on the scheduler class, so they stay unset until
// make_scheduler() resolves them for the class it builds):
//   _class_name            DDIMScheduler | DDPMScheduler | PNDMScheduler | EulerDiscreteScheduler are built;
//                          the other Stable-Diffusion-compatible diffusers schedulers (LMSDiscrete,
//                          EulerAncestralDiscrete, DPMSolverMultistep, ...) are accepted here and need an
//                          override class in make_scheduler(); any other name is an InputError.
//   num_train_timesteps    1000
//   beta_start, beta_end   0.0001, 0.02
//   beta_schedule          "linear" | "scaled_linear" | "squaredcos_cap_v2"  (ignored when trained_betas)
//   trained_betas          null or [num_train_timesteps] numbers
//   prediction_type        "epsilon" | "v_prediction" | "sample"
//   timestep_spacing       "leading" | "trailing" | "linspace"; unset → Euler "linspace", others "leading"
//   steps_offset           0 (added to "leading" timesteps)
//   clip_sample            unset → true (DDIM, DDPM);  clip_sample_range 1.0
//   set_alpha_to_one       unset → true (DDIM), false (PNDM)
//   thresholding           false; dynamic_thresholding_ratio 0.995; sample_max_value 1.0 (DDIM, DDPM)
//   rescale_betas_zero_snr false (DDIM, DDPM, Euler)
//   skip_prk_steps         false (PNDM)
//   variance_type          "fixed_small" | "fixed_small_log" | "fixed_large" | "fixed_large_log" |
//                          "learned_range" (DDPM)
//   interpolation_type     "linear" | "log_linear"; use_karras_sigmas false; sigma_min, sigma_max null;
//                          timestep_type "discrete" | "continuous" (Euler)
// Like diffusers: a key listed in "_use_default_values" counts as absent (its writer used its own class's
// default, so the class we build uses its own); a null value counts as absent; a class ignores the keys it
// does not take (e.g. PNDM ignores clip_sample, thresholding and rescale_betas_zero_snr). Every other key is
// ignored too and listed in `ignored_keys`; those seen in real files are "_diffusers_version", the
// pre-0.10 alias "predict_epsilon", and other classes' options: DPMSolver/DEIS/UniPC ("solver_order",
// "algorithm_type", "solver_type", "lower_order_final", "euler_at_final", "use_lu_lambdas",
// "lambda_min_clipped", "final_sigmas_type", "predict_x0", "solver_p", "disable_corrector"), LCM
// ("original_inference_steps", "timestep_scaling"), "use_exponential_sigmas", "use_beta_sigmas".
// A present key with the wrong JSON type or an unknown word is an InputError "<source>: <key>: ...".
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "diffusion/noise_schedule.h"

namespace nd {

enum class TimestepSpacing { kLeading, kTrailing, kLinspace };
TimestepSpacing parse_timestep_spacing(const std::string& word,
                                       const std::string& field = "timestep_spacing");
const char* timestep_spacing_name(TimestepSpacing spacing);

struct SchedulerConfig {
  std::string source = "scheduler_config";  // file name for messages
  std::string class_name;                   // "_class_name"; empty when the file has none
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.0001;
  double beta_end = 0.02;
  std::string beta_schedule = "linear";
  std::vector<double> trained_betas;  // empty: none
  PredictionType prediction_type = PredictionType::kEpsilon;
  std::optional<TimestepSpacing> timestep_spacing;
  int64_t steps_offset = 0;
  std::optional<bool> clip_sample;
  double clip_sample_range = 1.0;
  std::optional<bool> set_alpha_to_one;
  bool thresholding = false;
  double dynamic_thresholding_ratio = 0.995;
  double sample_max_value = 1.0;
  bool rescale_betas_zero_snr = false;
  bool skip_prk_steps = false;
  std::string variance_type = "fixed_small";
  std::string interpolation_type = "linear";
  bool use_karras_sigmas = false;
  std::optional<double> sigma_min, sigma_max;
  std::string timestep_type = "discrete";
  std::vector<std::string> ignored_keys;  // keys present in the JSON that nothing reads (sorted)

  // Parses and validates a scheduler_config.json object; `source` names it in error messages.
  static SchedulerConfig from_json(const nlohmann::json& j, const std::string& source = "scheduler_config");
  // Reads the file `path` (InputError when missing or not JSON) and parses it with from_json.
  static SchedulerConfig load(const std::string& path);

  // The schedule these settings describe (trained_betas, or beta_schedule; zero-SNR rescaling applied when
  // rescale_betas_zero_snr and `allow_rescale`: PNDM ignores the key as diffusers does).
  NoiseSchedule make_noise_schedule(bool allow_rescale = true) const;
};

}  // namespace nd
