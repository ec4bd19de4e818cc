// What a NeRF optimisation checkpoints, whatever drives it (photos in `fit`, a prior in `generate`): the
// field's tensors ("field.*"), the occupancy grid ("grid.*"), the optimizer ("optim.*"), the torch generator
// ("rng.torch") and the std::mt19937_64 (metadata "rng").
#pragma once
#include <ATen/ATen.h>

#include <random>
#include <string>

#include "field/nerf_field.h"
#include "io/checkpoint.h"
#include "optim/adam.h"
#include "render/renderer.h"

namespace nd {

struct TrainingState {
  NerfFieldImpl& field;
  VolumeRenderer& renderer;
  FusedAdam& adam;
  at::Generator& gen;
  std::mt19937_64& rng;
};

// Parameters and buffers of a module by name.
std::map<std::string, at::Tensor> named_tensors(torch::nn::Module& m);

void save_training_state(const TrainingState& s, Checkpoint& into);
// InputError naming `path` on any mismatch.
void restore_training_state(const TrainingState& s, const Checkpoint& from, const std::string& path);

}  // namespace nd
