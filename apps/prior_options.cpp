#include "apps/prior_options.h"

#include <random>

#include "synth/caption.h"

namespace nd {

void PriorCliOptions::add_to(CLI::App* cmd) {
  cmd->add_option("--prior", prior_path, "Tiny prior weights (default: the shipped models/tiny-prior)");
  cmd->add_option("--steps", sample.steps, "Denoising steps")->capture_default_str();
  cmd->add_option("--cfg", sample.guidance_scale, "Classifier-free guidance scale")->capture_default_str();
  cmd->add_option("--scheduler", sample.scheduler, "ddim | ddpm | pndm | euler")->capture_default_str();
  cmd->add_option("--eta", sample.eta, "DDIM η (0 = deterministic, 1 = stochastic)")->capture_default_str();
  cmd->add_option("--seed", sample.seed, "Seed")->capture_default_str();
  cmd->add_option("--elevation", elevation, "Camera elevation, degrees (default: from the view word)");
  cmd->add_option("--azimuth", azimuth, "Camera azimuth, degrees, 0 = front (default: from the view word)");
  cmd->add_option("--radius", radius, "Camera distance")->capture_default_str();
  cmd->add_option("--fov", fov, "Vertical field of view, degrees")->capture_default_str();
  cmd->add_flag("--no-camera", no_camera, "Do not condition on a camera (text only, as DreamFusion)");
}

std::vector<View> PriorCliOptions::views(const CLI::App* cmd, const std::string& prompt, int n,
                                         const ViewRange& range) const {
  if (no_camera) return {};
  const bool given = cmd->count("--elevation") > 0 || cmd->count("--azimuth") > 0;
  std::string word;
  if (!given) {
    try {
      word = parse_caption(prompt).view;
    } catch (const std::exception&) {
      // Not a caption of the grammar: no view word to honour.
    }
  }
  std::vector<View> out;
  std::mt19937_64 rng(sample.seed ^ 0x5851F42D4C957F2DULL);
  for (int i = 0; i < n; ++i) {
    View v{elevation, azimuth, radius, fov};
    if (!given) {
      if (word == "front")
        v = {15, 0, radius, fov};
      else if (word == "side")
        v = {15, 90, radius, fov};
      else if (word == "back")
        v = {15, 180, radius, fov};
      else if (word == "overhead")
        v = {70, 30, radius, fov};
      else
        v = sample_view(range, rng);
    }
    out.push_back(v);
  }
  return out;
}

}  // namespace nd
