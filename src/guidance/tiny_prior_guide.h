// The embedded default behind the DiffusionGuide interface: the tiny camera-conditioned prior, in pixel
// space at its own resolution (32²), with the camera range it was trained on.
#pragma once
#include "guidance/diffusion_guide.h"
#include "prior/tiny_prior.h"

namespace nd {

class TinyPriorGuide : public DiffusionGuide {
 public:
  explicit TinyPriorGuide(TinyPrior& prior) : prior_(prior) {}

  std::string name() const override { return "tiny prior"; }
  const NoiseSchedule& schedule() const override { return prior_.schedule(); }
  int render_resolution() const override { return static_cast<int>(prior_.config().resolution); }
  ViewRange camera_range() const override { return prior_.config().views; }
  bool camera_conditioned() const override { return true; }
  void check_render_resolution(int resolution) const override;
  void check_prompt(const std::string& prompt) const override;

  at::Tensor condition(const std::vector<std::string>& prompts) override;  // token ids [B, L]
  at::Tensor encode(const at::Tensor& images) override;                    // 2·image − 1
  at::Tensor guided_epsilon(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& ids,
                            const at::Tensor& view_features, double guidance_scale) override;

  // Both at the prior's resolution (InputError for another).
  at::Tensor sample(const std::string& prompt, const View& view, int resolution,
                    const GuideSampleOptions& options) override;
  at::Tensor img2img(const at::Tensor& image, const std::string& prompt, const View& view, double strength,
                     const GuideSampleOptions& options) override;

  TinyPrior& prior() { return prior_; }

 private:
  TinyPrior& prior_;
};

}  // namespace nd
