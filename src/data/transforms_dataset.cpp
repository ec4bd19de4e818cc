#include "data/transforms_dataset.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/image_io.h"

namespace nd {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr double kPi = 3.14159265358979323846;
constexpr double kDefaultScale = 0.33;  // Instant-NGP's NerfDataset::scale default
constexpr double kDefaultOffset = 0.5;  // … and offset (0.5, 0.5, 0.5)

std::string short_dump(const Json& v) {
  std::string s = v.dump();
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

std::string fmt(double v) {
  std::ostringstream ss;
  ss << v;
  return ss.str();
}

std::string size_str(int w, int h) { return std::to_string(w) + "x" + std::to_string(h); }

// Python's json module writes NaN / Infinity / -Infinity, which JSON does not allow. Quoting them (outside
// strings) lets such a file parse, so that the number readers below can name the field that holds one.
std::string quote_nonfinite_literals(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 16);
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < text.size())
        out += text[++i];
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    bool replaced = false;
    for (const char* word : {"-Infinity", "Infinity", "NaN"}) {
      const size_t n = std::char_traits<char>::length(word);
      if (text.compare(i, n, word) == 0) {
        out += '"' + std::string(word) + '"';
        i += n - 1;
        replaced = true;
        break;
      }
    }
    if (!replaced) out += c;
  }
  return out;
}

Json parse_json_file(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    const std::string quoted = quote_nonfinite_literals(text);
    if (quoted != text) {
      try {
        return Json::parse(quoted);
      } catch (const Json::exception&) {
      }
    }
    throw InputError(path + ": invalid JSON (" + e.what() + ")");
  }
}

// field: the full "<file>: <key path>" prefix used in messages.
double as_number(const Json& v, const std::string& field) {
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    require(s != "NaN" && s != "Infinity" && s != "-Infinity", field + ": non-finite value " + s);
  }
  require(v.is_number(), field + ": expected a number, got " + short_dump(v));
  const double x = v.get<double>();
  require(std::isfinite(x), field + ": non-finite value " + fmt(x));
  return x;
}

std::optional<double> opt_number(const Json& obj, const char* key, const std::string& ctx) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  return as_number(*it, ctx + key);
}

// The lens keys found at one level (the file's top level or one frame). ctx: "<file>: " or "<file>:
// frames[i]."
struct LensKeys {
  std::optional<double> fl_x, fl_y, x_fov, y_fov, angle_x, angle_y, cx, cy, w, h, k1, k2, p1, p2;
};

LensKeys read_lens(const Json& obj, const std::string& ctx) {
  auto in_range = [&](const char* key, double lo, double hi, const char* what) {
    auto v = opt_number(obj, key, ctx);
    require(!v || (*v > lo && *v < hi), ctx + key + ": expected " + what + ", got " + fmt(v.value_or(0)));
    return v;
  };
  constexpr double kInf = 1e300;
  LensKeys k;
  k.fl_x = in_range("fl_x", 0, kInf, "a focal length > 0 (pixels)");
  k.fl_y = in_range("fl_y", 0, kInf, "a focal length > 0 (pixels)");
  k.x_fov = in_range("x_fov", 0, 180, "an angle in (0, 180) degrees");
  k.y_fov = in_range("y_fov", 0, 180, "an angle in (0, 180) degrees");
  k.angle_x = in_range("camera_angle_x", 0, kPi, "an angle in (0, pi) radians");
  k.angle_y = in_range("camera_angle_y", 0, kPi, "an angle in (0, pi) radians");
  k.w = in_range("w", 0, kInf, "a width > 0");
  k.h = in_range("h", 0, kInf, "a height > 0");
  k.cx = opt_number(obj, "cx", ctx);
  k.cy = opt_number(obj, "cy", ctx);
  k.k1 = opt_number(obj, "k1", ctx);
  k.k2 = opt_number(obj, "k2", ctx);
  k.p1 = opt_number(obj, "p1", ctx);
  k.p2 = opt_number(obj, "p2", ctx);
  // Lens models our cameras cannot represent: refuse rather than produce silently wrong rays.
  for (const char* key : {"k3", "k4", "k5", "k6"}) {
    auto v = opt_number(obj, key, ctx);
    require(!v || *v == 0, ctx + key + ": only OpenCV k1 k2 p1 p2 distortion is supported");
  }
  if (auto it = obj.find("camera_model"); it != obj.end()) {
    static const char* kPinhole[] = {"OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"};
    const bool ok = it->is_string() && std::any_of(std::begin(kPinhole), std::end(kPinhole),
                                                   [&](const char* m) { return *it == m; });
    require(ok, ctx + "camera_model: " + short_dump(*it) +
                    " is not supported (OPENCV, PINHOLE, SIMPLE_PINHOLE, SIMPLE_RADIAL or RADIAL)");
  }
  if (auto it = obj.find("is_fisheye"); it != obj.end())
    require(!(it->is_boolean() && it->get<bool>()), ctx + "is_fisheye: fisheye cameras are not supported");
  return k;
}

struct FrameSpec {
  std::string json_file;
  int64_t index = 0;      // in its file's frames array
  std::string file_path;  // as written in the file
  std::string image;      // resolved path
  std::array<double, 16> c2w{};
  LensKeys lens;        // the frame's own keys
  const LensKeys* top;  // its file's top-level keys
  fs::path dir;         // the json's folder
  ImageInfo info;
  // "<file>: frames[i]" for messages.
  std::string ctx() const { return json_file + ": frames[" + std::to_string(index) + "]"; }
};

struct Source {
  std::string path;
  Json json;
  LensKeys top;
  std::vector<FrameSpec> frames;
};

std::array<double, 16> read_matrix(const Json& v, const std::string& field) {
  const std::string shape = field + ": expected 4 rows of 4 numbers, got " + short_dump(v);
  require(v.is_array() && v.size() == 4, shape);
  std::array<double, 16> m{};
  for (int r = 0; r < 4; ++r) {
    require(v[r].is_array() && v[r].size() == 4, shape);
    for (int c = 0; c < 4; ++c)
      m[r * 4 + c] = as_number(v[r][c], field + "[" + std::to_string(r) + "][" + std::to_string(c) + "]");
  }
  return m;
}

// Reads one json file into frame specs. Its `top` member must not move afterwards (frames point at it):
// Sources are held by unique_ptr.
std::unique_ptr<Source> read_source(const std::string& path) {
  auto src = std::make_unique<Source>();
  src->path = path;
  src->json = parse_json_file(path);
  const Json& j = src->json;
  require(j.is_object(), path + ": expected a JSON object at the top level, got " + short_dump(j));
  auto frames = j.find("frames");
  require(frames != j.end(), path + ": frames: missing");
  require(frames->is_array(), path + ": frames: expected an array, got " + short_dump(*frames));
  require(!frames->empty(), path + ": frames: empty (no frames to load)");
  src->top = read_lens(j, path + ": ");
  const fs::path dir = fs::path(path).parent_path();
  for (size_t i = 0; i < frames->size(); ++i) {
    const Json& f = (*frames)[i];
    FrameSpec spec;
    spec.json_file = path;
    spec.index = static_cast<int64_t>(i);
    spec.dir = dir;
    spec.top = &src->top;
    const std::string ctx = spec.ctx() + ".";
    require(f.is_object(), spec.ctx() + ": expected an object, got " + short_dump(f));
    auto fp = f.find("file_path");
    require(fp != f.end(), ctx + "file_path: missing");
    require(fp->is_string() && !fp->get<std::string>().empty(),
            ctx + "file_path: expected a file name, got " + short_dump(*fp));
    spec.file_path = fp->get<std::string>();
    auto tm = f.find("transform_matrix");
    require(tm != f.end(), ctx + "transform_matrix: missing");
    spec.c2w = read_matrix(*tm, ctx + "transform_matrix");
    spec.lens = read_lens(f, ctx);
    src->frames.push_back(std::move(spec));
  }
  return src;
}

// Blender scenes write "./train/r_0" without an extension: try the name as is, then with image extensions.
std::string resolve_image(const FrameSpec& f) {
  const fs::path p = f.dir / f.file_path;
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return p.string();
  for (const char* ext : {".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG"}) {
    fs::path q = p;
    q += ext;
    if (fs::is_regular_file(q, ec)) return q.string();
  }
  throw InputError(f.ctx() + ".file_path: image " + p.string() + " not found (also tried .png, .jpg, .jpeg)");
}

// Runs fn(i) for every frame in parallel; rethrows the error of the lowest failing index (deterministic).
template <class F>
void parallel_frames(int64_t n, const F& fn) {
  std::vector<std::exception_ptr> errors(n);
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      try {
        fn(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  });
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// Intrinsics of a frame whose image is W×H (before any downscale).
Intrinsics resolve_intrinsics(const FrameSpec& f, int W, int H) {
  const LensKeys& top = *f.top;
  const LensKeys& fr = f.lens;
  auto pick = [](const std::optional<double>& own, const std::optional<double>& shared) {
    return own ? own : shared;
  };
  // The resolution the file's pixel values refer to.
  const double w_file = pick(fr.w, top.w).value_or(W), h_file = pick(fr.h, top.h).value_or(H);
  auto focal = [](const LensKeys& k, bool x, double res) -> std::optional<double> {
    const auto& fl = x ? k.fl_x : k.fl_y;
    const auto& fov_deg = x ? k.x_fov : k.y_fov;
    const auto& angle = x ? k.angle_x : k.angle_y;
    if (fl) return fl;
    if (fov_deg) return 0.5 * res / std::tan(0.5 * *fov_deg * kPi / 180.0);
    if (angle) return 0.5 * res / std::tan(0.5 * *angle);
    return std::nullopt;
  };
  // Per axis, the frame's own focal length wins over the top level's.
  auto fx = focal(fr, true, w_file);
  if (!fx) fx = focal(top, true, w_file);
  auto fy = focal(fr, false, h_file);
  if (!fy) fy = focal(top, false, h_file);
  require(
      fx || fy,
      f.ctx() + ": no focal length (give fl_x, camera_angle_x or x_fov, at the top level or in the frame)");
  if (!fx) fx = fy;
  if (!fy) fy = fx;
  const double sx = W / w_file, sy = H / h_file;  // file pixels → real image pixels
  Intrinsics k;
  k.width = W;
  k.height = H;
  k.fx = *fx * sx;
  k.fy = *fy * sy;
  k.cx = pick(fr.cx, top.cx).value_or(0.5 * w_file) * sx;
  k.cy = pick(fr.cy, top.cy).value_or(0.5 * h_file) * sy;
  k.k1 = pick(fr.k1, top.k1).value_or(0);
  k.k2 = pick(fr.k2, top.k2).value_or(0);
  k.p1 = pick(fr.p1, top.p1).value_or(0);
  k.p2 = pick(fr.p2, top.p2).value_or(0);
  return k;
}

struct Normalisation {
  double scale = kDefaultScale;
  std::array<double, 3> offset{kDefaultOffset, kDefaultOffset, kDefaultOffset};
  double aabb_scale = 1.0;
};

Normalisation read_normalisation(const Source& src, const DatasetOptions& options) {
  const std::string ctx = src.path + ": ";
  Normalisation n;
  if (options.scale) {
    require(std::isfinite(*options.scale) && *options.scale > 0,
            "scale: must be > 0, got " + fmt(*options.scale));
    n.scale = *options.scale;
  } else if (auto s = opt_number(src.json, "scale", ctx)) {
    require(*s > 0, ctx + "scale: must be > 0, got " + fmt(*s));
    n.scale = *s;
  }
  if (options.offset) {
    for (double v : *options.offset) require(std::isfinite(v), "offset: non-finite value " + fmt(v));
    n.offset = *options.offset;
  } else if (auto it = src.json.find("offset"); it != src.json.end() && !it->is_null()) {
    require(it->is_array() && it->size() == 3, ctx + "offset: expected 3 numbers, got " + short_dump(*it));
    for (int i = 0; i < 3; ++i) n.offset[i] = as_number((*it)[i], ctx + "offset[" + std::to_string(i) + "]");
  }
  if (auto a = opt_number(src.json, "aabb_scale", ctx)) {
    require(*a > 0, ctx + "aabb_scale: must be > 0, got " + fmt(*a));
    n.aabb_scale = *a;
  }
  return n;
}

// At most max_frames frames, evenly spread.
std::vector<FrameSpec> subsample(std::vector<FrameSpec> frames, int max_frames) {
  const int64_t n = static_cast<int64_t>(frames.size());
  if (max_frames <= 0 || n <= max_frames) return frames;
  std::vector<FrameSpec> out;
  for (int64_t k = 0; k < max_frames; ++k) out.push_back(frames[k * n / max_frames]);
  return out;
}

Dataset load_split(std::vector<FrameSpec> frames, const Normalisation& norm, int factor) {
  Dataset ds;
  const int64_t n = static_cast<int64_t>(frames.size());
  if (n == 0) {
    ds.images = at::empty({0, 0, 0, 4}, at::kByte);
    return ds;
  }
  // Pass 1 (headers only): find every image and its size.
  parallel_frames(n, [&](int64_t i) {
    FrameSpec& f = frames[i];
    f.image = resolve_image(f);
    try {
      f.info = read_image_info(f.image);
    } catch (const InputError& e) {
      throw InputError(f.ctx() + ".file_path: " + e.what());
    }
  });
  const int W = frames[0].info.width, H = frames[0].info.height;
  for (const auto& f : frames) {
    require(f.info.width == W && f.info.height == H,
            f.ctx() + ".file_path: " + f.image + " is " + size_str(f.info.width, f.info.height) + " but " +
                frames[0].image + " (" + frames[0].ctx() + ") is " + size_str(W, H) +
                ": all images of a split must have the same size");
  }
  const int w = W / factor, h = H / factor;
  require(w >= 1 && h >= 1, "downscale " + std::to_string(factor) + ": the " + size_str(W, H) +
                                " images of " + frames[0].json_file + " would have no pixels left");
  ds.width = w;
  ds.height = h;
  for (const auto& f : frames) {
    Camera cam;
    // Exactly 1/factor, matching downscale_image (output pixel j covers input pixels [j·f, (j+1)·f)).
    cam.intrinsics = resolve_intrinsics(f, W, H).downscaled(factor);
    cam.c2w = f.c2w;
    for (int a = 0; a < 3; ++a)
      cam.c2w[a * 4 + 3] = 2.0 * (f.c2w[a * 4 + 3] * norm.scale + norm.offset[a]) - 1.0;
    ds.cameras.push_back(cam);
    ds.files.push_back(f.image);
  }
  // Pass 2: decode and downscale straight into the final tensor (one full-size image per thread at a time).
  ds.images = at::empty({n, h, w, 4}, at::kByte);
  parallel_frames(n, [&](int64_t i) {
    const FrameSpec& f = frames[i];
    at::Tensor img;
    try {
      img = load_image(f.image);
    } catch (const InputError& e) {
      throw InputError(f.ctx() + ".file_path: " + e.what());
    }
    require(img.size(0) == H && img.size(1) == W,
            f.ctx() + ".file_path: " + f.image + " decoded to a different size than its header says");
    at::Tensor small = downscale_image(img, factor);
    at::Tensor slot = ds.images[i];
    if (small.size(2) == 4) {
      slot.copy_(small);
    } else {
      slot.narrow(2, 0, 3).copy_(small);
      slot.select(2, 3).fill_(255);
    }
  });
  return ds;
}

}  // namespace

at::Tensor Dataset::rgba_float(int64_t i) const {
  TORCH_CHECK(i >= 0 && i < images.size(0), "frame ", i, " out of range [0, ", images.size(0), ")");
  return images[i].to(at::kFloat).div_(255.0f);
}

at::Tensor composite_on(const at::Tensor& rgba_float, std::array<float, 3> background) {
  TORCH_CHECK(rgba_float.dim() >= 1 && rgba_float.size(-1) == 4, "composite_on: expected [...,4], got ",
              rgba_float.sizes());
  auto rgb = rgba_float.narrow(-1, 0, 3);
  auto alpha = rgba_float.narrow(-1, 3, 1);
  auto bg = at::tensor({background[0], background[1], background[2]}, rgba_float.options());
  return rgb * alpha + bg * (1 - alpha);
}

DatasetSplits load_transforms_dataset(const std::string& dir_or_json, const DatasetOptions& options) {
  require(options.downscale >= 1, "downscale: must be >= 1, got " + std::to_string(options.downscale));
  require(
      options.holdout_every == 0 || options.holdout_every >= 2,
      "holdout_every: must be >= 2 (or 0 for no test frames), got " + std::to_string(options.holdout_every));
  require(options.max_frames >= 0, "max_frames: must be >= 0, got " + std::to_string(options.max_frames));
  std::error_code ec;
  const fs::path p(dir_or_json);
  require(fs::exists(p, ec), dir_or_json + ": no such file or directory");

  std::unique_ptr<Source> train_src, test_src;
  std::vector<FrameSpec> train, test;
  DatasetSplits out;
  const bool is_dir = fs::is_directory(p, ec);
  if (is_dir && fs::exists(p / "transforms_train.json", ec)) {
    train_src = read_source((p / "transforms_train.json").string());
    train = train_src->frames;
    for (const char* name : {"transforms_test.json", "transforms_val.json"}) {
      if (fs::exists(p / name, ec)) {
        test_src = read_source((p / name).string());
        test = test_src->frames;
        break;
      }
    }
    out.source = train_src->path + " (train), " + (test_src ? test_src->path + " (test)" : "no test file");
  } else {
    std::string json_path = dir_or_json;
    if (is_dir) {
      require(fs::exists(p / "transforms.json", ec),
              dir_or_json + ": no transforms.json or transforms_train.json in this directory");
      json_path = (p / "transforms.json").string();
    }
    train_src = read_source(json_path);
    std::vector<FrameSpec> frames = train_src->frames;
    std::stable_sort(frames.begin(), frames.end(),
                     [](const FrameSpec& a, const FrameSpec& b) { return a.file_path < b.file_path; });
    const int n_every = frames.size() >= 2 ? options.holdout_every : 0;
    for (size_t i = 0; i < frames.size(); ++i)
      (n_every > 0 && i % n_every == 0 ? test : train).push_back(frames[i]);
    out.source =
        train_src->path + (n_every > 0 ? " (every " + std::to_string(n_every) + "th frame held out for test)"
                                       : " (no test frames)");
  }
  const Normalisation norm = read_normalisation(*train_src, options);
  out.bound = norm.aabb_scale;
  out.train = load_split(subsample(std::move(train), options.max_frames), norm, options.downscale);
  out.test = load_split(subsample(std::move(test), options.max_frames), norm, options.downscale);
  return out;
}

}  // namespace nd
