#include "guidance/tiny_prior_guide.h"

#include "core/error.h"
#include "prior/prior_sampler.h"

namespace nd {

namespace {

PriorSampleOptions prior_options(const GuideSampleOptions& o) {
  PriorSampleOptions p;
  p.steps = o.steps;
  p.guidance_scale = o.guidance_scale;
  p.scheduler = "ddim";
  p.eta = o.eta;
  p.seed = o.seed;
  return p;
}

}  // namespace

void TinyPriorGuide::check_render_resolution(int resolution) const {
  require(resolution == render_resolution(), "render_resolution: the tiny prior sees " +
                                                 std::to_string(render_resolution()) + "² views, not " +
                                                 std::to_string(resolution) + "²");
}

void TinyPriorGuide::check_prompt(const std::string& prompt) const { prior_.tokenizer().encode(prompt); }

at::Tensor TinyPriorGuide::condition(const std::vector<std::string>& prompts) {
  return prior_.tokenizer().encode_batch(prompts);
}

at::Tensor TinyPriorGuide::encode(const at::Tensor& images) { return images * 2 - 1; }

at::Tensor TinyPriorGuide::guided_epsilon(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& ids,
                                          const at::Tensor& view_features, double guidance_scale) {
  return prior_.predict_epsilon_guided(x_t, t, ids, view_features, guidance_scale);
}

at::Tensor TinyPriorGuide::sample(const std::string& prompt, const View& view, int resolution,
                                  const GuideSampleOptions& options) {
  check_render_resolution(resolution);
  return sample_prior(prior_, {prompt}, {view}, prior_options(options));
}

at::Tensor TinyPriorGuide::img2img(const at::Tensor& image, const std::string& prompt, const View& view,
                                   double strength, const GuideSampleOptions& options) {
  return img2img_prior(prior_, image, {prompt}, {view}, strength, prior_options(options));
}

}  // namespace nd
