// Options shared by the commands that sample the tiny prior (sample, img2img): the prior file, the
// sampler and the camera.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "prior/prior_sampler.h"

namespace nd {

struct PriorCliOptions {
  std::string prior_path;  // empty: default_prior_path()
  PriorSampleOptions sample;
  double elevation = 0, azimuth = 0, radius = 3, fov = 45;
  bool no_camera = false;

  void add_to(CLI::App* cmd);
  // The views for n images of `prompt`: --elevation/--azimuth when given; else the canonical view of the
  // prompt's view word (front e15 a0, side e15 a90, back e15 a180, overhead e70 a30); else n random views
  // from the prior's camera range (seeded). Empty with --no-camera.
  std::vector<View> views(const CLI::App* cmd, const std::string& prompt, int n,
                          const ViewRange& range) const;
};

}  // namespace nd
