#include "prior/view_condition.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace nd {

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

std::array<float, 3> light_near_camera(const View& view, std::mt19937_64& rng) {
  constexpr double kDeg = M_PI / 180;
  const double e = view.elevation * kDeg, a = view.azimuth * kDeg;
  const double z = 2 * uniform01(rng) - 1, phi = 2 * M_PI * uniform01(rng), s = std::sqrt(1 - z * z);
  const double d[3] = {std::cos(e) * std::sin(a) + 0.8 * s * std::cos(phi),
                       std::sin(e) + 0.8 * s * std::sin(phi), std::cos(e) * std::cos(a) + 0.8 * z};
  const double n = std::sqrt(std::max(d[0] * d[0] + d[1] * d[1] + d[2] * d[2], 1e-12));
  return {static_cast<float>(d[0] / n), static_cast<float>(d[1] / n), static_cast<float>(d[2] / n)};
}

View sample_view(const ViewRange& r, std::mt19937_64& rng) {
  constexpr double kDeg = M_PI / 180;
  View v;
  v.azimuth = -180 + 360 * uniform01(rng);
  const bool by_area = uniform01(rng) < 0.5;
  const double u = uniform01(rng);
  if (by_area) {
    const double s0 = std::sin(r.elevation_min * kDeg), s1 = std::sin(r.elevation_max * kDeg);
    v.elevation = std::asin(s0 + (s1 - s0) * u) / kDeg;
  } else {
    v.elevation = r.elevation_min + (r.elevation_max - r.elevation_min) * u;
  }
  v.radius = r.radius_min + (r.radius_max - r.radius_min) * uniform01(rng);
  v.fov = r.fov_min + (r.fov_max - r.fov_min) * uniform01(rng);
  return v;
}

at::Tensor view_features(const at::Tensor& views, const at::Tensor& known) {
  TORCH_CHECK(views.dim() == 2 && views.size(1) == 4, "view_features: views must be [B,4], got ",
              views.sizes());
  constexpr double kDeg = M_PI / 180;
  const at::Tensor v = views.to(at::kFloat);
  const at::Tensor e = v.select(1, 0) * kDeg, a = v.select(1, 1) * kDeg;
  at::Tensor f = at::stack(
      {at::sin(a), at::cos(a), at::sin(2 * a), at::cos(2 * a), at::sin(e), at::cos(e), v.select(1, 0) / 90,
       (v.select(1, 2) - 3.0) / 0.3, (v.select(1, 3) - 45.0) / 5, at::ones_like(e)},
      1);
  if (known.defined()) {
    TORCH_CHECK(known.dim() == 1 && known.size(0) == views.size(0), "view_features: known must be [B]");
    f = f * known.to(at::kFloat).unsqueeze(1);
  }
  return f;
}

at::Tensor view_features(const std::vector<View>& views, const std::vector<bool>& known) {
  require(known.empty() || known.size() == views.size(), "view_features: one 'known' flag per view");
  at::Tensor t = at::empty({static_cast<int64_t>(views.size()), 4}, at::kFloat);
  at::Tensor k = at::ones({static_cast<int64_t>(views.size())}, at::kBool);
  auto a = t.accessor<float, 2>();
  for (size_t i = 0; i < views.size(); ++i) {
    a[i][0] = static_cast<float>(views[i].elevation);
    a[i][1] = static_cast<float>(views[i].azimuth);
    a[i][2] = static_cast<float>(views[i].radius);
    a[i][3] = static_cast<float>(views[i].fov);
    if (!known.empty() && !known[i]) k[i] = false;
  }
  return view_features(t, k);
}

}  // namespace nd
