// Stable Diffusion 1.x/2.x as diffusers' StableDiffusionPipeline (v0.25.1) runs it: CLIP tokenizer → CLIP
// text encoder → UNet noise/v prediction with classifier-free guidance → scheduler steps → VAE decode.
//
// Checkpoints, sniffed from content:
//   - a diffusers folder: model_index.json naming tokenizer/ text_encoder/ unet/ vae/ scheduler/, weights in
//     *.safetensors (F32/F16/BF16, read as float32);
//   - one original-layout .safetensors file (CompVis/Stability key names; SD 1 vs SD 2 detected from the
//     tensors, names converted by sd_checkpoint_convert.h). Such a file carries no tokenizer, no attention
//     head counts and no scheduler: the tokenizer comes from SdLoadOptions::tokenizer_dir, the tokenizer/ of
//     SdLoadOptions::config_dir, or a diffusers folder beside the file (its own folder or the parent);
//     the other values from config_dir's config.json files where present, else those of the released SD
//     1.x/2.x models (see sd_checkpoint_convert.h).
//   - pickle files (.ckpt, .bin, .pt, .pth, or a zip/pickle in disguise) are refused: loading one can run
//     arbitrary code.
// Tensors: latents [B, 4, H/8, W/8] in the UNet's (scaled) space, images [B, 3, H, W], text embeddings
// [B, 77, D], all float32 on the pipeline's device (CPU unless to() moved it); models moved to half precision
// take their inputs cast and give float32 back.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "diffusion/autoencoder_kl.h"
#include "diffusion/clip_text_encoder.h"
#include "diffusion/clip_tokenizer.h"
#include "diffusion/scheduler.h"
#include "diffusion/sd_checkpoint_convert.h"
#include "diffusion/sd_load_options.h"
#include "diffusion/unet2d_condition.h"

namespace nd {

// One UNet call with classifier-free guidance, in the model's prediction type (ε or v).
struct CfgPrediction {
  at::Tensor uncond;  // [B, 4, h, w]; undefined without guidance
  at::Tensor cond;    // [B, 4, h, w]
  at::Tensor guided;  // uncond + cfg · (cond − uncond), or cond without guidance
};

struct Txt2ImgOptions {
  std::string prompt;
  std::string negative_prompt;  // "" as diffusers: the empty prompt, tokenized like any other
  int num_images = 1;
  int steps = 50;
  double cfg = 7.5;  // guidance applies when > 1 (diffusers' do_classifier_free_guidance)
  uint64_t seed = 0;
  int height = 0, width = 0;  // multiples of 8; 0: the UNet's sample_size × 8
  std::string scheduler;      // "" = the checkpoint's scheduler; "ddim" | "ddpm" | "pndm" | "euler"
  at::Tensor init_latents;    // optional [num_images, 4, h, w]; default randn(seed) · init_noise_sigma
  bool progress = false;      // progress bar on stderr
  // Called after every step i with its timestep, the UNet outputs and the latents after the step.
  std::function<void(int i, int64_t t, const CfgPrediction& pred, const at::Tensor& latents)> on_step;
};

struct Txt2ImgResult {
  at::Tensor images;         // [num_images, 3, H, W] in [0, 1]
  at::Tensor decoded;        // [num_images, 3, H, W] the VAE output, about [-1, 1]
  at::Tensor latents;        // [num_images, 4, H/8, W/8] final latents
  at::Tensor prompt_embeds;  // [2·num_images or num_images, 77, D] (uncond first) as the UNet saw them
  std::vector<int64_t> timesteps;
};

class StableDiffusionPipeline {
 public:
  // A diffusers folder (or its model_index.json) or an original-layout .safetensors file. InputError naming
  // the file/component on anything missing, malformed, of the wrong shape, or a pickle.
  static StableDiffusionPipeline load(const std::string& path, const SdLoadOptions& options = {});

  // Text embeddings [B, 77, D] (last_hidden_state; a converted SD 2 model's last layer is OpenCLIP's
  // penultimate). Prompts longer than 75 tokens are truncated with a one-line warning on stderr.
  at::Tensor encode_prompt(const std::vector<std::string>& prompts);
  // [2B, 77, D] = cat(uncond(negatives), cond(prompts)) for guidance; negatives empty = "" for each prompt.
  at::Tensor encode_prompt_cfg(const std::vector<std::string>& prompts,
                               const std::vector<std::string>& negatives = {});

  // The UNet on latents [B, 4, h, w] (already scaled by the scheduler's scale_model_input where it has one)
  // at timesteps t ([] or [B], integer or float). embeddings: [2B, L, D] (uncond first) → guidance with
  // scale cfg; [B, L, D] → no guidance (cfg ignored). Autograd records through it when an input requires
  // grad (the weights never do).
  CfgPrediction predict(const at::Tensor& latents, const at::Tensor& t, const at::Tensor& embeddings,
                        double cfg);
  // The guided noise ε̂ [B, 4, h, w] (a v-prediction converted with ᾱ_t), what score distillation needs.
  // t: integer timesteps [] or [B].
  at::Tensor predict_noise(const at::Tensor& latents, const at::Tensor& t, const at::Tensor& embeddings,
                           double cfg);

  // Scaled latents [B, 4, h, w] → the VAE's output [B, 3, 8h, 8w], about [-1, 1], not clamped.
  at::Tensor decode_latents(const at::Tensor& latents);
  // Image [B, 3, H, W] in [-1, 1] → scaled latents (the posterior mean, or a sample when gen is given).
  // Differentiable with respect to the image.
  at::Tensor encode_image(const at::Tensor& image, at::Generator* gen = nullptr);
  // (x / 2 + 0.5).clamp(0, 1), the pipeline's postprocess.
  static at::Tensor to_unit_range(const at::Tensor& decoded);

  Txt2ImgResult txt2img(const Txt2ImgOptions& options);

  // The sampling loop shared by txt2img and SDEdit: from scheduler step `first` (set_timesteps done) to the
  // end, one guided UNet call (embeddings as for predict) and one scheduler step each; on_step (optional)
  // after each with the step's index. Returns the final latents.
  using StepCallback =
      std::function<void(int i, int64_t t, const CfgPrediction& pred, const at::Tensor& latents)>;
  at::Tensor denoise(at::Tensor latents, Scheduler& scheduler, size_t first, const at::Tensor& embeddings,
                     double cfg, at::Generator& gen, const StepCallback& on_step = {});

  // A fresh scheduler (the checkpoint's class, or override_class) for one sampling run.
  std::unique_ptr<Scheduler> make_scheduler(const std::string& override_class = "") const;

  // Moves every model (float32, or half on CUDA) to `device`.
  void to(at::Device device, at::ScalarType dtype = at::kFloat);
  at::Device device() const;

  SdVersion version() const { return version_; }  // a folder: SD2 when the text encoder is OpenCLIP (gelu)
  bool single_file() const { return single_file_; }
  const std::string& source() const { return source_; }
  const CLIPTokenizer& tokenizer() const { return *tokenizer_; }
  int64_t pad_id() const { return pad_id_; }
  const SchedulerConfig& scheduler_config() const { return scheduler_config_; }
  PredictionType prediction_type() const { return scheduler_config_.prediction_type; }
  const NoiseSchedule& noise_schedule() const { return *schedule_; }
  int vae_scale_factor() const;  // 2^(VAE levels − 1): 8 for SD
  int default_image_size() const { return unet->config().sample_size * vae_scale_factor(); }

  CLIPTextModel text_encoder{nullptr};
  UNet2DConditionModel unet{nullptr};
  AutoencoderKL vae{nullptr};

 private:
  StableDiffusionPipeline() = default;
  void finish_load();

  SdVersion version_ = SdVersion::kSD1;
  bool single_file_ = false;
  std::string source_;
  std::shared_ptr<const CLIPTokenizer> tokenizer_;
  int64_t pad_id_ = 49407;
  SchedulerConfig scheduler_config_;
  std::shared_ptr<const NoiseSchedule> schedule_;
};

// `nerfdream sample --model PATH`: the whole job of sampling a Stable Diffusion checkpoint into a PNG grid.
struct SdSampleOptions {
  std::string model;  // diffusers folder or original-layout .safetensors
  std::string prompt;
  std::string negative_prompt;
  int num_images = 1;  // -n
  int steps = 50;
  double cfg = 7.5;
  uint64_t seed = 0;
  std::string scheduler;                                   // "" | ddim | ddpm | pndm | euler
  int height = 0, width = 0;                               // 0: the model's default (512 for SD 1.5)
  std::string out;                                         // .png, written atomically (the folder is created)
  int columns = 0;                                         // grid columns; 0: ceil(sqrt(n))
  std::string tokenizer_dir, config_dir, prediction_type;  // SdLoadOptions
  bool progress = true;
};
// Validates the options (InputError on a bad value), loads, samples, writes the grid; returns 0.
int run_sd_sample(const SdSampleOptions& options);

}  // namespace nd
