// Fused Adam: one multi-threaded, vectorised pass per parameter (reads p, g, m, v; writes p, m, v),
// instead of the ~8 tensor passes of torch::optim::Adam. Same update as torch::optim::Adam without
// amsgrad (weight decay = L2 added to the gradient), with Instant-NGP's default betas and eps.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nd {

struct AdamGroup {
  std::string name;                // unique; names the group in set_lr() and in the checkpoint keys
  std::vector<at::Tensor> params;  // float32, contiguous, CPU (any shapes)
  double lr = 1e-3;
  double weight_decay = 0;
};

struct AdamOptions {
  double beta1 = 0.9, beta2 = 0.99, eps = 1e-15;
};

class FusedAdam {
 public:
  explicit FusedAdam(std::vector<AdamGroup> groups, AdamOptions options = {});

  // One update of every parameter that has a gradient (others are skipped, their step counts too):
  //   g += wd·p; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
  //   p −= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps)       (t: the parameter's update count)
  void step();
  // Fills every defined gradient with zeros in place (multi-threaded); leaves undefined ones alone.
  // Keeping the gradients allocated lets the hash grid add into them directly.
  void zero_grad();

  // Throws InputError for an unknown group name.
  void set_lr(const std::string& group, double lr);
  double lr(const std::string& group) const;
  const std::vector<AdamGroup>& groups() const { return groups_; }
  // Number of step() calls.
  int64_t steps() const { return steps_; }

  // Checkpoint state: "<prefix>steps" (int64 scalar) and, for parameter i of group G,
  // "<prefix>G.i.exp_avg", "<prefix>G.i.exp_avg_sq" (shaped like the parameter, float32) and
  // "<prefix>G.i.step" (int64 scalar). The tensors are copies.
  std::map<std::string, at::Tensor> state(const std::string& prefix = "") const;
  // Loads what state() wrote; throws InputError naming the key when one is missing or mis-shaped.
  void load_state(const std::map<std::string, at::Tensor>& state, const std::string& prefix = "");

 private:
  struct ParamState {
    at::Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
  };
  AdamGroup& group(const std::string& name);
  std::vector<AdamGroup> groups_;
  std::vector<std::vector<ParamState>> state_;  // [group][param]
  AdamOptions options_;
  int64_t steps_ = 0;
};

}  // namespace nd
