// The fused MLP as plain LibTorch ops: the reference the fused kernels are tested against.
#include "field/fused_mlp.h"

namespace nd {

void check_mlp_arguments(const at::Tensor& x, const std::vector<at::Tensor>& weights,
                         const std::vector<at::Tensor>& biases) {
  TORCH_CHECK(!weights.empty(), "fused_mlp: no layers");
  TORCH_CHECK(biases.empty() || biases.size() == weights.size(), "fused_mlp: ", biases.size(), " biases for ",
              weights.size(), " layers");
  TORCH_CHECK(x.dim() == 2, "fused_mlp: x must be [N, in], got ", x.sizes());
  int64_t in = x.size(1);
  for (size_t l = 0; l < weights.size(); ++l) {
    const at::Tensor& w = weights[l];
    TORCH_CHECK(w.dim() == 2 && w.size(1) == in && w.size(0) >= 1, "fused_mlp: weight ", l, " must be [out, ",
                in, "], got ", w.sizes());
    TORCH_CHECK(w.scalar_type() == x.scalar_type() && w.device() == x.device(), "fused_mlp: weight ", l,
                " dtype/device differs from x");
    if (!biases.empty()) {
      const at::Tensor& b = biases[l];
      TORCH_CHECK(b.dim() == 1 && b.size(0) == w.size(0), "fused_mlp: bias ", l, " must be [", w.size(0),
                  "], got ", b.sizes());
      TORCH_CHECK(b.scalar_type() == x.scalar_type() && b.device() == x.device(), "fused_mlp: bias ", l,
                  " dtype/device differs from x");
    }
    in = w.size(0);
  }
}

at::Tensor fused_mlp_reference(const at::Tensor& x, const std::vector<at::Tensor>& weights,
                               const std::vector<at::Tensor>& biases) {
  check_mlp_arguments(x, weights, biases);
  at::Tensor h = x;
  for (size_t l = 0; l < weights.size(); ++l) {
    h = biases.empty() ? at::linear(h, weights[l]) : at::linear(h, weights[l], biases[l]);
    if (l + 1 < weights.size()) h = at::relu(h);
  }
  return h;
}

}  // namespace nd
