#include "io/image_io.h"

#include <ATen/Parallel.h>
#include <stb_image.h>
#include <stb_image_write.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"

namespace nd {

namespace {

// Opens `path` for reading or throws InputError with the system's reason.
std::FILE* open_image(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(path + ": cannot read image (is a directory)");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw InputError(path + ": cannot read image (" + std::strerror(errno) + ")");
  return f;
}

[[noreturn]] void throw_stb(const std::string& path) {
  const char* reason = stbi_failure_reason();
  throw InputError(path + ": cannot read image (" + (reason ? reason : "unknown error") + ")");
}

// Any supported image → contiguous CPU uint8 [H,W,C].
at::Tensor to_uint8_hwc(const at::Tensor& image) {
  TORCH_CHECK(image.defined() && (image.dim() == 2 || image.dim() == 3), "image must be [H,W] or [H,W,C]");
  at::Tensor img = image.dim() == 2 ? image.unsqueeze(2) : image;
  img = img.to(at::kCPU);
  if (img.is_floating_point()) {
    // Round half up (at::round rounds half to even), clamp first so that NaN/inf cannot reach the cast.
    img = at::floor(at::nan_to_num(img.to(at::kFloat), 0.0).clamp(0.0, 1.0) * 255.0f + 0.5f).to(at::kByte);
  } else {
    TORCH_CHECK(img.scalar_type() == at::kByte, "integer images must be uint8, got ", img.scalar_type());
  }
  TORCH_CHECK(img.size(0) > 0 && img.size(1) > 0, "image is empty: ", img.sizes());
  TORCH_CHECK(img.size(2) >= 1 && img.size(2) <= 4, "image must have 1 to 4 channels, got ", img.size(2));
  return img.contiguous();
}

void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

// Box filter over f×f blocks, C channels known at compile time so that the inner loops unroll; the sums live
// in local variables (uint8 pointers may alias anything, so sums kept in memory would be reloaded every
// step). C = 4: alpha-weighted RGB (see the header).
template <int C>
void downscale_kernel(const uint8_t* src, uint8_t* dst, int64_t w, int64_t oh, int64_t ow, int64_t f) {
  const double n = double(f) * double(f);
  at::parallel_for(0, oh, 1, [&](int64_t begin, int64_t end) {
    for (int64_t oy = begin; oy < end; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        uint64_t sum[C] = {}, weighted[3] = {};
        for (int64_t dy = 0; dy < f; ++dy) {
          const uint8_t* p = src + ((oy * f + dy) * w + ox * f) * C;
          for (int64_t dx = 0; dx < f; ++dx, p += C) {
            for (int k = 0; k < C; ++k) sum[k] += p[k];
            if constexpr (C == 4)
              for (int k = 0; k < 3; ++k) weighted[k] += uint32_t(p[k]) * p[3];
          }
        }
        // Round half up. Double division is exact enough (a ratio of integers < 2^53 that is exactly x.5
        // stays x.5) and faster than 64-bit integer division.
        uint8_t* q = dst + (oy * ow + ox) * C;
        for (int k = 0; k < C; ++k) q[k] = uint8_t(double(sum[k]) / n + 0.5);
        if constexpr (C == 4) {
          if (sum[3] > 0)
            for (int k = 0; k < 3; ++k) q[k] = uint8_t(double(weighted[k]) / double(sum[3]) + 0.5);
        }
      }
    }
  });
}

}  // namespace

ImageInfo read_image_info(const std::string& path) {
  std::FILE* f = open_image(path);
  ImageInfo info;
  const int ok = stbi_info_from_file(f, &info.width, &info.height, &info.channels);
  std::fclose(f);
  if (!ok) throw_stb(path);
  return info;
}

at::Tensor load_image(const std::string& path) {
  std::FILE* f = open_image(path);
  int w = 0, h = 0, n = 0;
  if (!stbi_info_from_file(f, &w, &h, &n)) {
    std::fclose(f);
    throw_stb(path);
  }
  // Gray → RGB, gray+alpha → RGBA: downstream code only deals with 3 or 4 channels.
  const int channels = (n == 1 || n == 3) ? 3 : 4;
  int file_channels = 0;
  unsigned char* data = stbi_load_from_file(f, &w, &h, &file_channels, channels);
  std::fclose(f);
  if (!data) throw_stb(path);
  // Hand stb's buffer to the tensor: no copy.
  return at::from_blob(
      data, {h, w, channels}, [](void* p) { stbi_image_free(p); }, at::TensorOptions().dtype(at::kByte));
}

void save_png(const std::string& path, const at::Tensor& image) {
  const at::Tensor img = to_uint8_hwc(image);
  const int h = static_cast<int>(img.size(0)), w = static_cast<int>(img.size(1)),
            c = static_cast<int>(img.size(2));
  std::string bytes;
  if (!stbi_write_png_to_func(append_bytes, &bytes, w, h, c, img.data_ptr<uint8_t>(), w * c))
    throw InputError("cannot write " + path + " (PNG encoding failed)");
  write_file_atomically(path, bytes);
}

void save_jpeg(const std::string& path, const at::Tensor& image, int quality) {
  TORCH_CHECK(quality >= 1 && quality <= 100, "JPEG quality must be in 1..100, got ", quality);
  const at::Tensor img = to_uint8_hwc(image);
  const int h = static_cast<int>(img.size(0)), w = static_cast<int>(img.size(1)),
            c = static_cast<int>(img.size(2));
  std::string bytes;
  // stb ignores the alpha channel of 2- and 4-channel input.
  if (!stbi_write_jpg_to_func(append_bytes, &bytes, w, h, c, img.data_ptr<uint8_t>(), quality))
    throw InputError("cannot write " + path + " (JPEG encoding failed)");
  write_file_atomically(path, bytes);
}

at::Tensor downscale_image(const at::Tensor& uint8_hwc, int factor) {
  TORCH_CHECK(uint8_hwc.dim() == 3 && uint8_hwc.scalar_type() == at::kByte,
              "downscale_image: expected uint8 [H,W,C]");
  const int64_t h = uint8_hwc.size(0), w = uint8_hwc.size(1), c = uint8_hwc.size(2);
  require(factor >= 1, "downscale factor " + std::to_string(factor) + ": must be >= 1");
  if (factor == 1) return uint8_hwc;
  const int64_t oh = h / factor, ow = w / factor;
  require(oh >= 1 && ow >= 1, "downscale factor " + std::to_string(factor) + ": a " + std::to_string(w) +
                                  "x" + std::to_string(h) + " image would have no pixels left");
  const at::Tensor in = uint8_hwc.to(at::kCPU).contiguous();
  at::Tensor out = at::empty({oh, ow, c}, at::kByte);
  const uint8_t* src = in.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  switch (c) {
    case 1:
      downscale_kernel<1>(src, dst, w, oh, ow, factor);
      break;
    case 2:
      downscale_kernel<2>(src, dst, w, oh, ow, factor);
      break;
    case 3:
      downscale_kernel<3>(src, dst, w, oh, ow, factor);
      break;
    case 4:
      downscale_kernel<4>(src, dst, w, oh, ow, factor);
      break;
    default:
      TORCH_CHECK(false, "downscale_image: expected 1 to 4 channels, got ", c);
  }
  return out;
}

at::Tensor image_grid(const std::vector<at::Tensor>& images, int columns) {
  TORCH_CHECK(!images.empty(), "image_grid: no images");
  TORCH_CHECK(columns >= 1, "image_grid: columns must be >= 1, got ", columns);
  const at::Tensor& first = images[0];
  TORCH_CHECK(first.dim() == 3, "image_grid: images must be [H,W,C], got ", first.sizes());
  for (const auto& img : images) {
    TORCH_CHECK(img.sizes() == first.sizes() && img.scalar_type() == first.scalar_type(),
                "image_grid: images differ: ", img.sizes(), " ", img.scalar_type(), " vs ", first.sizes(),
                " ", first.scalar_type());
  }
  const int64_t n = static_cast<int64_t>(images.size());
  const int64_t cols = std::min<int64_t>(columns, n), rows = (n + cols - 1) / cols;
  const int64_t h = first.size(0), w = first.size(1);
  at::Tensor grid = at::zeros({rows * h, cols * w, first.size(2)}, first.options());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i / cols, col = i % cols;
    grid.slice(0, r * h, (r + 1) * h).slice(1, col * w, (col + 1) * w).copy_(images[i]);
  }
  return grid;
}

}  // namespace nd
