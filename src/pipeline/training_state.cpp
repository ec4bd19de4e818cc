#include "pipeline/training_state.h"

#include <sstream>

#include "core/error.h"

namespace nd {

std::map<std::string, at::Tensor> named_tensors(torch::nn::Module& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& item : m.named_parameters()) out[item.key()] = item.value();
  for (const auto& item : m.named_buffers()) out[item.key()] = item.value();
  return out;
}

void save_training_state(const TrainingState& s, Checkpoint& c) {
  for (const auto& [k, v] : named_tensors(s.field)) c.tensors["field." + k] = v.detach();
  for (const auto& [k, v] : s.renderer.grid_const().state()) c.tensors["grid." + k] = v;
  for (const auto& [k, v] : s.adam.state("optim.")) c.tensors[k] = v;
  c.tensors["rng.torch"] = s.gen.get_state();
  std::ostringstream ss;
  ss << s.rng;
  c.extra["rng"] = ss.str();
}

void restore_training_state(const TrainingState& s, const Checkpoint& ckpt, const std::string& path) {
  restore_tensors(path, ckpt.tensors, "field.", named_tensors(s.field));
  std::map<std::string, at::Tensor> grid_state, optim_state;
  for (const auto& [k, v] : ckpt.tensors) {
    if (k.rfind("grid.", 0) == 0) grid_state[k.substr(5)] = v;
    if (k.rfind("optim.", 0) == 0) optim_state[k] = v;
  }
  try {
    s.renderer.grid().load_state(grid_state);
    s.adam.load_state(optim_state, "optim.");
  } catch (const InputError& e) {
    throw InputError(path + ": incompatible checkpoint: " + e.what());
  }
  auto it = ckpt.extra.find("rng");
  if (it != ckpt.extra.end()) {
    std::istringstream ss(it->second);
    ss >> s.rng;
  }
  auto g = ckpt.tensors.find("rng.torch");
  if (g != ckpt.tensors.end()) s.gen.set_state(g->second);
}

}  // namespace nd
