// A fully fused small MLP (the idea of tiny-cuda-nn's FullyFusedMLP, on a CPU):
//   y = W_L·relu(... relu(W_1·relu(W_0·x + b_0) + b_1) ...) + b_L      (linear output, float32)
//
// Points are processed in tiles of kFusedMLPTile points per thread; a tile's activations stay in L1/L2
// and the weights in L1, with register-blocked AVX2/FMA inner loops (GCC/Clang vector extensions without
// AVX2). Plain matmuls on [131072,64] activations are memory-bound (~25 GFLOP/s on 2 cores here); the
// fused kernels reach ~140 GFLOP/s forward (bench/bench_fused_mlp.cpp).
//
// Layer l has weight W_l [out_l, in_l] and bias b_l [out_l] (the torch::nn::Linear layout), with
// in_0 = input dim, in_{l+1} = out_l, and out_{L-1} = output dim. Every layer but the last applies ReLU.
// It runs with any widths; hidden widths that are multiples of 8 waste no SIMD lanes.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

namespace nd {

// Points per tile of the fused kernels (a multiple of 16).
constexpr int kFusedMLPTile = 64;

// How backward gets the hidden activations: recomputed per tile in backward (the default: ~1/3 more
// FLOPs, but no [N, hidden] buffer at all), or saved by forward (written once, read once from DRAM;
// glibc maps a fresh >= 32 MB buffer on every call, and its page faults cost more than the FLOPs).
enum class MLPActivations { kRecompute, kSave };

// ----------------------------------------------------------------------------------------------------
// Ops. x: [N, in] float32 CPU; weights[l]: [out_l, in_l]; biases: empty (no bias) or one [out_l] per
// layer. Returns y: [N, out].

// The fused op as a torch::autograd::Function: gradients for x (only when x requires grad), every
// weight and every bias (once differentiable: no double backward). Under no-grad, or when nothing
// requires grad, it runs the forward kernel only.
at::Tensor fused_mlp(const at::Tensor& x, const std::vector<at::Tensor>& weights,
                     const std::vector<at::Tensor>& biases,
                     MLPActivations activations = MLPActivations::kRecompute);

// The same function as a plain at::linear / at::relu chain: differentiable by autograd, any dtype.
at::Tensor fused_mlp_reference(const at::Tensor& x, const std::vector<at::Tensor>& weights,
                               const std::vector<at::Tensor>& biases);

// Checks the shapes above (TORCH_CHECK): layer widths chain, biases match, x is [N, in_0].
void check_mlp_arguments(const at::Tensor& x, const std::vector<at::Tensor>& weights,
                         const std::vector<at::Tensor>& biases);

// ----------------------------------------------------------------------------------------------------
// The CPU kernels behind fused_mlp (float32; exposed for tests and benchmarks).

struct FusedMLPForward {
  at::Tensor y;            // [N, out]
  at::Tensor activations;  // [ceil(N / tile), sum of hidden widths, tile]: post-ReLU hidden
                           // activations, feature-major per tile; undefined unless saved
};

FusedMLPForward fused_mlp_forward_cpu(const at::Tensor& x, const std::vector<at::Tensor>& weights,
                                      const std::vector<at::Tensor>& biases, bool save_activations);

struct FusedMLPGrads {
  at::Tensor grad_x;                     // [N, in], undefined unless need_grad_x
  std::vector<at::Tensor> grad_weights;  // [out_l, in_l] each, empty unless need_grad_params
  std::vector<at::Tensor> grad_biases;   // [out_l] each, empty unless need_grad_params and biases
};

// grad_y: [N, out]. activations: FusedMLPForward::activations, or undefined to recompute them.
FusedMLPGrads fused_mlp_backward_cpu(const at::Tensor& grad_y, const at::Tensor& x,
                                     const std::vector<at::Tensor>& weights,
                                     const std::vector<at::Tensor>& biases, const at::Tensor& activations,
                                     bool need_grad_x, bool need_grad_params);

// ----------------------------------------------------------------------------------------------------
// The module.

struct MLPConfig {
  int input_dim = 0;
  int hidden_dim = 64;    // fastest as a multiple of 8
  int hidden_layers = 1;  // number of hidden (ReLU) layers: hidden_layers + 1 linear layers
  int output_dim = 0;
  bool bias = true;
  // Throws nd::InputError naming `where` (e.g. "field.density_mlp") when a size is out of range:
  // input_dim 1..1024, hidden_dim 1..1024, hidden_layers 1..16, output_dim 1..1024.
  void validate(const std::string& where = "mlp") const;
};

// Parameters "layers.<i>.weight" [out,in] and "layers.<i>.bias" [out], i = 0..hidden_layers, initialised
// like torch::nn::Linear (kaiming-uniform weights, U(-1/sqrt(in), 1/sqrt(in)) biases).
class FusedMLPImpl : public torch::nn::Module {
 public:
  explicit FusedMLPImpl(MLPConfig config);
  // x: [N, input_dim] float32 → [N, output_dim], linear output.
  at::Tensor forward(const at::Tensor& x);
  // The same through fused_mlp_reference (any dtype: call .to(torch::kFloat64) on the module first).
  at::Tensor forward_reference(const at::Tensor& x);

  const MLPConfig& config() const { return config_; }
  std::vector<at::Tensor> weights() const;
  std::vector<at::Tensor> biases() const;  // empty without bias

 private:
  MLPConfig config_;
  torch::nn::ModuleList layers_{nullptr};
  std::vector<torch::nn::Linear> linears_;
};
TORCH_MODULE(FusedMLP);

}  // namespace nd
