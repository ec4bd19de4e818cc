// Score Distillation Sampling (DreamFusion, Poole et al. 2022): the gradient that pulls rendered images
// towards what the diffusion model finds likely under the prompt, without backpropagating through it.
//
//   x = encode(image)  (2·image − 1 for a pixel prior; VAE latents for Stable Diffusion, with gradient)
//   t ~ U(t_min, t_max)·T;  x_t = √ᾱ_t x + √(1−ᾱ_t) ε
//   ε̂ = ε_u + s·(ε_c − ε_u)   (one batched model call on [cond; uncond])
//   ∂L/∂x = w(t)·(ε̂ − ε),  w(t) = 1 − ᾱ_t
// The returned loss is 0.5·‖x − sg(x − g)‖² / B, whose gradient with respect to x is exactly g / B; it
// flows back through encode() into the image and the renderer.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "diffusion/noise_schedule.h"
#include "guidance/diffusion_guide.h"

namespace nd {

struct SDSConfig {
  double guidance_scale = 20;  // classifier-free guidance; DreamFusion used 100 with Imagen
  double t_min = 0.02, t_max = 0.98;
  double t_max_end = 0.5;  // the upper end anneals linearly from t_max to this over the run (= t_max: off)
  bool camera_conditioning = true;  // pass the view to a camera-conditioned prior (false: text only)
};
nlohmann::json to_json(const SDSConfig& c);
SDSConfig sds_config_from_json(const nlohmann::json& j);  // strict
void validate(const SDSConfig& c);                        // value ranges (InputError)

struct SDSResult {
  at::Tensor loss;       // scalar; backward gives ∂/∂image
  at::Tensor gradient;   // [B,C,h,w] w(t)·(ε̂ − ε), w.r.t. x = encode(image)
  at::Tensor timesteps;  // [B] int64
};

// The guided noise prediction SDS needs from a model: x_t [B,C,H,W], t [B] int64, the prompts' conditioning
// (DiffusionGuide::condition) and view features [B,F] (zeros: no camera) → ε̂ = ε_u + s·(ε_c − ε_u).
using GuidedEpsilon =
    std::function<at::Tensor(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& cond,
                             const at::Tensor& view_features, double guidance_scale)>;
// Rendered images [B,3,R,R] in [0,1] → the model's space, differentiably.
using ImageEncoder = std::function<at::Tensor(const at::Tensor& images)>;
at::Tensor pixel_space(const at::Tensor& images);  // 2·images − 1

class SDSGuidance {
 public:
  SDSGuidance(const NoiseSchedule& schedule, GuidedEpsilon epsilon, const SDSConfig& config,
              ImageEncoder encode = pixel_space);
  // A model behind the DiffusionGuide interface (its schedule, encode and guided ε; the camera only when
  // the model is camera-conditioned).
  SDSGuidance(DiffusionGuide& guide, const SDSConfig& config);

  // image: [B,3,R,R] in [0,1] (requires grad through the renderer); cond: the prompts' conditioning;
  // views: [B,4] (elevation, azimuth, radius, fov); progress ∈ [0,1] drives the t_max annealing; gen draws
  // t and ε (on the CPU, so runs are reproducible on any device).
  SDSResult step(const at::Tensor& image, const at::Tensor& cond, const at::Tensor& views, double progress,
                 at::Generator& gen);

  // The same with given timesteps [B] and noise (shaped like encode(image)) (tests).
  SDSResult step_with(const at::Tensor& image, const at::Tensor& cond, const at::Tensor& views,
                      const at::Tensor& timesteps, const at::Tensor& noise);

  const SDSConfig& config() const { return config_; }

 private:
  SDSResult distill(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& views, const at::Tensor& t,
                    const at::Tensor& noise);

  const NoiseSchedule& schedule_;
  GuidedEpsilon epsilon_;
  ImageEncoder encode_;
  SDSConfig config_;
};

}  // namespace nd
