// FusedMLP: the module around fused_mlp, with torch::nn::Linear parameters (names, layout and init).
#include "core/error.h"
#include "field/fused_mlp.h"

namespace nd {

void MLPConfig::validate(const std::string& where) const {
  auto check = [&](int value, int lo, int hi, const char* name) {
    require(value >= lo && value <= hi, where + "." + name + ": must be in [" + std::to_string(lo) + ", " +
                                            std::to_string(hi) + "], got " + std::to_string(value));
  };
  check(input_dim, 1, 1024, "input_dim");
  check(hidden_dim, 1, 1024, "hidden_dim");
  check(hidden_layers, 1, 16, "hidden_layers");
  check(output_dim, 1, 1024, "output_dim");
}

FusedMLPImpl::FusedMLPImpl(MLPConfig config) : config_(config) {
  config_.validate();
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (int l = 0; l <= config_.hidden_layers; ++l) {
    const int in = l == 0 ? config_.input_dim : config_.hidden_dim;
    const int out = l == config_.hidden_layers ? config_.output_dim : config_.hidden_dim;
    torch::nn::Linear linear(torch::nn::LinearOptions(in, out).bias(config_.bias));
    layers_->push_back(linear);
    linears_.push_back(linear);
  }
}

std::vector<at::Tensor> FusedMLPImpl::weights() const {
  std::vector<at::Tensor> w;
  for (const torch::nn::Linear& linear : linears_) w.push_back(linear->weight);
  return w;
}

std::vector<at::Tensor> FusedMLPImpl::biases() const {
  std::vector<at::Tensor> b;
  if (config_.bias)
    for (const torch::nn::Linear& linear : linears_) b.push_back(linear->bias);
  return b;
}

at::Tensor FusedMLPImpl::forward(const at::Tensor& x) { return fused_mlp(x, weights(), biases()); }

at::Tensor FusedMLPImpl::forward_reference(const at::Tensor& x) {
  return fused_mlp_reference(x, weights(), biases());
}

}  // namespace nd
