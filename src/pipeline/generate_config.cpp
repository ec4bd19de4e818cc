#include "pipeline/generate_config.h"

#include "core/config_json.h"
#include "core/error.h"

namespace nd {

GenerateConfig::GenerateConfig() {
  // A field matched to what 32×32 views can teach: the finest level at 64 cells across the box (a finer
  // field under coarse supervision grows noisy albedo and floaters), a small table.
  field.grid.levels = 8;
  field.grid.base_resolution = 8;
  field.grid.finest_resolution_per_bound = 64;
  field.grid.log2_table_size = 16;
  field.blob = "magic3d";  // start from a ball of density at the centre
  field.blob_density = 10;
  field.blob_radius = 0.5;
  // 256 steps across the box diagonal: ~2 samples per 32² pixel footprint.
  render.march.max_steps = 256;
  render.grid_resolution = 64;
  render.grid_update_every = 16;
  render.grid_warmup_steps = 32;
}

namespace {

// One list of keys for both directions (core/config_json.h).
template <class IO, class C>
void visit(IO& io, C& c) {
  io.get("prompt", c.prompt);
  io.get("model", c.model);
  io.get("negative_prompt", c.negative_prompt);
  io.get("method", c.method);
  io.get("render_resolution", c.render_resolution);
  io.get("views_per_step", c.views_per_step);
  io.get("seed", c.seed);
  {
    auto s = io.section("shading");
    s.get("albedo_warmup_steps", c.shading.albedo_warmup_steps);
    s.get("lambertian_probability", c.shading.lambertian_probability);
    s.get("textureless_probability", c.shading.textureless_probability);
    s.get("ambient_min", c.shading.ambient_min);
    s.get("ambient_max", c.shading.ambient_max);
    s.finish();
  }
  {
    auto s = io.section("regularizers");
    s.get("opacity", c.regularizers.opacity);
    s.get("entropy", c.regularizers.entropy);
    s.get("orientation", c.regularizers.orientation);
    s.finish();
  }
  {
    auto s = io.section("idu");
    s.get("views", c.idu.views);
    s.get("steps_per_view", c.idu.steps_per_view);
    s.get("strength", c.idu.strength);
    s.get("refine_strength", c.idu.refine_strength);
    s.get("refresh_every", c.idu.refresh_every);
    s.get("elevation", c.idu.elevation);
    s.get("elevation_step", c.idu.elevation_step);
    s.get("sample_steps", c.idu.sample_steps);
    s.get("sample_eta", c.idu.sample_eta);
    s.get("guidance_scale", c.idu.guidance_scale);
    s.get("rays_per_step", c.idu.rays_per_step);
    s.get("white_threshold", c.idu.white_threshold);
    s.get("background_weight", c.idu.background_weight);
    s.get("shading", c.idu.shading);
    s.get("ambient", c.idu.ambient);
    s.finish();
  }
  {
    auto s = io.section("optim");
    s.get("steps", c.optim.steps);
    s.get("lr_grid", c.optim.lr_grid);
    s.get("lr_mlp", c.optim.lr_mlp);
    s.get("beta1", c.optim.beta1);
    s.get("beta2", c.optim.beta2);
    s.get("eps", c.optim.eps);
    s.finish();
  }
  {
    auto s = io.section("mesh");
    s.get("resolution", c.mesh.resolution);
    s.get("density_threshold", c.mesh.density_threshold);
    s.get("keep_component_fraction", c.mesh.keep_component_fraction);
    s.get("simplify_ratio", c.mesh.simplify_ratio);
    s.get("max_triangles", c.mesh.max_triangles);
    s.get("fill_cavities", c.mesh.fill_cavities);
    s.finish();
  }
}

}  // namespace

nlohmann::json to_json(const GenerateConfig& c) {
  ConfigWriter w;
  w.get("format_version", c.format_version);
  visit(w, c);
  nlohmann::json j = w.json();
  j["field"] = to_json(c.field);
  j["render"] = to_json(c.render);
  j["guidance"] = to_json(c.guidance);
  return j;
}

GenerateConfig generate_config_from_json(const nlohmann::json& j) {
  GenerateConfig c;
  ConfigReader r(j, "");
  read_format_version(r, c.format_version, kGenerateConfigVersion);
  visit(r, c);
  // Sections of other modules: the file's keys patched onto this config's defaults (a partial "field"
  // keeps the tuned field of GenerateConfig()), then read strictly by their own readers.
  nlohmann::json field = to_json(c.field), render = to_json(c.render), guidance = to_json(c.guidance);
  for (auto [key, into] : {std::pair<const char*, nlohmann::json*>{"field", &field},
                           {"render", &render},
                           {"guidance", &guidance}}) {
    nlohmann::json patch = nlohmann::json::object();
    r.get(key, patch);
    require(patch.is_object(), std::string(key) + ": expected a JSON object");
    into->merge_patch(patch);
  }
  r.finish();
  c.field = field_config_from_json(field);
  c.render = render_config_from_json(render);
  c.guidance = sds_config_from_json(guidance);
  validate(c);
  return c;
}

void validate(const GenerateConfig& c) {
  require(c.method == "sds" || c.method == "idu", "method must be sds or idu, got '" + c.method + "'");
  require(c.render_resolution == 0 || (c.render_resolution >= 8 && c.render_resolution <= 1024),
          "render_resolution must be 0 (the model's) or in [8, 1024]");
  if (c.method == "idu") {
    validate(c.idu);
    require(c.optim.steps >= c.idu.views * c.idu.steps_per_view,
            "method idu: optim.steps (" + std::to_string(c.optim.steps) + ") must cover idu.views × " +
                "idu.steps_per_view (" + std::to_string(c.idu.views * c.idu.steps_per_view) + ")");
  }
  validate(c.guidance);
  require(c.views_per_step >= 1 && c.views_per_step <= 64, "views_per_step must be in [1, 64]");
  require(c.optim.steps >= 1, "optim.steps must be >= 1");
  require(c.optim.lr_grid > 0 && c.optim.lr_mlp > 0, "optim: learning rates must be > 0");
  const auto& s = c.shading;
  require(s.albedo_warmup_steps >= 0, "shading.albedo_warmup_steps must be >= 0");
  require(s.lambertian_probability >= 0 && s.lambertian_probability <= 1 && s.textureless_probability >= 0 &&
              s.textureless_probability <= 1,
          "shading: probabilities must be in [0, 1]");
  require(0 <= s.ambient_min && s.ambient_min <= s.ambient_max && s.ambient_max <= 1,
          "shading: need 0 <= ambient_min <= ambient_max <= 1");
  const auto& g = c.regularizers;
  require(g.opacity >= 0 && g.entropy >= 0 && g.orientation >= 0, "regularizers: weights must be >= 0");
  require(c.mesh.resolution >= 8 && c.mesh.resolution <= 1024, "mesh.resolution must be in [8, 1024]");
  require(c.mesh.density_threshold > 0, "mesh.density_threshold must be > 0");
  require(c.mesh.keep_component_fraction >= 0 && c.mesh.keep_component_fraction <= 1,
          "mesh.keep_component_fraction must be in [0, 1]");
  require(c.mesh.simplify_ratio > 0 && c.mesh.simplify_ratio <= 1, "mesh.simplify_ratio must be in (0, 1]");
  require(c.mesh.max_triangles == 0 || c.mesh.max_triangles >= 100, "mesh.max_triangles must be 0 or >= 100");
}

}  // namespace nd
