#include "synth/synth_renderer.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "synth/scene.h"

namespace nd {

SynthImage render_synth(const SynthObject& object, const Camera& camera, const SynthRenderOptions& options) {
  const int w = camera.intrinsics.width, h = camera.intrinsics.height, s = options.supersample;
  require(w > 0 && h > 0, "render_synth: camera has no pixels");
  require(s >= 1 && s <= 16, "render_synth: supersample must be in [1, 16]");
  const float ambient = options.light.ambient;
  std::array<double, 3> l{options.light.direction_to_light[0], options.light.direction_to_light[1],
                          options.light.direction_to_light[2]};
  const double l_len = std::sqrt(l[0] * l[0] + l[1] * l[1] + l[2] * l[2]);
  require(l_len > 0, "render_synth: light direction must be non-zero");
  for (auto& c : l) c /= l_len;

  // Sub-pixel (u, v) of ray k of pixel (col, row): (col + (b + 0.5)/s, row + (a + 0.5)/s), k = a·s + b.
  // Undistorted cameras get their rays inline (same formula as nd::camera_rays, in double); distorted
  // ones take nd::camera_rays' undistortion, precomputed with each row's rays contiguous.
  const int64_t ss = int64_t(s) * s;
  const Intrinsics& K = camera.intrinsics;
  const auto& M = camera.c2w;
  at::Tensor ray_origins, ray_dirs;
  if (K.distorted()) {
    const int64_t n = int64_t(w) * h * ss;
    auto sub = (at::arange(s, at::kFloat) + 0.5f) / float(s);
    auto u = (at::arange(w, at::kFloat).view({1, w, 1, 1}) + sub.view({1, 1, 1, s})).expand({h, w, s, s});
    auto v = (at::arange(h, at::kFloat).view({h, 1, 1, 1}) + sub.view({1, 1, s, 1})).expand({h, w, s, s});
    Rays rays = camera_rays(camera, at::stack({u.reshape({n}), v.reshape({n})}, 1));
    ray_origins = rays.origins;
    ray_dirs = rays.dirs;
  }
  const float* ro = ray_origins.defined() ? ray_origins.data_ptr<float>() : nullptr;
  const float* rd = ray_dirs.defined() ? ray_dirs.data_ptr<float>() : nullptr;
  auto make_ray = [&](int64_t row, int64_t col, int64_t k, std::array<double, 3>& o,
                      std::array<double, 3>& d) {
    if (rd) {
      const int64_t r = (row * w + col) * ss + k;
      o = {ro[3 * r], ro[3 * r + 1], ro[3 * r + 2]};
      d = {rd[3 * r], rd[3 * r + 1], rd[3 * r + 2]};
    } else {
      const double u = col + (k % s + 0.5) / s, v = row + (k / s + 0.5) / s;
      // OpenCV pixel → OpenGL camera axes (x right, y up, looking down -z), then rotate to world.
      const double x = (u - K.cx) / K.fx, y = -(v - K.cy) / K.fy;
      o = {M[3], M[7], M[11]};
      d = {M[0] * x + M[1] * y - M[2], M[4] * x + M[5] * y - M[6], M[8] * x + M[9] * y - M[10]};
    }
    const double len = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    for (auto& c : d) c /= len;
  };

  SynthImage img;
  img.rgb = at::empty({h, w, 3}, at::kFloat);
  img.alpha = at::empty({h, w}, at::kFloat);
  img.depth = at::empty({h, w}, at::kFloat);
  img.normal = at::empty({h, w, 3}, at::kFloat);
  float* rgb = img.rgb.data_ptr<float>();
  float* alpha = img.alpha.data_ptr<float>();
  float* depth = img.depth.data_ptr<float>();
  float* normal = img.normal.data_ptr<float>();
  const SynthScene scene(object);

  at::parallel_for(0, h, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      for (int64_t col = 0; col < w; ++col) {
        const int64_t px = row * w + col;
        double c[3] = {0, 0, 0}, nsum[3] = {0, 0, 0}, dsum = 0;
        int hits = 0;
        for (int64_t k = 0; k < ss; ++k) {
          std::array<double, 3> o, d;
          make_ray(row, col, k, o, d);
          SynthHit hit;
          if (!scene.intersect(o, d, &hit)) {
            for (auto& x : c) x += 1.0;
            continue;
          }
          ++hits;
          const double ndotl = hit.normal[0] * l[0] + hit.normal[1] * l[1] + hit.normal[2] * l[2];
          const double shade = ambient + (1.0 - ambient) * std::max(0.0, ndotl);
          for (int i = 0; i < 3; ++i) {
            c[i] += hit.albedo[i] * shade;
            nsum[i] += hit.normal[i];
          }
          dsum += hit.t;
        }
        alpha[px] = float(double(hits) / ss);
        for (int i = 0; i < 3; ++i) rgb[3 * px + i] = float(std::clamp(c[i] / ss, 0.0, 1.0));
        const double nlen = std::sqrt(nsum[0] * nsum[0] + nsum[1] * nsum[1] + nsum[2] * nsum[2]);
        depth[px] = hits ? float(dsum / hits) : 0.f;
        for (int i = 0; i < 3; ++i) normal[3 * px + i] = nlen > 0 ? float(nsum[i] / nlen) : 0.f;
      }
    }
  });
  return img;
}

at::Tensor straight_rgb(const SynthImage& image) {
  // rgb = alpha·C + (1 − alpha) ⇒ C = (rgb − (1 − alpha)) / alpha.
  auto a = image.alpha.unsqueeze(-1);
  auto straight = (image.rgb - (1 - a)) / a.clamp_min(1e-6);
  return at::where(a > 0, straight.clamp(0, 1), at::ones_like(image.rgb));
}

}  // namespace nd
