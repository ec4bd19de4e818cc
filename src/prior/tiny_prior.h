// The tiny prior: word tokenizer → tiny text encoder → camera-conditioned pixel UNet → noise schedule.
// It has the shape of a Stable Diffusion pipeline (tokenizer, text encoder, ε/v-predicting UNet, scheduler)
// so that samplers and guidance use either through the same calls (predict / predict_guided).
//
// Weights file: safetensors with "text_encoder.*" and "unet.*" tensors (the modules' parameter names) and
// the metadata of io/checkpoint.h (format "nerfdream.prior", the TinyPriorConfig as JSON under "config").
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "diffusion/noise_schedule.h"
#include "prior/tiny_text_encoder.h"
#include "prior/tiny_unet.h"
#include "prior/view_condition.h"
#include "prior/word_tokenizer.h"

namespace nd {

struct TinyPriorConfig {
  int resolution = 32;  // training (and sampling) image size, square
  TinyUNetOptions unet;
  TinyTextEncoderOptions text;              // vocab_size and max_tokens come from the tokenizer
  std::string prediction_type = "epsilon";  // or "v_prediction"
  std::string beta_schedule =
      "squaredcos_cap_v2";  // better than linear at low resolution (Nichol & Dhariwal)
  int num_train_timesteps = 1000;
  ViewRange views;  // the cameras of the training data (generate samples the same)

  nlohmann::json to_json() const;
  // Strict: unknown keys and wrong types are InputErrors naming the key.
  static TinyPriorConfig from_json(const nlohmann::json& j);
};

class TinyPrior {
 public:
  explicit TinyPrior(const TinyPriorConfig& config);

  const TinyPriorConfig& config() const { return config_; }
  const WordTokenizer& tokenizer() const { return tokenizer_; }
  const NoiseSchedule& schedule() const { return schedule_; }
  PredictionType prediction_type() const { return prediction_type_; }
  TinyTextEncoder& text_encoder() { return text_encoder_; }
  TinyUNet& unet() { return unet_; }

  // All trainable parameters under their file names ("text_encoder.…", "unet.…").
  std::map<std::string, at::Tensor> named_parameters() const;
  int64_t parameter_count() const;
  void train(bool on);

  // The model's raw output (ε or v). x_t: [B,3,R,R] in [-1,1] scale; t: [B] int64; ids: [B,L] token ids;
  // views: [B, kViewFeatures] (view_features()).
  at::Tensor predict(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& ids,
                     const at::Tensor& views);
  // Classifier-free guided ε: one batched call on [cond; uncond] (same x_t, t and views), then
  // ε_u + scale·(ε_c − ε_u). ids: [B,L] conditional tokens.
  at::Tensor predict_epsilon_guided(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& ids,
                                    const at::Tensor& views, double guidance_scale);

  // Weights (no optimizer state) with the config in the metadata; atomic.
  void save(const std::string& path, const std::map<std::string, std::string>& extra_metadata = {}) const;
  // Loads weights saved by save() or a training checkpoint (its "ema.*" weights when present, else
  // "model.*"). InputError for anything wrong, naming the file.
  static std::unique_ptr<TinyPrior> load(const std::string& path);
  // Copies tensors named "<prefix><parameter name>" into the parameters (strict).
  void load_tensors(const std::map<std::string, at::Tensor>& tensors, const std::string& prefix,
                    const std::string& source);

 private:
  TinyPriorConfig config_;
  WordTokenizer tokenizer_;
  NoiseSchedule schedule_;
  PredictionType prediction_type_;
  TinyTextEncoder text_encoder_{nullptr};
  TinyUNet unet_{nullptr};
};

// The shipped prior: $NERFDREAM_PRIOR when set, else models/tiny-prior/prior.safetensors next to the
// source tree this binary was built from, else beside the executable (../models/…). InputError saying
// where it looked when none exists.
std::string default_prior_path();

// The same search for any shipped file: $<env_var>, else <source tree>/<relative>, else beside the
// executable. InputError "no <what> found (looked at …); set <env_var> or <how_to_make>".
std::string find_shipped_model(const std::string& relative, const char* env_var, const std::string& what,
                               const std::string& how_to_make);

}  // namespace nd
