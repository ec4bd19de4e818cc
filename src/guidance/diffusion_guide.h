// What text-to-3D needs from a diffusion model, whichever family it is: the tiny pixel-space prior
// (tiny_prior_guide.h) or a Stable Diffusion checkpoint working in VAE latents (sd_latent_guide.h).
//
//   prompts ──condition()──▶ c            rendered images ──encode()──▶ x  (differentiable)
//   x_t, t, c, camera ──guided_epsilon()──▶ ε̂ = ε_u + s·(ε_c − ε_u)      (score distillation)
//   prompt, camera ──sample() / img2img()──▶ images                      (iterative dataset update)
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "diffusion/noise_schedule.h"
#include "prior/view_condition.h"

namespace nd {

// How the iterative dataset update draws images from the model.
struct GuideSampleOptions {
  int steps = 50;
  double guidance_scale = 1;  // the tiny prior samples best unguided
  double eta = 1;             // DDIM η
  uint64_t seed = 0;
};

class DiffusionGuide {
 public:
  virtual ~DiffusionGuide() = default;

  virtual std::string name() const = 0;  // for logs and metrics.json
  virtual const NoiseSchedule& schedule() const = 0;
  // The size views are rendered at by default (the tiny prior's resolution; 64 for Stable Diffusion, as
  // stable-dreamfusion renders before upsampling to 512).
  virtual int render_resolution() const = 0;
  // The cameras the model knows (the tiny prior's training range; a sensible orbit for SD).
  virtual ViewRange camera_range() const = 0;
  virtual bool camera_conditioned() const = 0;  // false: view features are ignored
  // InputError when views of this size cannot be encoded (the tiny prior takes only its own size).
  virtual void check_render_resolution(int /*resolution*/) const {}
  // InputError when the model cannot take the prompt (the tiny prior lists its vocabulary).
  virtual void check_prompt(const std::string& prompt) const = 0;

  // The conditioning of B prompts, in whatever form guided_epsilon() takes (token ids, text embeddings).
  virtual at::Tensor condition(const std::vector<std::string>& prompts) = 0;
  // Rendered images [B,3,R,R] in [0,1] → the model's input space x0 [B,C,h,w] (2·image − 1 for pixels, the
  // scaled VAE posterior mean for latents), differentiable with respect to the images.
  virtual at::Tensor encode(const at::Tensor& images) = 0;
  // ε̂ = ε_u + s·(ε_c − ε_u) in one batched call: x_t [B,C,h,w], t [B] int64, cond from condition(),
  // view_features [B,kViewFeatures] (zeros: no camera). No gradient flows through it.
  virtual at::Tensor guided_epsilon(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& cond,
                                    const at::Tensor& view_features, double guidance_scale) = 0;

  // A sample of the prompt seen from `view`: [1,3,R,R] in [0,1] at resolution R = resolution.
  virtual at::Tensor sample(const std::string& prompt, const View& view, int resolution,
                            const GuideSampleOptions& options) = 0;
  // SDEdit: image [1,3,R,R] in [0,1] noised to `strength` of the schedule and denoised under the prompt and
  // view; the same size back.
  virtual at::Tensor img2img(const at::Tensor& image, const std::string& prompt, const View& view,
                             double strength, const GuideSampleOptions& options) = 0;
};

}  // namespace nd
