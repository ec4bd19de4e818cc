#include "guidance/sd_latent_guide.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "core/error.h"
#include "diffusion/scheduler_ddim.h"

namespace nd {

namespace {

at::Tensor resize_to(const at::Tensor& images, int64_t size) {
  if (images.size(2) == size && images.size(3) == size) return images;
  if (images.size(2) > size && images.size(2) % size == 0 && images.size(3) % size == 0)
    return at::adaptive_avg_pool2d(images, {size, size});  // an exact box filter when shrinking
  return at::upsample_bilinear2d(images, {size, size}, /*align_corners=*/false);
}

}  // namespace

SdLatentGuide::SdLatentGuide(StableDiffusionPipeline& pipeline, int render_resolution,
                             std::string negative_prompt)
    : pipe_(pipeline), render_resolution_(render_resolution), negative_prompt_(std::move(negative_prompt)) {
  require(render_resolution >= 8 && render_resolution <= 1024,
          "render resolution must be in [8, 1024], got " + std::to_string(render_resolution));
}

std::string SdLatentGuide::name() const {
  return std::string("Stable Diffusion ") + (pipe_.version() == SdVersion::kSD2 ? "2" : "1") + " (" +
         pipe_.source() + ")";
}

void SdLatentGuide::check_prompt(const std::string& prompt) const {
  require(prompt.find_first_not_of(" \t\r\n") != std::string::npos, "generate: empty prompt");
}

at::Tensor SdLatentGuide::embedding(const std::string& prompt) {
  auto it = embeddings_.find(prompt);
  if (it != embeddings_.end()) return it->second;
  torch::NoGradGuard no_grad;
  at::Tensor e = pipe_.encode_prompt({prompt});
  embeddings_.emplace(prompt, e);
  return e;
}

at::Tensor SdLatentGuide::condition(const std::vector<std::string>& prompts) {
  std::vector<at::Tensor> uncond, cond;
  for (const auto& p : prompts) {
    uncond.push_back(embedding(negative_prompt_));
    cond.push_back(embedding(p));
  }
  return at::cat({at::cat(uncond), at::cat(cond)});
}

at::Tensor SdLatentGuide::encode(const at::Tensor& images) {
  const at::Tensor x = resize_to(images.to(pipe_.device()), pipe_.default_image_size()) * 2 - 1;
  return pipe_.encode_image(x);
}

at::Tensor SdLatentGuide::guided_epsilon(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& cond,
                                         const at::Tensor& /*view_features*/, double guidance_scale) {
  require(cond.size(0) == 2 * x_t.size(0), "SD guidance: conditioning must be [2B, 77, D] (uncond first)");
  return pipe_.predict_noise(x_t, t, cond, guidance_scale);
}

at::Tensor SdLatentGuide::sample(const std::string& prompt, const View& /*view*/, int resolution,
                                 const GuideSampleOptions& o) {
  Txt2ImgOptions to;
  to.prompt = prompt;
  to.negative_prompt = negative_prompt_;
  to.steps = o.steps;
  to.cfg = o.guidance_scale;
  to.seed = o.seed;
  const at::Tensor images = pipe_.txt2img(to).images;
  return resize_to(images, resolution).to(at::kCPU);
}

at::Tensor SdLatentGuide::img2img(const at::Tensor& image, const std::string& prompt, const View& /*view*/,
                                  double strength, const GuideSampleOptions& o) {
  require(image.dim() == 4 && image.size(1) == 3, "img2img: the image must be [B,3,H,W]");
  torch::NoGradGuard no_grad;
  const at::Tensor latents0 = encode(image.to(at::kFloat));
  std::unique_ptr<Scheduler> s = pipe_.make_scheduler();
  if (auto* ddim = dynamic_cast<DDIMScheduler*>(s.get())) ddim->set_eta(o.eta);
  const std::vector<int64_t> timesteps = img2img_timesteps(*s, o.steps, strength);
  const size_t first = s->timesteps().size() - timesteps.size();
  at::Generator gen = at::detail::createCPUGenerator(o.seed);
  const at::Tensor noise = at::randn(latents0.sizes(), gen, at::TensorOptions(at::kFloat)).to(pipe_.device());
  at::Tensor latents = s->add_noise(latents0, noise, timesteps.front());
  const at::Tensor cond = condition(std::vector<std::string>(static_cast<size_t>(image.size(0)), prompt));
  latents = pipe_.denoise(latents, *s, first, cond, o.guidance_scale, gen);
  const at::Tensor images = StableDiffusionPipeline::to_unit_range(pipe_.decode_latents(latents));
  return resize_to(images, image.size(2)).to(at::kCPU);
}

}  // namespace nd
