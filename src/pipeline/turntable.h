// The turntable of a generated asset: frames on a circle around the object, encoded by Debian's ffmpeg
// into turntable.mp4 (H.264, yuv420p, even size, for players and web pages) and turntable.gif (a palette
// made for the clip: palettegen + paletteuse, for places that only show images).
//
// Frames are rendered from the field (TextTo3D::render_view): lambertian, on white, the light fixed to
// the camera (from its upper right, so the object turns under a studio light rather than the light turning
// with the object). Encoding runs ffmpeg via std::system on PNG frames in a temporary folder inside the
// output directory (removed afterwards); each video is encoded to a temporary name and renamed. Without a
// working ffmpeg the frames are kept as <out>/turntable/frame_NNN.png and ONE warning line goes to stderr.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "pipeline/text_to_3d.h"

namespace nd {

struct TurntableOptions {
  int frames = 36;                              // azimuths 0, 360/N, ... degrees (0 = the front, +Z)
  int resolution = 128;                         // square frames
  double elevation = 15, radius = 3, fov = 45;  // degrees, world units, vertical degrees
  float ambient = 0.3f;
  int fps = 12;                   // 36 frames: a 3 s loop
  std::string ffmpeg = "ffmpeg";  // the encoder: a name looked up on PATH or a path
};

// The light of a turntable frame: unit direction towards the light, from the camera's upper right (and a
// little from the front), for a camera of `view`.
ShadingParams turntable_light(const View& view, float ambient);

// The frames, each [R,R,3] float in [0,1].
std::vector<at::Tensor> render_turntable(TextTo3D& run, const TurntableOptions& options = {});

struct TurntableOutput {
  bool encoded = false;            // turntable.mp4 and turntable.gif were written
  std::vector<std::string> files;  // what was written (the two videos, or the PNG frames)
};

// Encodes frames ([H,W,3] float in [0,1] or uint8, all one size) into out_dir (which must exist), or falls
// back to PNG frames in out_dir/turntable/ with one warning line on stderr.
TurntableOutput write_turntable(const std::string& out_dir, const std::vector<at::Tensor>& frames,
                                const TurntableOptions& options = {});

// Whether `program -version` runs.
bool ffmpeg_available(const std::string& program = "ffmpeg");

}  // namespace nd
