// Stable Diffusion behind the DiffusionGuide interface: score distillation in the VAE's latent space, as
// stable-dreamfusion and threestudio do it. Views are rendered small (64² by default), upsampled
// bilinearly to the model's native size (512² for SD 1.5 / 2.1-base), encoded by the VAE with gradient (the
// posterior mean, scaled), and ε̂ is predicted on the latents with classifier-free guidance against the
// negative prompt ("" by default). The camera is not an input of SD: the view word of the prompt is.
#pragma once
#include <map>

#include "diffusion/sd_pipeline.h"
#include "guidance/diffusion_guide.h"

namespace nd {

class SdLatentGuide : public DiffusionGuide {
 public:
  // render_resolution: the size views are rendered at before the upsampling.
  SdLatentGuide(StableDiffusionPipeline& pipeline, int render_resolution = 64,
                std::string negative_prompt = "");

  std::string name() const override;
  const NoiseSchedule& schedule() const override { return pipe_.noise_schedule(); }
  int render_resolution() const override { return render_resolution_; }
  ViewRange camera_range() const override { return {}; }  // the tiny prior's orbit: the same scene box
  bool camera_conditioned() const override { return false; }
  void check_prompt(const std::string& prompt) const override;  // empty → InputError

  // [2B, 77, D]: the negative prompt's embedding B times, then the prompts' (cached per distinct text).
  at::Tensor condition(const std::vector<std::string>& prompts) override;
  // [B,3,R,R] → upsample to the native size → 2·x − 1 → VAE posterior mean × scaling factor [B,4,S/8,S/8].
  at::Tensor encode(const at::Tensor& images) override;
  at::Tensor guided_epsilon(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& cond,
                            const at::Tensor& view_features, double guidance_scale) override;

  // txt2img / SDEdit with the checkpoint's scheduler at the native size, downsampled (area) to R.
  at::Tensor sample(const std::string& prompt, const View& view, int resolution,
                    const GuideSampleOptions& options) override;
  at::Tensor img2img(const at::Tensor& image, const std::string& prompt, const View& view, double strength,
                     const GuideSampleOptions& options) override;

 private:
  at::Tensor embedding(const std::string& prompt);  // [1, 77, D], cached

  StableDiffusionPipeline& pipe_;
  int render_resolution_;
  std::string negative_prompt_;
  std::map<std::string, at::Tensor> embeddings_;
};

}  // namespace nd
