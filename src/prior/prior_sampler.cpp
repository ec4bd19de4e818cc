#include "prior/prior_sampler.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "core/error.h"
#include "diffusion/scheduler.h"
#include "diffusion/scheduler_ddim.h"

namespace nd {

SchedulerConfig prior_scheduler_config(const TinyPriorConfig& config) {
  SchedulerConfig c;
  c.source = "tiny prior";
  c.num_train_timesteps = config.num_train_timesteps;
  c.beta_schedule = config.beta_schedule;
  c.prediction_type = parse_prediction_type(config.prediction_type);
  c.timestep_spacing = TimestepSpacing::kTrailing;
  c.clip_sample = true;
  c.set_alpha_to_one = true;
  return c;
}

namespace {

void check_options(const PriorSampleOptions& o, size_t prompts, size_t views) {
  require(prompts >= 1, "sample: no prompt");
  require(views == 0 || views == prompts, "sample: one view per prompt (or none)");
  require(o.steps >= 1 && o.steps <= 1000, "--steps must be in [1, 1000], got " + std::to_string(o.steps));
  require(o.guidance_scale >= 0 && o.guidance_scale <= 100, "--cfg must be in [0, 100]");
  require(o.eta >= 0 && o.eta <= 1, "--eta must be in [0, 1]");
}

std::unique_ptr<Scheduler> make_prior_scheduler(const TinyPrior& prior, const PriorSampleOptions& o) {
  auto s = make_scheduler(prior_scheduler_config(prior.config()), o.scheduler);
  if (auto* ddim = dynamic_cast<DDIMScheduler*>(s.get())) ddim->set_eta(o.eta);
  return s;
}

at::Tensor views_tensor(const std::vector<View>& views, int64_t batch) {
  if (views.empty()) return at::zeros({batch, kViewFeatures}, at::kFloat);
  return view_features(views);
}

// Runs the scheduler from x over `timesteps` (a suffix of scheduler.timesteps()).
at::Tensor denoise(TinyPrior& prior, Scheduler& s, at::Tensor x, const std::vector<int64_t>& timesteps,
                   const at::Tensor& ids, const at::Tensor& views, double cfg, at::Generator& gen) {
  for (int64_t t : timesteps) {
    const at::Tensor tt = at::full({x.size(0)}, t, at::kLong);
    const at::Tensor eps = prior.predict_epsilon_guided(s.scale_model_input(x, t), tt, ids, views, cfg);
    // The schedulers take the model's native output; guided ε is converted back for v-prediction models.
    const at::Tensor out = prior.prediction_type() == PredictionType::kEpsilon
                               ? eps
                               : prior.schedule().to_v(PredictionType::kEpsilon, eps, x, tt);
    x = s.step(out, t, x, &gen);
  }
  return ((x.clamp(-1, 1) + 1) * 0.5).contiguous();
}

}  // namespace

at::Tensor sample_prior(TinyPrior& prior, const std::vector<std::string>& prompts,
                        const std::vector<View>& views, const PriorSampleOptions& o) {
  check_options(o, prompts.size(), views.size());
  torch::NoGradGuard no_grad;
  prior.train(false);
  const at::Tensor ids = prior.tokenizer().encode_batch(prompts);
  const int64_t b = ids.size(0), r = prior.config().resolution;
  auto s = make_prior_scheduler(prior, o);
  s->set_timesteps(o.steps);
  at::Generator gen = at::detail::createCPUGenerator(o.seed);
  at::Tensor x = at::randn({b, 3, r, r}, gen) * s->init_noise_sigma();
  return denoise(prior, *s, x, s->timesteps(), ids, views_tensor(views, b), o.guidance_scale, gen);
}

at::Tensor img2img_prior(TinyPrior& prior, const at::Tensor& images, const std::vector<std::string>& prompts,
                         const std::vector<View>& views, double strength, const PriorSampleOptions& o) {
  check_options(o, prompts.size(), views.size());
  require(strength > 0 && strength <= 1, "--strength must be in (0, 1], got " + std::to_string(strength));
  const int64_t r = prior.config().resolution;
  require(
      images.dim() == 4 && images.size(0) == static_cast<int64_t>(prompts.size()) && images.size(1) == 3 &&
          images.size(2) == r && images.size(3) == r,
      "img2img: images must be [B,3," + std::to_string(r) + "," + std::to_string(r) + "], one per prompt");
  torch::NoGradGuard no_grad;
  prior.train(false);
  const at::Tensor ids = prior.tokenizer().encode_batch(prompts);
  auto s = make_prior_scheduler(prior, o);
  const std::vector<int64_t> timesteps = img2img_timesteps(*s, o.steps, strength);
  at::Generator gen = at::detail::createCPUGenerator(o.seed);
  const at::Tensor x0 = images.to(at::kFloat) * 2 - 1;
  const at::Tensor x = s->add_noise(x0, at::randn(x0.sizes(), gen), timesteps.front());
  return denoise(prior, *s, x, timesteps, ids, views_tensor(views, images.size(0)), o.guidance_scale, gen);
}

}  // namespace nd
