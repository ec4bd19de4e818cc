// NeRF datasets in the `transforms.json` format, as written by Instant-NGP (colmap2nerf.py), nerfstudio
// (ns-process-data) and the Blender synthetic scenes (NeRF's lego, chair, …).
//
// Files. `dir_or_json` is a dataset directory or one .json file.
//   - A directory with transforms_train.json: train = its frames; test = transforms_test.json, else
//     transforms_val.json, else no test frames. Scale, offset and aabb_scale come from the train file.
//   - A directory with only transforms.json, or a .json file named directly: its frames sorted by file_path
//   (as
//     nerfstudio does, so that the split does not depend on the writer's frame order); frame i goes to test
//     when i % holdout_every == 0 (the LLFF / Mip-NeRF 360 convention), to train otherwise. holdout_every = 0
//     holds nothing out, and a single frame always goes to train.
//   - max_frames > 0 keeps at most that many frames per split, evenly spread over the split (frame
//   ⌊k·n/max⌋).
//
// Intrinsics (in pixels, pixel centres at +0.5), read at the top level and per frame; a frame's own values
// win:
//   fx: fl_x, else x_fov (degrees), else camera_angle_x (radians, Blender): fx = 0.5·w / tan(0.5·angle).
//   fy: fl_y, else y_fov, else camera_angle_y; the missing one of fx/fy equals the other (square pixels).
//   cx, cy: default w/2, h/2. w, h: default the image size; when given and different from the image, all of
//   fx fy cx cy are scaled to the real image size (per axis). Distortion: OpenCV k1 k2 p1 p2 (default 0);
//   k3/k4, fisheye and other non-pinhole camera models are rejected. `downscale` then divides fx fy cx cy by
//   the factor exactly (matching downscale_image, which drops the last W % factor columns / H % factor rows).
//
// Poses. transform_matrix: the camera-to-world 4×4 in OpenGL camera axes (x right, y up, looking along -z),
// which is already camera/camera.h's convention: the rotation is kept as is.
//
// Scene normalisation, as Instant-NGP does. Instant-NGP maps a camera position p of the file into its unit
// cube by p·scale + offset (defaults scale = 0.33, offset = (0.5, 0.5, 0.5); top-level keys `scale` and
// `offset` override them, and DatasetOptions overrides those), and renders the cube of side aabb_scale
// (top-level key, default 1) centred at (0.5, 0.5, 0.5). nerfdream's field lives in [-bound, bound]^3 with
// bound = aabb_scale, i.e. the same box centred at 0 and twice as large, so our position is
//     p' = 2·(p·scale + offset) − 1   (component-wise),
// applied to each camera's position (the last column of c2w); the rotation is unchanged (the scene is only
// scaled and shifted, so ray directions do not change). Instant-NGP also flips the camera's y/z axes and
// cycles the world axes (x,y,z) ← (y,z,x) in nerf_matrix_to_ngp; we do neither: our world keeps the file's
// axes.
//
// Errors. Bad input throws one-line InputError naming the file and the field ("<json>:
// frames[3].transform_matrix: expected 4 rows of 4 numbers"): missing file or directory, invalid JSON,
// missing/empty `frames`, a frame without file_path or transform_matrix, a malformed or non-finite matrix, no
// focal length, a missing or unreadable image, images of different sizes within a split, a bad downscale /
// holdout_every / scale / offset / aabb_scale.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "camera/camera.h"

namespace nd {

struct DatasetOptions {
  int downscale = 1;            // integer box-filter downscale of every image (and its intrinsics)
  int holdout_every = 8;        // single-file datasets: every Nth frame goes to test (N >= 2; 0 = none)
  std::optional<double> scale;  // override the file's `scale` (Instant-NGP's, default 0.33)
  std::optional<std::array<double, 3>> offset;  // override the file's `offset` (default 0.5, 0.5, 0.5)
  int max_frames = 0;  // 0 = all; else at most this many frames per split, evenly spread
};

struct Dataset {
  std::vector<Camera> cameras;  // one per frame, normalised (see above), intrinsics at the loaded size
  // uint8 [N,H,W,4]: RGB + alpha (255 where the file had none). uint8 so that a 50-frame 1080×1920 phone
  // capture takes 415 MB, not 1.6 GB. Straight (non-premultiplied) alpha.
  at::Tensor images;
  int width = 0, height = 0;       // W, H of every image (after downscale); 0 for an empty split
  std::vector<std::string> files;  // the image file of each frame

  int64_t size() const { return static_cast<int64_t>(cameras.size()); }
  // Frame i as float [H,W,4] in [0,1] (RGB + straight alpha).
  at::Tensor rgba_float(int64_t i) const;
};

struct DatasetSplits {
  Dataset train, test;
  double bound = 1.0;  // = aabb_scale: the scene is the cube [-bound, bound]^3
  std::string source;  // which files were read and how the split was made, for logs
};

// Reads a dataset directory or .json file (see the top of this file). Images are decoded in parallel
// (nd::set_threads) and downscaled as they load, so peak memory stays close to the final uint8 tensors.
DatasetSplits load_transforms_dataset(const std::string& dir_or_json, const DatasetOptions& options = {});

// Composites straight-alpha RGBA over a constant background: rgba: float [...,4] in [0,1] → [...,3]
// = rgb·a + background·(1 − a).
at::Tensor composite_on(const at::Tensor& rgba_float, std::array<float, 3> background);

}  // namespace nd
