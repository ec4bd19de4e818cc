// The iterative dataset update (`generate --method idu`): the loop people describe when they first meet
// text-to-3D. Sample one view from the prior for a first camera; fit the NeRF to the views collected so far
// (photometric loss); move the camera along the orbit; render; noise the render to strength s and denoise it
// with the prior under the view-dependent prompt and the camera (SDEdit); add it to the collection; repeat
// until the orbit is covered; then refine, re-denoising one view now and then at a lower strength so the
// collection converges to views of one object (Instruct-NeRF2NeRF's update).
//
// This class owns the collection and the schedule; pipeline/text_to_3d.cpp renders, calls the prior and
// fits. The orbit alternates sides from the front (0, +d, −d, +2d, −2d, …, d = 360°/views) so the object
// grows symmetrically from its first view, and alternates two elevations so the top is seen too.
#pragma once
#include <ATen/ATen.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "camera/camera.h"
#include "io/checkpoint.h"
#include "prior/view_condition.h"

namespace nd {

struct IDUConfig {
  int views = 12;                // views on the orbit; the first is sampled from noise
  int64_t steps_per_view = 50;   // fitting steps between two new views
  double strength = 0.6;         // SDEdit strength of a new view (fraction of the schedule)
  double refine_strength = 0.3;  // strength when a view is refreshed during the refinement
  int64_t refresh_every = 50;    // refinement: refresh one view (round robin) every N steps; 0: never
  // Degrees; every other pair of views is at elevation + elevation_step. The first view (sampled from
  // noise: the whole object is built from it) looks down at 40°: there the chair's seat shows in front of
  // its backrest, so the fit from one view puts the backrest behind (at 15° it put it in front, 5 of 5).
  double elevation = 40;
  double elevation_step = -25;
  int sample_steps = 50;         // DDIM steps of each prior call
  double sample_eta = 1;         // DDIM η (stochastic: fresh noise hides the render's artefacts)
  double guidance_scale = 1;     // CFG of the prior calls (the tiny prior samples best unguided)
  int64_t rays_per_step = 1024;  // photometric fit: random pixels over all collected views
  // How the NeRF is rendered to be compared with the views (and to be SDEdited): "lambertian" lights it as
  // the prior's training images are lit — from the camera (a headlight; their light is the camera's
  // direction plus a random offset) with this ambient (the middle of their range) — so the albedo field
  // learns the object's color and not its shading; "albedo" compares the albedo with the shaded views.
  std::string shading = "lambertian";
  double ambient = 0.3;
  // Pixels whose every channel is at least this are set to white (1 = off). The prior's samples have a
  // faintly noisy white background; fitting it exactly grows faint floaters.
  double white_threshold = 0.9;
  // Weight of mean(opacity²) on background (white) pixels: the prior draws objects on white, so what is
  // white there is empty space — else white floaters, invisible on white, survive the photometric loss.
  double background_weight = 0.1;
};
void validate(const IDUConfig& c);  // InputError naming the idu.* key

class IterativeDatasetUpdate {
 public:
  // resolution: the collected images' size; range: the prior's cameras (radius and fov from its middle).
  IterativeDatasetUpdate(const IDUConfig& config, int resolution, const ViewRange& range);

  enum class Action { kNone, kSample, kAdd, kRefresh };
  struct Due {
    Action action = Action::kNone;
    int index = 0;  // the view it concerns
  };
  // What to do before fitting step `step`: sample the first view, add view i, refresh view i, or nothing.
  Due due(int64_t step) const;
  // The i-th camera of the orbit.
  View orbit_view(int index) const;
  // The strength for an action.
  double strength(Action action) const;

  // Stores (or replaces) view i's image [1,3,R,R] or [R,R,3] in [0,1], near-white pixels made white.
  void set(int index, const at::Tensor& image);
  int collected() const { return collected_; }
  bool empty() const { return collected_ == 0; }

  // n random pixels over the collected views: their rays (through a random point of the pixel, so the field
  // is not left free between the pixel centres of the few fixed cameras) and target colors [n,3].
  struct Batch {
    Rays rays;
    at::Tensor colors;      // [n,3]
    at::Tensor background;  // [n] float 1 where the target is pure white (background), else 0
  };
  Batch sample_pixels(int64_t n, std::mt19937_64& rng) const;

  // The collection as [N,R,R,3] (for views.png-like debugging and tests).
  at::Tensor images() const { return images_.narrow(0, 0, collected_); }

  void save(Checkpoint& into) const;                              // "idu.*" tensors
  void restore(const Checkpoint& from, const std::string& path);  // InputError naming path

 private:
  IDUConfig config_;
  int resolution_;
  ViewRange range_;
  at::Tensor images_;    // [views, R, R, 3]
  CameraBatch cameras_;  // the orbit cameras
  int collected_ = 0;
};

}  // namespace nd
