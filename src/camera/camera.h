// Pinhole cameras and the rays through their pixels.
//
// Conventions (shared/spec/synth-world.md, and the NeRF/Blender/Instant-NGP transforms.json files):
//   world: right-handed, +Y up, objects face +Z.
//   camera-to-world matrix c2w (4×4, row-major): columns are the camera's right (+X), up (+Y) and
//   back (+Z) axes and its position; the camera looks along its -Z axis (OpenGL convention).
//   pixels: u to the right, v down, pixel (i, j) covers [i, i+1) × [j, j+1), so its centre is (i+0.5, j+0.5).
//   lens distortion: OpenCV radial-tangential (k1, k2, p1, p2) on normalised image coordinates.
#pragma once
#include <ATen/ATen.h>

#include <array>

namespace nd {

struct Intrinsics {
  int width = 0, height = 0;
  double fx = 0, fy = 0, cx = 0, cy = 0;  // pixels
  double k1 = 0, k2 = 0, p1 = 0, p2 = 0;  // OpenCV radial-tangential distortion
  bool distorted() const { return k1 != 0 || k2 != 0 || p1 != 0 || p2 != 0; }
  // Same camera at 1/factor of the resolution (the remainder rows/columns dropped, as downscale_image does).
  Intrinsics downscaled(int factor) const;
};

struct Camera {
  Intrinsics intrinsics;
  std::array<double, 16> c2w{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};  // row-major 4×4
  std::array<double, 3> position() const { return {c2w[3], c2w[7], c2w[11]}; }
};

// Intrinsics of a pinhole camera with vertical field of view `fov_y_deg`, square pixels, centred.
Intrinsics pinhole_intrinsics(int width, int height, double fov_y_deg);

// The spec's orbit camera: at radius r, elevation e and azimuth a (degrees; a = 0 on +Z, 90 on +X),
// looking at the origin with up = +Y. Well defined at e = ±90° (right stays (cos a, 0, -sin a)).
Camera orbit_camera(double radius, double elevation_deg, double azimuth_deg, double fov_y_deg, int width,
                    int height);

// The spec's view word for a camera: "overhead" if e >= 60, else "front" if |a| <= 45, "back" if
// |a| >= 135, else "side" (a wrapped to (-180, 180]).
const char* view_word(double elevation_deg, double azimuth_deg);

struct Rays {
  at::Tensor origins;  // [N,3] float32
  at::Tensor dirs;     // [N,3] float32, unit length
};

// Rays through the given pixel positions of one camera. pixels: [N,2] (u, v) float, in pixel units.
Rays camera_rays(const Camera& camera, const at::Tensor& pixels);

// Rays through every pixel centre, row-major (index = v * width + u): [H*W] rays.
Rays camera_rays_all(const Camera& camera);

// Cameras packed as tensors, for rays from many cameras at once (batches of random pixels).
struct CameraBatch {
  at::Tensor c2w;         // [M,3,4] float32 (the top 3 rows of c2w)
  at::Tensor intrinsics;  // [M,8] float32: fx fy cx cy k1 k2 p1 p2
  bool any_distorted = false;
};
CameraBatch pack_cameras(const std::vector<Camera>& cameras);

// Rays for pixels of many cameras. camera_index: [N] int64 into the batch; pixels: [N,2] (u, v).
Rays batch_rays(const CameraBatch& cameras, const at::Tensor& camera_index, const at::Tensor& pixels);

// Undistorts normalised image coordinates in place (OpenCV model, Newton iterations, as Instant-NGP).
// xy: [N,2] float32 distorted (x = (u - cx) / fx, y = (v - cy) / fy); k: [N,4] or [1,4] (k1 k2 p1 p2).
at::Tensor undistort_normalized(const at::Tensor& xy, const at::Tensor& k);

// Applies the distortion model (the forward direction), for tests and for rendering distorted datasets.
at::Tensor distort_normalized(const at::Tensor& xy, const at::Tensor& k);

}  // namespace nd
