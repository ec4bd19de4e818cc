// A tiny random tiny-prior for tests that need one (trains or runs generate in seconds).
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "prior/tiny_prior.h"

namespace nd::test {

inline TinyPriorConfig tiny_prior_config() {
  TinyPriorConfig c;
  c.resolution = 16;
  c.unet.channels = {16, 32};
  c.unet.attention = {false, true};
  c.unet.groups = 8;
  c.unet.heads = 2;
  c.text.width = 32;
  c.text.layers = 1;
  c.text.heads = 2;
  return c;
}

// Saves random weights (seed 0) of tiny_prior_config() to <dir>/prior.safetensors and returns the path.
inline std::string write_tiny_prior(const std::string& dir) {
  at::manual_seed(0);
  const std::string path = dir + "/prior.safetensors";
  TinyPrior(tiny_prior_config()).save(path);
  return path;
}

}  // namespace nd::test
