// The NeRF field: position → density σ and color (albedo, or view-dependent color for fitting photos).
//
//   x [N,3] ──hash grid──▶ features [N, L·F] ──density MLP──▶ [N, 1 + geo] ──▶ σ = trunc_exp(raw + blob(x))
//                                                                   └─ geo features (+ SH(dir)) ──color
//                                                                   MLP──▶ sigmoid ──▶ rgb
//
// Instant-NGP's NeRF network with one hidden layer per MLP (width 64). The optional density "blob" is
// the prior DreamFusion and Magic3D add so that text-to-3D starts from an object at the centre.
#pragma once
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>
#include <string>

#include "field/fused_mlp.h"
#include "field/hash_grid.h"

namespace nd {

struct FieldConfig {
  HashGridConfig grid;
  int hidden_dim = 64;
  int geo_feature_dim = 15;  // features passed from the density MLP to the color MLP
  int color_hidden_layers = 1;
  bool view_dependent = false;  // color also depends on the view direction (SH degree 4)
  std::string blob = "none";    // "none" | "dreamfusion": d·exp(-|x|²/(2r²)) | "magic3d": d·(1 - |x|/r)
  double blob_density = 5.0;
  double blob_radius = 0.2;
  bool fused = true;  // fused CPU kernels; false = the plain-LibTorch reference ops (tests, benchmarks)
};
nlohmann::json to_json(const FieldConfig& c);
FieldConfig field_config_from_json(const nlohmann::json& j);  // strict: unknown keys are an InputError

struct FieldOutput {
  at::Tensor sigma;  // [N] ≥ 0
  at::Tensor rgb;    // [N,3] in (0,1)
};

class NerfFieldImpl : public torch::nn::Module {
 public:
  explicit NerfFieldImpl(const FieldConfig& config);

  // x: [N,3] in [-bound, bound]; dirs: [N,3] unit view directions (used only when view_dependent).
  FieldOutput forward(const at::Tensor& x, const at::Tensor& dirs = {});
  // x: [N,3] → σ [N].
  at::Tensor density(const at::Tensor& x);
  // Outward unit normals -∇σ/|∇σ| by central differences of σ (differentiable w.r.t. the parameters,
  // no double backward needed). x: [N,3] → [N,3].
  at::Tensor normals(const at::Tensor& x, double eps = 1e-2);

  const FieldConfig& config() const { return config_; }
  double bound() const { return config_.grid.bound; }

  // Parameter groups for the optimizer: the hash table learns ~10× faster than the MLPs.
  std::vector<at::Tensor> grid_parameters();
  std::vector<at::Tensor> mlp_parameters();

 private:
  // Returns (raw density pre-activation [N], geo features [N, geo]).
  std::pair<at::Tensor, at::Tensor> density_and_features(const at::Tensor& x);
  at::Tensor blob(const at::Tensor& x) const;

  FieldConfig config_;
  HashGrid encoder_{nullptr};
  FusedMLP density_net_{nullptr};
  FusedMLP color_net_{nullptr};
};
TORCH_MODULE(NerfField);

}  // namespace nd
