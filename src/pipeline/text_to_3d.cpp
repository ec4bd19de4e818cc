#include "pipeline/text_to_3d.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "camera/camera.h"
#include "core/error.h"
#include "pipeline/training_state.h"
#include "synth/caption.h"

namespace nd {

std::string view_dependent_prompt(const std::string& prompt, double elevation, double azimuth) {
  // A prompt that already ends in "<word> view" keeps it.
  for (const auto& w : view_words())
    if (prompt.size() >= w.size() + 5 &&
        prompt.compare(prompt.size() - w.size() - 5, std::string::npos, w + " view") == 0)
      return prompt;
  return prompt + ", " + view_word(elevation, azimuth) + " view";
}

namespace {

GenerateConfig resolved(GenerateConfig c) {
  validate(c);
  c.field.grid.bound = 1.0;  // the synth world's box [-1,1]^3
  return c;
}

}  // namespace

TextTo3D::TextTo3D(const GenerateConfig& config, TinyPrior& prior)
    : config_(resolved(config)),
      prior_(prior),
      guidance_(prior, config_.guidance),
      renderer_(config_.render, 1.0),
      rng_(config_.seed),
      gen_(at::detail::createCPUGenerator(config_.seed)) {
  prior_.tokenizer().encode(view_dependent_prompt(config_.prompt, 0, 0));  // vocabulary errors first
  torch::manual_seed(config_.seed);
  field_ = NerfField(config_.field);
  const auto& o = config_.optim;
  adam_ = std::make_unique<FusedAdam>(std::vector<AdamGroup>{{"grid", field_->grid_parameters(), o.lr_grid},
                                                             {"mlp", field_->mlp_parameters(), o.lr_mlp}},
                                      AdamOptions{o.beta1, o.beta2, o.eps});
  renderer_.grid().mark_all_occupied();
}

ShadingParams TextTo3D::light_for(const View& view, Shading mode, std::mt19937_64& rng) const {
  ShadingParams p;
  p.mode = mode;
  p.light_dir = light_near_camera(view, rng);  // as in the prior's training data
  const auto& sh = config_.shading;
  p.ambient = static_cast<float>(sh.ambient_min + (sh.ambient_max - sh.ambient_min) * uniform01(rng));
  return p;
}

TextTo3DStep TextTo3D::step() {
  const auto& cfg = config_;
  if (step_ % cfg.render.grid_update_every == 0) renderer_.update_occupancy(*field_, step_, rng_);
  const int64_t r = prior_.config().resolution, b = cfg.views_per_step;

  // --- views, light, shading
  Shading mode = Shading::Albedo;
  if (step_ >= cfg.shading.albedo_warmup_steps && uniform01(rng_) < cfg.shading.lambertian_probability)
    mode = uniform01(rng_) < cfg.shading.textureless_probability ? Shading::Textureless : Shading::Lambertian;
  std::vector<View> views;
  std::vector<std::string> prompts;
  std::vector<Camera> cameras;
  for (int64_t i = 0; i < b; ++i) {
    views.push_back(sample_view(prior_.config().views, rng_));
    const View& v = views.back();
    prompts.push_back(view_dependent_prompt(cfg.prompt, v.elevation, v.azimuth));
    cameras.push_back(
        orbit_camera(v.radius, v.elevation, v.azimuth, v.fov, static_cast<int>(r), static_cast<int>(r)));
  }
  // One light per step (all views of a step share it, relative to the first camera).
  const ShadingParams shading = light_for(views.front(), mode, rng_);

  // --- render the b views in one call
  std::vector<at::Tensor> origins, dirs;
  for (const auto& cam : cameras) {
    Rays rays = camera_rays_all(cam);
    origins.push_back(rays.origins);
    dirs.push_back(rays.dirs);
  }
  Rays rays{at::cat(origins), at::cat(dirs)};
  const at::Tensor white = at::ones({3}, at::kFloat);
  RenderResult out = renderer_.render_rays(*field_, rays, white, shading, &rng_);
  const at::Tensor image = out.rgb.view({b, r, r, 3}).permute({0, 3, 1, 2});

  // --- guidance and regularisers
  at::Tensor view_tensor = at::empty({b, 4}, at::kFloat);
  for (int64_t i = 0; i < b; ++i) {
    view_tensor[i][0] = views[i].elevation;
    view_tensor[i][1] = views[i].azimuth;
    view_tensor[i][2] = views[i].radius;
    view_tensor[i][3] = views[i].fov;
  }
  const double progress = static_cast<double>(step_) / std::max<int64_t>(1, cfg.optim.steps);
  SDSResult sds =
      guidance_.step(image, prior_.tokenizer().encode_batch(prompts), view_tensor, progress, gen_);
  TextTo3DStep stats;
  stats.shading = mode;
  at::Tensor loss = sds.loss;
  stats.sds = sds.gradient.pow(2).mean().item<double>();
  const at::Tensor opacity = out.opacity.clamp(1e-5, 1 - 1e-5);
  if (cfg.regularizers.opacity > 0) {
    const at::Tensor l = at::sqrt(out.opacity.pow(2) + 0.01).mean();
    stats.opacity = l.item<double>();
    loss = loss + cfg.regularizers.opacity * l;
  }
  if (cfg.regularizers.entropy > 0) {
    const at::Tensor l = -(opacity * at::log(opacity) + (1 - opacity) * at::log(1 - opacity)).mean();
    stats.entropy = l.item<double>();
    loss = loss + cfg.regularizers.entropy * l;
  }
  if (cfg.regularizers.orientation > 0 && out.normals.defined() && out.normals.size(0) > 0) {
    const at::Tensor facing_away = at::relu((out.normals * out.samples.dirs).sum(1));
    const at::Tensor l = (out.weights.detach() * facing_away.pow(2)).sum() / static_cast<double>(b * r * r);
    stats.orientation = l.item<double>();
    loss = loss + cfg.regularizers.orientation * l;
  }
  adam_->zero_grad();
  loss.backward();
  adam_->step();

  stats.loss = loss.item<double>();
  require(std::isfinite(stats.loss), "generate: the loss became " + std::to_string(stats.loss) + " at step " +
                                         std::to_string(step_) + " (try a lower learning rate or CFG)");
  stats.samples_per_ray = static_cast<double>(out.samples.positions.size(0)) / static_cast<double>(b * r * r);
  stats.mean_opacity = out.opacity.mean().item<double>();
  ++step_;
  return stats;
}

at::Tensor TextTo3D::render_view(const View& view, int resolution, const ShadingParams& shading) {
  torch::NoGradGuard no_grad;
  const Camera cam =
      orbit_camera(view.radius, view.elevation, view.azimuth, view.fov, resolution, resolution);
  return renderer_.render_image(*field_, cam, at::ones({3}, at::kFloat), shading).rgb;
}

Checkpoint TextTo3D::checkpoint() const {
  Checkpoint c;
  c.config = to_json(config_);
  c.step = step_;
  auto& self = const_cast<TextTo3D&>(*this);  // saving reads the state; the API is non-const
  save_training_state({*self.field_, self.renderer_, *self.adam_, self.gen_, self.rng_}, c);
  return c;
}

void TextTo3D::restore(const Checkpoint& ckpt, const std::string& path) {
  restore_training_state({*field_, renderer_, *adam_, gen_, rng_}, ckpt, path);
  step_ = ckpt.step;
}

}  // namespace nd
