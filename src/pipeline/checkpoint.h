// NeRF checkpoints: one safetensors file holding the field's parameters ("field.*"), the occupancy grid
// ("grid.*"), the optimizer's moments ("optim.*") and the random generators' state ("rng.*"), with the
// resolved run config, the step and the format version in the safetensors metadata.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace nd {

constexpr const char* kCheckpointFormat = "nerfdream.nerf";
constexpr int kCheckpointVersion = 1;

struct Checkpoint {
  nlohmann::json config;  // the resolved run config
  int64_t step = 0;
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> extra;  // other metadata (e.g. the std::mt19937_64 state)
};

// Writes atomically (a temp file renamed into place).
void save_checkpoint(const std::string& path, const Checkpoint& ckpt);

// Reads and checks the format and version; anything wrong is an InputError naming the file.
Checkpoint load_checkpoint(const std::string& path);

// Copies checkpoint tensors "<prefix><name>" into `params` (name → tensor), checking that every name is
// present with the same shape: an InputError names the first mismatch ("incompatible checkpoint").
void restore_tensors(const std::string& path, const std::map<std::string, at::Tensor>& saved,
                     const std::string& prefix, const std::map<std::string, at::Tensor>& params);

}  // namespace nd
