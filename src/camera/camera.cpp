#include "camera/camera.h"

#include <cmath>

#include "core/error.h"

namespace nd {

namespace {
constexpr double kPi = 3.14159265358979323846;
double radians(double deg) { return deg * kPi / 180.0; }
}  // namespace

Intrinsics Intrinsics::downscaled(int factor) const {
  Intrinsics out = *this;
  // Pixel (i, j) of the smaller image covers pixels [i·f, (i+1)·f) × [j·f, (j+1)·f) of the original
  // (a box filter that drops the last W % f columns and H % f rows), so every pixel unit shrinks by f.
  out.width = width / factor;
  out.height = height / factor;
  out.fx = fx / factor;
  out.fy = fy / factor;
  out.cx = cx / factor;
  out.cy = cy / factor;
  return out;
}

Intrinsics pinhole_intrinsics(int width, int height, double fov_y_deg) {
  Intrinsics k;
  k.width = width;
  k.height = height;
  k.fy = 0.5 * height / std::tan(0.5 * radians(fov_y_deg));
  k.fx = k.fy;
  k.cx = 0.5 * width;
  k.cy = 0.5 * height;
  return k;
}

Camera orbit_camera(double radius, double elevation_deg, double azimuth_deg, double fov_y_deg, int width,
                    int height) {
  const double e = radians(elevation_deg), a = radians(azimuth_deg);
  const double px = radius * std::cos(e) * std::sin(a), py = radius * std::sin(e),
               pz = radius * std::cos(e) * std::cos(a);
  // back = -forward = position / radius; right = (cos a, 0, -sin a); up = back × right.
  const double bx = std::cos(e) * std::sin(a), by = std::sin(e), bz = std::cos(e) * std::cos(a);
  const double rx = std::cos(a), ry = 0.0, rz = -std::sin(a);
  const double ux = by * rz - bz * ry, uy = bz * rx - bx * rz, uz = bx * ry - by * rx;
  Camera cam;
  cam.intrinsics = pinhole_intrinsics(width, height, fov_y_deg);
  cam.c2w = {rx, ux, bx, px, ry, uy, by, py, rz, uz, bz, pz, 0, 0, 0, 1};
  return cam;
}

const char* view_word(double elevation_deg, double azimuth_deg) {
  double a = std::fmod(azimuth_deg, 360.0);
  if (a > 180.0) a -= 360.0;
  if (a <= -180.0) a += 360.0;
  if (elevation_deg >= 60.0) return "overhead";
  if (std::abs(a) <= 45.0) return "front";
  if (std::abs(a) >= 135.0) return "back";
  return "side";
}

at::Tensor distort_normalized(const at::Tensor& xy, const at::Tensor& k) {
  auto x = xy.select(1, 0), y = xy.select(1, 1);
  auto k1 = k.select(1, 0), k2 = k.select(1, 1), p1 = k.select(1, 2), p2 = k.select(1, 3);
  auto r2 = x * x + y * y;
  auto radial = 1 + r2 * (k1 + r2 * k2);
  auto xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x);
  auto yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y;
  return at::stack({xd, yd}, 1);
}

at::Tensor undistort_normalized(const at::Tensor& xy_distorted, const at::Tensor& k) {
  // Newton's method on f(x) = distort(x) - xd, with the analytic 2×2 Jacobian.
  auto xd = xy_distorted.select(1, 0), yd = xy_distorted.select(1, 1);
  auto k1 = k.select(1, 0), k2 = k.select(1, 1), p1 = k.select(1, 2), p2 = k.select(1, 3);
  auto x = xd.clone(), y = yd.clone();
  for (int it = 0; it < 10; ++it) {
    auto r2 = x * x + y * y;
    auto radial = 1 + r2 * (k1 + r2 * k2);
    auto fx = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) - xd;
    auto fy = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y - yd;
    auto dradial = 2 * k1 + 4 * k2 * r2;  // d radial / d r2 × 2
    auto fx_x = radial + x * x * dradial + 2 * p1 * y + 6 * p2 * x;
    auto fx_y = x * y * dradial + 2 * p1 * x + 2 * p2 * y;
    auto fy_x = x * y * dradial + 2 * p1 * x + 2 * p2 * y;
    auto fy_y = radial + y * y * dradial + 6 * p1 * y + 2 * p2 * x;
    auto det = fx_x * fy_y - fx_y * fy_x;
    det = at::where(det.abs() < 1e-12, at::full_like(det, 1e-12), det);
    x = x - (fy_y * fx - fx_y * fy) / det;
    y = y - (fx_x * fy - fy_x * fx) / det;
  }
  return at::stack({x, y}, 1);
}

CameraBatch pack_cameras(const std::vector<Camera>& cameras) {
  const int64_t m = static_cast<int64_t>(cameras.size());
  auto c2w = at::empty({m, 3, 4}, at::kFloat);
  auto intr = at::empty({m, 8}, at::kFloat);
  auto c = c2w.accessor<float, 3>();
  auto k = intr.accessor<float, 2>();
  CameraBatch batch;
  for (int64_t i = 0; i < m; ++i) {
    for (int r = 0; r < 3; ++r)
      for (int col = 0; col < 4; ++col) c[i][r][col] = float(cameras[i].c2w[r * 4 + col]);
    const auto& in = cameras[i].intrinsics;
    const double vals[8] = {in.fx, in.fy, in.cx, in.cy, in.k1, in.k2, in.p1, in.p2};
    for (int j = 0; j < 8; ++j) k[i][j] = float(vals[j]);
    batch.any_distorted = batch.any_distorted || in.distorted();
  }
  batch.c2w = c2w;
  batch.intrinsics = intr;
  return batch;
}

Rays batch_rays(const CameraBatch& cameras, const at::Tensor& camera_index, const at::Tensor& pixels) {
  TORCH_CHECK(pixels.dim() == 2 && pixels.size(1) == 2, "pixels must be [N,2]");
  TORCH_CHECK(camera_index.dim() == 1 && camera_index.size(0) == pixels.size(0), "camera_index must be [N]");
  auto intr = cameras.intrinsics.index_select(0, camera_index);  // [N,8]
  auto c2w = cameras.c2w.index_select(0, camera_index);          // [N,3,4]
  auto px = pixels.to(at::kFloat);
  auto xy = at::stack({(px.select(1, 0) - intr.select(1, 2)) / intr.select(1, 0),
                       (px.select(1, 1) - intr.select(1, 3)) / intr.select(1, 1)},
                      1);
  if (cameras.any_distorted) xy = undistort_normalized(xy, intr.slice(1, 4, 8));
  // OpenCV image coordinates (x right, y down, z forward) → OpenGL camera axes (x right, y up, z back).
  auto dir_cam = at::stack({xy.select(1, 0), -xy.select(1, 1), -at::ones_like(xy.select(1, 0))}, 1);
  auto rot = c2w.slice(2, 0, 3);                              // [N,3,3]
  auto dirs = at::bmm(rot, dir_cam.unsqueeze(2)).squeeze(2);  // [N,3]
  dirs = dirs / dirs.norm(2, 1, true);
  auto origins = c2w.select(2, 3).contiguous();
  return {origins, dirs.contiguous()};
}

Rays camera_rays(const Camera& camera, const at::Tensor& pixels) {
  auto batch = pack_cameras({camera});
  return batch_rays(batch, at::zeros({pixels.size(0)}, at::kLong), pixels);
}

Rays camera_rays_all(const Camera& camera) {
  const int w = camera.intrinsics.width, h = camera.intrinsics.height;
  require(w > 0 && h > 0, "camera has no pixels");
  auto u = at::arange(w, at::kFloat) + 0.5f;
  auto v = at::arange(h, at::kFloat) + 0.5f;
  auto grid_v = v.view({h, 1}).expand({h, w});
  auto grid_u = u.view({1, w}).expand({h, w});
  auto pixels = at::stack({grid_u.reshape({-1}), grid_v.reshape({-1})}, 1);
  return camera_rays(camera, pixels);
}

}  // namespace nd
