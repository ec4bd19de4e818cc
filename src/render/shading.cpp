#include "render/shading.h"

#include "core/error.h"

namespace nd {

Shading parse_shading(const std::string& name) {
  if (name == "albedo") return Shading::Albedo;
  if (name == "lambertian") return Shading::Lambertian;
  if (name == "textureless") return Shading::Textureless;
  if (name == "normal") return Shading::Normal;
  throw InputError("unknown shading '" + name + "' (expected albedo, lambertian, textureless or normal)");
}

const char* shading_name(Shading s) {
  switch (s) {
    case Shading::Albedo:
      return "albedo";
    case Shading::Lambertian:
      return "lambertian";
    case Shading::Textureless:
      return "textureless";
    case Shading::Normal:
      return "normal";
  }
  return "?";
}

bool shading_needs_normals(Shading s) { return s != Shading::Albedo; }

at::Tensor shade(const at::Tensor& albedo, const at::Tensor& normals, const ShadingParams& p,
                 const at::Tensor& dirs) {
  if (p.mode == Shading::Albedo) return albedo;
  TORCH_CHECK(normals.defined() && normals.sizes() == albedo.sizes(), "shade: normals must be [N,3]");
  if (p.mode == Shading::Normal) return (normals + 1) * 0.5;
  at::Tensor l;
  if (p.headlight) {
    TORCH_CHECK(dirs.defined() && dirs.sizes() == albedo.sizes(),
                "shade: a headlight needs the [N,3] ray dirs");
    l = -dirs;
  } else {
    l = at::tensor({p.light_dir[0], p.light_dir[1], p.light_dir[2]}, albedo.options());
  }
  auto lambert = (normals * l).sum(1, true).clamp_min(0);  // [N,1]
  auto light = p.ambient + (1 - p.ambient) * lambert;
  if (p.mode == Shading::Lambertian) return albedo * light;
  return light.expand({-1, 3});  // textureless
}

}  // namespace nd
