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

GenerateConfig resolved(GenerateConfig c, const DiffusionGuide& guide) {
  validate(c);
  c.field.grid.bound = 1.0;  // the synth world's box [-1,1]^3
  if (c.render_resolution == 0) c.render_resolution = guide.render_resolution();
  guide.check_render_resolution(c.render_resolution);
  return c;
}

at::Tensor view_tensor(const std::vector<View>& views) {
  at::Tensor t = at::empty({static_cast<int64_t>(views.size()), 4}, at::kFloat);
  for (size_t i = 0; i < views.size(); ++i) {
    t[i][0] = views[i].elevation;
    t[i][1] = views[i].azimuth;
    t[i][2] = views[i].radius;
    t[i][3] = views[i].fov;
  }
  return t;
}

}  // namespace

TextTo3D::TextTo3D(const GenerateConfig& config, DiffusionGuide& guide)
    : config_(resolved(config, guide)),
      guide_(guide),
      guidance_(guide, config_.guidance),
      renderer_(config_.render, 1.0),
      rng_(config_.seed),
      gen_(at::detail::createCPUGenerator(config_.seed)) {
  guide_.check_prompt(view_dependent_prompt(config_.prompt, 0, 0));  // vocabulary errors first
  if (config_.method == "idu")
    idu_ = std::make_unique<IterativeDatasetUpdate>(config_.idu, config_.render_resolution,
                                                    guide_.camera_range());
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
  if (step_ % config_.render.grid_update_every == 0) renderer_.update_occupancy(*field_, step_, rng_);
  TextTo3DStep stats = idu_ ? idu_step() : sds_step();
  require(std::isfinite(stats.loss), "generate: the loss became " + std::to_string(stats.loss) + " at step " +
                                         std::to_string(step_) + " (try a lower learning rate or CFG)");
  ++step_;
  return stats;
}

at::Tensor TextTo3D::regularize(const RenderResult& out, int64_t rays, at::Tensor loss,
                                TextTo3DStep& stats) const {
  const auto& reg = config_.regularizers;
  const at::Tensor opacity = out.opacity.clamp(1e-5, 1 - 1e-5);
  if (reg.opacity > 0) {
    const at::Tensor l = at::sqrt(out.opacity.pow(2) + 0.01).mean();
    stats.opacity = l.item<double>();
    loss = loss + reg.opacity * l;
  }
  if (reg.entropy > 0) {
    const at::Tensor l = -(opacity * at::log(opacity) + (1 - opacity) * at::log(1 - opacity)).mean();
    stats.entropy = l.item<double>();
    loss = loss + reg.entropy * l;
  }
  if (reg.orientation > 0 && out.normals.defined() && out.normals.size(0) > 0) {
    const at::Tensor facing_away = at::relu((out.normals * out.samples.dirs).sum(1));
    const at::Tensor l = (out.weights.detach() * facing_away.pow(2)).sum() / static_cast<double>(rays);
    stats.orientation = l.item<double>();
    loss = loss + reg.orientation * l;
  }
  stats.samples_per_ray = static_cast<double>(out.samples.positions.size(0)) / static_cast<double>(rays);
  stats.mean_opacity = out.opacity.mean().item<double>();
  return loss;
}

TextTo3DStep TextTo3D::sds_step() {
  const auto& cfg = config_;
  const int64_t r = cfg.render_resolution, b = cfg.views_per_step;

  // --- views, light, shading
  Shading mode = Shading::Albedo;
  if (step_ >= cfg.shading.albedo_warmup_steps && uniform01(rng_) < cfg.shading.lambertian_probability)
    mode = uniform01(rng_) < cfg.shading.textureless_probability ? Shading::Textureless : Shading::Lambertian;
  const ViewRange range = guide_.camera_range();
  std::vector<View> views;
  std::vector<std::string> prompts;
  std::vector<Camera> cameras;
  for (int64_t i = 0; i < b; ++i) {
    views.push_back(sample_view(range, rng_));
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
  const double progress = static_cast<double>(step_) / std::max<int64_t>(1, cfg.optim.steps);
  SDSResult sds = guidance_.step(image, guide_.condition(prompts), view_tensor(views), progress, gen_);
  TextTo3DStep stats;
  stats.shading = mode;
  stats.sds = sds.gradient.pow(2).mean().item<double>();
  const at::Tensor loss = regularize(out, b * r * r, sds.loss, stats);
  adam_->zero_grad();
  loss.backward();
  adam_->step();
  stats.loss = loss.item<double>();
  return stats;
}

void TextTo3D::update_dataset(const IterativeDatasetUpdate::Due& due) {
  using Action = IterativeDatasetUpdate::Action;
  const View view = idu_->orbit_view(due.index);
  const std::string prompt = view_dependent_prompt(config_.prompt, view.elevation, view.azimuth);
  GuideSampleOptions o;
  o.steps = config_.idu.sample_steps;
  o.guidance_scale = config_.idu.guidance_scale;
  o.eta = config_.idu.sample_eta;
  o.seed = config_.seed * 1000003 + static_cast<uint64_t>(step_);  // one stream per update
  at::Tensor image;
  if (due.action == Action::kSample) {
    image = guide_.sample(prompt, view, config_.render_resolution, o);
  } else {
    // The render as the collection teaches it: lit as the prior's images are.
    const at::Tensor render = render_view(view, config_.render_resolution, idu_shading());
    image = guide_.img2img(render.permute({2, 0, 1}).unsqueeze(0).contiguous(), prompt, view,
                           idu_->strength(due.action), o);
  }
  idu_->set(due.index, image);
}

TextTo3DStep TextTo3D::idu_step() {
  const auto due = idu_->due(step_);
  if (due.action != IterativeDatasetUpdate::Action::kNone) update_dataset(due);
  const IterativeDatasetUpdate::Batch batch = idu_->sample_pixels(config_.idu.rays_per_step, rng_);
  RenderResult out =
      renderer_.render_rays(*field_, batch.rays, at::ones({3}, at::kFloat), idu_shading(), &rng_);
  const at::Tensor photometric = (out.rgb - batch.colors).pow(2).mean();
  TextTo3DStep stats;
  stats.photometric = photometric.item<double>();
  at::Tensor loss = photometric;
  if (config_.idu.background_weight > 0)
    loss = loss + config_.idu.background_weight * (out.opacity.pow(2) * batch.background).mean();
  loss = regularize(out, batch.colors.size(0), loss, stats);
  adam_->zero_grad();
  loss.backward();
  adam_->step();
  stats.loss = loss.item<double>();
  return stats;
}

ShadingParams TextTo3D::idu_shading() const {
  ShadingParams p;
  p.mode = config_.idu.shading == "lambertian" ? Shading::Lambertian : Shading::Albedo;
  p.headlight = true;
  p.ambient = static_cast<float>(config_.idu.ambient);
  return p;
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
  if (idu_) idu_->save(c);
  return c;
}

void TextTo3D::restore(const Checkpoint& ckpt, const std::string& path) {
  restore_training_state({*field_, renderer_, *adam_, gen_, rng_}, ckpt, path);
  if (idu_) idu_->restore(ckpt, path);
  step_ = ckpt.step;
}

}  // namespace nd
