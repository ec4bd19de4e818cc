// Training checkpoints: one safetensors file of named tensors with the resolved run config, the step, the
// format name and its version in the safetensors metadata. Two formats use it:
//   NeRF fits ("nerfdream.nerf"): the field's parameters ("field.*"), the occupancy grid ("grid.*"), the
//   optimizer's moments ("optim.*") and the random generators' state ("rng.*");
//   tiny priors ("nerfdream.prior"): the model ("model.*"), its EMA ("ema.*") and optimizer state;
//   text-to-3D runs ("nerfdream.text-to-3d"): as NeRF fits, with the generate config.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace nd {

struct CheckpointFormat {
  const char* id;    // the metadata's "format"
  int version;       // the metadata's "format_version" this build reads and writes
  const char* what;  // for messages: "NeRF checkpoint"
};
constexpr CheckpointFormat kNerfCheckpoint{"nerfdream.nerf", 1, "NeRF checkpoint"};
constexpr CheckpointFormat kPriorCheckpoint{"nerfdream.prior", 1, "tiny-prior checkpoint"};
constexpr CheckpointFormat kGenerateCheckpoint{"nerfdream.text-to-3d", 1, "generate checkpoint"};

struct Checkpoint {
  nlohmann::json config;  // the resolved run config
  int64_t step = 0;
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> extra;  // other metadata (e.g. the std::mt19937_64 state)
};

// Writes atomically (a temp file renamed into place).
void save_checkpoint(const std::string& path, const Checkpoint& ckpt,
                     const CheckpointFormat& format = kNerfCheckpoint);

// Reads and checks the format and version; anything wrong is an InputError naming the file.
Checkpoint load_checkpoint(const std::string& path, const CheckpointFormat& format = kNerfCheckpoint);

// Copies checkpoint tensors "<prefix><name>" into `params` (name → tensor), checking that every name is
// present with the same shape: an InputError names the first mismatch ("incompatible checkpoint").
void restore_tensors(const std::string& path, const std::map<std::string, at::Tensor>& saved,
                     const std::string& prefix, const std::map<std::string, at::Tensor>& params);

}  // namespace nd
