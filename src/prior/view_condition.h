// The cameras the tiny prior is trained on and conditioned by — and that `generate` samples, so that the
// views it renders are views the prior has seen.
//
// A view is an orbit camera of the spec (elevation, azimuth in degrees; radius; vertical fov in degrees)
// looking at the origin. The prior takes it as a small feature vector added (through an MLP) to the
// timestep embedding: the camera conditioning of MVDream / Zero-1-to-3, dropped at random in training so
// the same weights also work without a camera (all-zero features, "unknown view").
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <random>
#include <vector>

namespace nd {

struct View {
  double elevation = 0, azimuth = 0, radius = 3, fov = 45;
};

struct ViewRange {
  double elevation_min = -10, elevation_max = 90;  // degrees; the range
  double radius_min = 2.7, radius_max = 3.3;  // the object (inside the unit ball) fills ~2/3 of the frame
  double fov_min = 40, fov_max = 50;          // vertical, degrees
};

// Uniform azimuth in [-180, 180); elevation half the time uniform in angle, half the time uniform in area
// (sin e uniform), as DreamFusion samples it; radius and fov uniform. Doubles from the top 53 bits of the
// generator (no implementation-defined distributions), so runs are reproducible across platforms.
View sample_view(const ViewRange& range, std::mt19937_64& rng);

// The light of the prior's training images (and of `generate`'s renders): from around the camera, so what
// the camera sees is mostly lit (DreamFusion's choice) — direction_to_light = normalise(unit vector to the
// camera + 0.8 · a uniform random unit vector). Draws two numbers from rng.
std::array<float, 3> light_near_camera(const View& view, std::mt19937_64& rng);

// Uniform double in [0, 1) from the top 53 bits.
double uniform01(std::mt19937_64& rng);

constexpr int kViewFeatures = 10;

// [B, kViewFeatures] float32 features of views: sin/cos of azimuth and 2·azimuth, sin/cos of elevation,
// elevation/90, radius and fov normalised to about [-1, 1] over the default range, and a 1 that says
// "a view is given". known[i] = false gives an all-zero row (camera dropout; no camera).
at::Tensor view_features(const std::vector<View>& views, const std::vector<bool>& known = {});
// The same from a [B,4] float tensor (elevation, azimuth, radius, fov) and an optional [B] bool mask.
at::Tensor view_features(const at::Tensor& views, const at::Tensor& known = {});

}  // namespace nd
