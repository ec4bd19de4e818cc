// Exact ray-traced renders of synth objects (ground-truth images for datasets and tests).
//
// Shading (documented contract of this renderer):
//   color = albedo × (ambient + (1 − ambient) · max(0, n·l))   — linear, no gamma, no shadows,
//   with n the outward world normal at the first hit and l = SynthLight::direction_to_light.
//   Background white (1,1,1). With supersample s, each pixel averages s×s rays on a regular sub-grid
//   (box filter): rgb = mean over rays of (hit ? shaded color : 1), alpha = fraction of rays that hit.
//   depth and normal are averaged over the rays that hit (the normal renormalised); 0 where no ray hits.
// Rays follow nd::camera_rays (pixel centres at +0.5, lens distortion honoured): computed inline in double
// for undistorted cameras, through nd::camera_rays for distorted ones.
#pragma once
#include <ATen/ATen.h>

#include <array>

#include "camera/camera.h"
#include "synth/caption.h"

namespace nd {

struct SynthLight {
  // World-space unit vector towards the light; the default comes from above, front and right.
  std::array<float, 3> direction_to_light{0.371391f, 0.742781f, 0.557086f};  // normalise(1, 2, 1.5)
  float ambient = 0.3f;
};

struct SynthRenderOptions {
  SynthLight light;
  int supersample = 1;  // s×s rays per pixel, box-filtered
};

struct SynthImage {
  at::Tensor rgb;     // [H,W,3] float32 in [0,1], composited on white
  at::Tensor alpha;   // [H,W] float32 in [0,1], coverage fraction
  at::Tensor depth;   // [H,W] float32, distance along the ray (not z), 0 where empty
  at::Tensor normal;  // [H,W,3] float32, world-space unit normal, 0 where empty
};

// Renders `object` as seen by `camera` (multi-threaded over rows).
SynthImage render_synth(const SynthObject& object, const Camera& camera,
                        const SynthRenderOptions& options = {});

// The object's own color with straight (un-premultiplied) alpha: [H,W,3] float32, such that
// alpha·straight + (1 − alpha)·1 = image.rgb; white where alpha = 0.
at::Tensor straight_rgb(const SynthImage& image);

}  // namespace nd
