#include "pipeline/nerf_trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "pipeline/training_state.h"

namespace nd {

namespace {
FitConfig with_bound(FitConfig c, double bound) {
  c.field.grid.bound = bound;
  return c;
}
}  // namespace

NerfTrainer::NerfTrainer(FitConfig config, const Dataset& train, double bound, bool jitter)
    : config_(with_bound(std::move(config), bound)),
      train_(train),
      jitter_(jitter),
      renderer_(config_.render, bound),
      rng_(config_.seed),
      gen_(at::detail::createCPUGenerator(config_.seed)) {
  require(!train.cameras.empty(), "no training frames");
  TORCH_CHECK(train.images.dim() == 4 && train.images.size(3) == 4,
              "training images must be uint8 [N,H,W,4]");
  has_alpha_ = train.images.select(3, 3).min().item<int>() < 255;
  cameras_ = pack_cameras(train.cameras);
  pixels_flat_ = train.images.view({-1, 4});
  torch::manual_seed(config_.seed);
  field_ = NerfField(config_.field);
  const auto& o = config_.optim;
  adam_ = std::make_unique<FusedAdam>(std::vector<AdamGroup>{{"grid", field_->grid_parameters(), o.lr_grid},
                                                             {"mlp", field_->mlp_parameters(), o.lr_mlp}},
                                      AdamOptions{o.beta1, o.beta2, o.eps});
  renderer_.grid().mark_all_occupied();
}

double NerfTrainer::step(double lr_scale) {
  const auto& o = config_.optim;
  adam_->set_lr("grid", o.lr_grid * lr_scale);
  adam_->set_lr("mlp", o.lr_mlp * lr_scale);
  if (step_ % config_.render.grid_update_every == 0) renderer_.update_occupancy(*field_, step_, rng_);

  const int64_t n_images = static_cast<int64_t>(train_.cameras.size());
  const int64_t H = train_.height, W = train_.width;
  // Instant-NGP's adaptive batch: while the occupancy grid is still coarse, rays carry hundreds of samples,
  // so take fewer of them; the number grows as empty space is culled.
  int64_t B = o.batch_rays;
  if (o.target_samples > 0) {
    const double spr = samples_per_ray_ema_ > 0 ? samples_per_ray_ema_ : config_.render.march.max_steps / 2.0;
    B = std::clamp<int64_t>(int64_t(o.target_samples / std::max(1.0, spr)),
                            std::min<int64_t>(64, o.batch_rays), o.batch_rays);
  }
  last_rays_ = B;
  auto img = at::randint(n_images, {B}, gen_, at::kLong);
  auto u = at::randint(W, {B}, gen_, at::kLong);
  auto v = at::randint(H, {B}, gen_, at::kLong);
  auto offset = jitter_ ? at::rand({B, 2}, gen_) : at::full({B, 2}, 0.5f);
  auto pixels = at::stack({u.to(at::kFloat), v.to(at::kFloat)}, 1) + offset;
  auto rgba = pixels_flat_.index_select(0, (img * H + v) * W + u).to(at::kFloat) / 255.0f;  // [B,4]
  // RGBA images: a random background each step teaches the field where it is empty (Instant-NGP).
  at::Tensor bg;
  if (has_alpha_ && config_.data.background == "random")
    bg = at::rand({B, 3}, gen_);
  else
    bg = at::full({B, 3}, config_.data.background == "black" ? 0.0f : 1.0f);
  auto alpha = rgba.slice(1, 3, 4);
  auto target = rgba.slice(1, 0, 3) * alpha + bg * (1 - alpha);

  Rays rays = batch_rays(cameras_, img, pixels);
  RenderResult r = renderer_.render_rays(*field_, rays, bg, ShadingParams{}, &rng_);
  last_samples_per_ray_ = double(r.samples.ts.size(0)) / B;
  samples_per_ray_ema_ = samples_per_ray_ema_ > 0 ? 0.9 * samples_per_ray_ema_ + 0.1 * last_samples_per_ray_
                                                  : last_samples_per_ray_;
  auto loss = (r.rgb - target).pow(2).mean();
  adam_->zero_grad();
  loss.backward();
  adam_->step();
  ++step_;
  return loss.item<double>();
}

Checkpoint NerfTrainer::checkpoint() const {
  Checkpoint c;
  c.config = to_json(config_);
  c.step = step_;
  auto& self = const_cast<NerfTrainer&>(*this);  // saving reads the state; the API is non-const
  save_training_state({*self.field_, self.renderer_, *self.adam_, self.gen_, self.rng_}, c);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", samples_per_ray_ema_);  // exact (hex float), for an exact resume
  c.extra["samples_per_ray_ema"] = buf;
  return c;
}

void NerfTrainer::restore(const Checkpoint& ckpt, const std::string& path) {
  restore_training_state({*field_, renderer_, *adam_, gen_, rng_}, ckpt, path);
  step_ = ckpt.step;
  auto spr = ckpt.extra.find("samples_per_ray_ema");
  if (spr != ckpt.extra.end()) samples_per_ray_ema_ = std::strtod(spr->second.c_str(), nullptr);
}

}  // namespace nd
