#include "pipeline/fit_config.h"

#include "core/config_json.h"

namespace nd {

namespace {

// One list of keys for both JSON directions (core/config_json.h); "field" and "render" have their own.
template <class IO, class C>
void visit(IO& io, C& c) {
  {
    auto d = io.section("data");
    d.get("path", c.data.path);
    d.get("synth", c.data.synth);
    d.get("synth_train_views", c.data.synth_train_views);
    d.get("synth_test_views", c.data.synth_test_views);
    d.get("synth_resolution", c.data.synth_resolution);
    d.get("downscale", c.data.downscale);
    d.get("holdout_every", c.data.holdout_every);
    d.get("background", c.data.background);
    d.get("pixel_sampling", c.data.pixel_sampling);
    d.finish();
  }
  {
    auto o = io.section("optim");
    o.get("steps", c.optim.steps);
    o.get("seconds", c.optim.seconds);
    o.get("batch_rays", c.optim.batch_rays);
    o.get("target_samples", c.optim.target_samples);
    o.get("lr_grid", c.optim.lr_grid);
    o.get("lr_mlp", c.optim.lr_mlp);
    o.get("lr_final_ratio", c.optim.lr_final_ratio);
    o.get("beta1", c.optim.beta1);
    o.get("beta2", c.optim.beta2);
    o.get("eps", c.optim.eps);
    o.finish();
  }
  io.get("seed", c.seed);
  io.get("checkpoint_every", c.checkpoint_every);
  io.get("eval_views", c.eval_views);
  io.get("match_grid_to_pixels", c.match_grid_to_pixels);
}

}  // namespace

nlohmann::json to_json(const FitConfig& c) {
  ConfigWriter w;
  w.get("format_version", c.format_version);
  visit(w, c);
  nlohmann::json j = w.json();
  j["field"] = to_json(c.field);
  j["render"] = to_json(c.render);
  return j;
}

FitConfig fit_config_from_json(const nlohmann::json& j) {
  FitConfig c;
  ConfigReader r(j, "");
  read_format_version(r, c.format_version, kFitConfigVersion);
  visit(r, c);
  if (j.contains("field")) c.field = field_config_from_json(j.at("field"));
  r.section("field");
  if (j.contains("render")) c.render = render_config_from_json(j.at("render"));
  r.section("render");
  r.finish();
  validate(c);
  return c;
}

void validate(const FitConfig& c) {
  const auto& d = c.data;
  require(d.path.empty() != d.synth.empty(), "data: give exactly one of a dataset path or a synth caption");
  require(d.synth_train_views >= 1, "data.synth_train_views: must be >= 1");
  require(d.synth_test_views >= 1, "data.synth_test_views: must be >= 1");
  require(d.synth_resolution >= 16 && d.synth_resolution <= 4096,
          "data.synth_resolution: must be in 16..4096");
  require(d.downscale >= 1, "data.downscale: must be >= 1");
  require(d.holdout_every >= 2, "data.holdout_every: must be >= 2");
  require(d.background == "random" || d.background == "white" || d.background == "black",
          "data.background: expected random, white or black, got '" + d.background + "'");
  require(d.pixel_sampling == "auto" || d.pixel_sampling == "center" || d.pixel_sampling == "jitter",
          "data.pixel_sampling: expected auto, center or jitter, got '" + d.pixel_sampling + "'");
  const auto& o = c.optim;
  require(o.steps >= 0, "optim.steps: must be >= 0");
  require(o.seconds >= 0, "optim.seconds: must be >= 0");
  require(o.batch_rays >= 1 && o.batch_rays <= (1 << 22), "optim.batch_rays: must be in 1..4194304");
  require(o.target_samples >= 0, "optim.target_samples: must be >= 0");
  require(o.lr_grid > 0 && o.lr_mlp > 0, "optim.lr_grid / optim.lr_mlp: must be > 0");
  require(o.lr_final_ratio > 0 && o.lr_final_ratio <= 1, "optim.lr_final_ratio: must be in (0, 1]");
  require(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, "optim.beta1/beta2: must be in [0, 1)");
  require(c.checkpoint_every >= 0, "checkpoint_every: must be >= 0");
  require(c.eval_views >= 0, "eval_views: must be >= 0");
}

}  // namespace nd
