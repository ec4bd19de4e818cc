// Shading of the field's albedo at each sample (DreamFusion's modes):
//   albedo       c = albedo
//   lambertian   c = albedo · (ambient + (1 − ambient) · max(0, n·l))
//   textureless  c = ambient + (1 − ambient) · max(0, n·l)   (white material: shape only)
//   normal       c = (n + 1) / 2                              (for visualisation)
// n: the field's outward unit normal, l: unit direction towards the light (world space) — one light for
// all samples, or a headlight (l = −the ray's direction: the light sits at the eye of each ray's camera, so
// rays of different cameras in one batch are each lit from their own viewpoint).
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <string>

namespace nd {

enum class Shading { Albedo, Lambertian, Textureless, Normal };

// "albedo" | "lambertian" | "textureless" | "normal"; anything else is an InputError listing them.
Shading parse_shading(const std::string& name);
const char* shading_name(Shading s);
bool shading_needs_normals(Shading s);

struct ShadingParams {
  Shading mode = Shading::Albedo;
  std::array<float, 3> light_dir{0.0f, 1.0f, 0.0f};  // towards the light, unit
  float ambient = 0.1f;
  bool headlight = false;  // l = −ray direction per sample (light_dir unused)
};

// albedo: [N,3]; normals: [N,3] unit (may be undefined for the albedo mode); dirs: [N,3] unit ray directions
// of the samples (needed only for a headlight) → color [N,3].
at::Tensor shade(const at::Tensor& albedo, const at::Tensor& normals, const ShadingParams& params,
                 const at::Tensor& dirs = {});

}  // namespace nd
