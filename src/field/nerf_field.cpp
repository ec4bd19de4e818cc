#include "field/nerf_field.h"

#include "core/config_json.h"
#include "field/sh_encoding.h"
#include "field/trunc_exp.h"

namespace nd {

namespace {

// One list of keys for both JSON directions (core/config_json.h).
template <class IO, class C>
void visit(IO& io, C& c) {
  {
    auto g = io.section("grid");
    g.get("levels", c.grid.levels);
    g.get("features_per_level", c.grid.features_per_level);
    g.get("log2_table_size", c.grid.log2_table_size);
    g.get("base_resolution", c.grid.base_resolution);
    g.get("finest_resolution_per_bound", c.grid.finest_resolution_per_bound);
    g.get("bound", c.grid.bound);
    g.finish();
  }
  io.get("hidden_dim", c.hidden_dim);
  io.get("geo_feature_dim", c.geo_feature_dim);
  io.get("color_hidden_layers", c.color_hidden_layers);
  io.get("view_dependent", c.view_dependent);
  io.get("blob", c.blob);
  io.get("blob_density", c.blob_density);
  io.get("blob_radius", c.blob_radius);
  io.get("fused", c.fused);
}

}  // namespace

nlohmann::json to_json(const FieldConfig& c) {
  ConfigWriter w;
  visit(w, c);
  return w.json();
}

FieldConfig field_config_from_json(const nlohmann::json& j) {
  FieldConfig c;
  ConfigReader r(j, "field");
  visit(r, c);
  r.finish();
  require(c.grid.levels >= 1 && c.grid.levels <= 32, "field.grid.levels: must be in 1..32");
  require(c.grid.features_per_level >= 1 && c.grid.features_per_level <= 8,
          "field.grid.features_per_level: must be in 1..8");
  require(c.grid.log2_table_size >= 8 && c.grid.log2_table_size <= 24,
          "field.grid.log2_table_size: must be in 8..24");
  require(c.grid.base_resolution >= 2, "field.grid.base_resolution: must be >= 2");
  require(c.grid.bound > 0, "field.grid.bound: must be > 0");
  require(c.blob == "none" || c.blob == "dreamfusion" || c.blob == "magic3d",
          "field.blob: expected none, dreamfusion or magic3d, got " + c.blob);
  require(c.hidden_dim % 8 == 0 && c.hidden_dim > 0, "field.hidden_dim: must be a positive multiple of 8");
  require(c.color_hidden_layers >= 1 && c.color_hidden_layers <= 3,
          "field.color_hidden_layers: must be 1..3");
  return c;
}

NerfFieldImpl::NerfFieldImpl(const FieldConfig& config) : config_(config) {
  encoder_ = register_module("encoder", HashGrid(config.grid));
  MLPConfig density_cfg;
  density_cfg.input_dim = encoder_->output_dim();
  density_cfg.hidden_dim = config.hidden_dim;
  density_cfg.hidden_layers = 1;
  density_cfg.output_dim = 1 + config.geo_feature_dim;
  density_net_ = register_module("density_net", FusedMLP(density_cfg));
  MLPConfig color_cfg;
  color_cfg.input_dim = config.geo_feature_dim + (config.view_dependent ? 16 : 0);
  color_cfg.hidden_dim = config.hidden_dim;
  color_cfg.hidden_layers = config.color_hidden_layers;
  color_cfg.output_dim = 3;
  color_net_ = register_module("color_net", FusedMLP(color_cfg));
}

at::Tensor NerfFieldImpl::blob(const at::Tensor& x) const {
  if (config_.blob == "none") return {};
  const double d = config_.blob_density, r = config_.blob_radius;
  auto r2 = (x * x).sum(1);
  if (config_.blob == "dreamfusion") return d * at::exp(-r2 / (2 * r * r));
  return d * (1 - r2.sqrt() / r);  // magic3d
}

std::pair<at::Tensor, at::Tensor> NerfFieldImpl::density_and_features(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == 3, "field: x must be [N,3]");
  auto features = config_.fused ? encoder_->forward(x) : encoder_->forward_reference(x);
  auto h = config_.fused ? density_net_->forward(features) : density_net_->forward_reference(features);
  auto raw = h.select(1, 0);
  auto b = blob(x);
  if (b.defined()) raw = raw + b;
  return {raw, h.slice(1, 1)};
}

FieldOutput NerfFieldImpl::forward(const at::Tensor& x, const at::Tensor& dirs) {
  auto [raw, geo] = density_and_features(x);
  at::Tensor color_in = geo;
  if (config_.view_dependent) {
    TORCH_CHECK(dirs.defined() && dirs.sizes() == x.sizes(), "field: view-dependent color needs dirs [N,3]");
    color_in = at::cat({geo, spherical_harmonics_deg4(dirs)}, 1);
  }
  auto c = config_.fused ? color_net_->forward(color_in) : color_net_->forward_reference(color_in);
  return {trunc_exp(raw), at::sigmoid(c)};
}

at::Tensor NerfFieldImpl::density(const at::Tensor& x) { return trunc_exp(density_and_features(x).first); }

at::Tensor NerfFieldImpl::normals(const at::Tensor& x, double eps) {
  // σ = exp(raw), so -∇σ and -∇raw point the same way; differencing raw avoids inf − inf where σ overflows.
  const int64_t n = x.size(0);
  auto offsets = at::eye(3, x.options()) * eps;  // [3,3]
  auto plus = (x.unsqueeze(1) + offsets.unsqueeze(0)).reshape({-1, 3});
  auto minus = (x.unsqueeze(1) - offsets.unsqueeze(0)).reshape({-1, 3});
  auto raw = density_and_features(at::cat({plus, minus}, 0)).first;
  auto grad = (raw.slice(0, 0, 3 * n) - raw.slice(0, 3 * n)).view({n, 3}) / (2 * eps);
  return -grad / grad.norm(2, 1, true).clamp_min(1e-8);
}

std::vector<at::Tensor> NerfFieldImpl::grid_parameters() { return encoder_->parameters(); }

std::vector<at::Tensor> NerfFieldImpl::mlp_parameters() {
  auto p = density_net_->parameters();
  auto c = color_net_->parameters();
  p.insert(p.end(), c.begin(), c.end());
  return p;
}

}  // namespace nd
