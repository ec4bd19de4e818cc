#include "pipeline/turntable.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/image_io.h"

namespace nd {
namespace fs = std::filesystem;

namespace {

// 'text' for /bin/sh, whatever it contains.
std::string shell_quote(const std::string& text) {
  std::string q = "'";
  for (char c : text) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs a shell command; returns its exit status (127: not found, -1: killed or no shell).
int run_shell(const std::string& command) {
  const int status = std::system(command.c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

// The last non-empty line of a small text file ("" when none).
std::string last_line(const std::string& path) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const InputError&) {
    return "";
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text.substr(text.find_last_of('\n') == std::string::npos ? 0 : text.find_last_of('\n') + 1);
}

// A folder removed when the scope ends, however it ends.
struct ScopedDir {
  fs::path path;
  explicit ScopedDir(fs::path p) : path(std::move(p)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScopedDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// ffmpeg on <frames>/frame_%04d.png → `path` (atomically). Throws std::runtime_error with ffmpeg's last
// log line when it fails.
void encode(const std::string& path, const fs::path& frames, const std::string& args,
            const TurntableOptions& o) {
  const std::string log = (frames / "ffmpeg.log").string();
  write_atomically(path, [&](const std::string& tmp) {
    const std::string cmd = shell_quote(o.ffmpeg) + " -nostdin -hide_banner -loglevel error -y -framerate " +
                            std::to_string(o.fps) + " -i " +
                            shell_quote((frames / "frame_%04d.png").string()) + " " + args + " " +
                            shell_quote(tmp) + " 2>" + shell_quote(log);
    const int rc = run_shell(cmd);
    if (rc != 0)
      throw std::runtime_error("ffmpeg exited with " + std::to_string(rc) + " writing " +
                               fs::path(path).filename().string() + ": " + last_line(log));
  });
}

}  // namespace

ShadingParams turntable_light(const View& view, float ambient) {
  const double kDeg = M_PI / 180, e = view.elevation * kDeg, a = view.azimuth * kDeg;
  const double p[3] = {std::cos(e) * std::sin(a), std::sin(e), std::cos(e) * std::cos(a)};  // towards camera
  // right = forward × world up with forward = −p; at the poles any horizontal axis will do.
  double r[3] = {p[2], 0, -p[0]};
  double rn = std::hypot(r[0], r[2]);
  if (rn < 1e-9) r[0] = 1, r[2] = 0, rn = 1;
  for (double& v : r) v /= rn;
  const double u[3] = {r[1] * -p[2] - r[2] * -p[1], r[2] * -p[0] - r[0] * -p[2], r[0] * -p[1] - r[1] * -p[0]};
  ShadingParams s;
  s.mode = Shading::Lambertian;
  s.ambient = ambient;
  double l[3], n = 0;
  for (int i = 0; i < 3; ++i) {
    l[i] = 1.5 * p[i] + r[i] + u[i];  // ~45° up and right
    n += l[i] * l[i];
  }
  for (int i = 0; i < 3; ++i) s.light_dir[i] = static_cast<float>(l[i] / std::sqrt(n));
  return s;
}

std::vector<at::Tensor> render_turntable(TextTo3D& run, const TurntableOptions& o) {
  require(o.frames >= 1 && o.frames <= 9999, "turntable: frames must be in [1, 9999]");
  require(o.resolution >= 2, "turntable: resolution must be at least 2");
  std::vector<at::Tensor> frames;
  for (int i = 0; i < o.frames; ++i) {
    double azimuth = 360.0 * i / o.frames;
    if (azimuth > 180) azimuth -= 360;
    const View v{o.elevation, azimuth, o.radius, o.fov};
    frames.push_back(run.render_view(v, o.resolution, turntable_light(v, o.ambient)));
  }
  return frames;
}

bool ffmpeg_available(const std::string& program) {
  return run_shell(shell_quote(program) + " -version >/dev/null 2>&1") == 0;
}

TurntableOutput write_turntable(const std::string& out_dir, const std::vector<at::Tensor>& frames,
                                const TurntableOptions& o) {
  require(!frames.empty() && frames.size() <= 9999, "turntable: between 1 and 9999 frames");
  const fs::path out(out_dir);
  TurntableOutput result;
  std::string problem;
  if (!ffmpeg_available(o.ffmpeg)) {
    problem = "ffmpeg not found (" + o.ffmpeg + ")";
  } else {
    const ScopedDir tmp(out / (".turntable-frames.tmp-" + std::to_string(::getpid())));
    for (size_t i = 0; i < frames.size(); ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "frame_%04zu.png", i);
      save_png((tmp.path / name).string(), frames[i]);
    }
    const std::string mp4 = (out / "turntable.mp4").string(), gif = (out / "turntable.gif").string();
    try {
      // H.264 needs even sizes and yuv420p plays everywhere; one thread keeps the encode deterministic.
      encode(mp4, tmp.path,
             "-vf 'scale=trunc(iw/2)*2:trunc(ih/2)*2' -c:v libx264 -pix_fmt yuv420p -threads 1 "
             "-movflags +faststart -f mp4",
             o);
      encode(gif, tmp.path,
             "-filter_complex '[0:v]split[a][b];[a]palettegen[p];[b][p]paletteuse' -loop 0 -f gif", o);
      result.encoded = true;
      result.files = {mp4, gif};
      return result;
    } catch (const std::runtime_error& e) {
      problem = e.what();
      std::error_code ec;
      fs::remove(mp4, ec);  // no half set: both videos, or the frames
    }
  }
  const fs::path dir = out / "turntable";
  fs::create_directories(dir);
  for (size_t i = 0; i < frames.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "frame_%03zu.png", i);
    save_png((dir / name).string(), frames[i]);
    result.files.push_back((dir / name).string());
  }
  std::fprintf(stderr,
               "warning: %s; wrote the turntable as %zu PNG frames in %s/ instead of turntable.mp4/.gif\n",
               problem.c_str(), frames.size(), dir.string().c_str());
  return result;
}

}  // namespace nd
