// Image files (PNG and JPEG, through stb) and small image utilities.
//
// Images are HWC tensors: uint8 [H,W,C] with C = 3 (RGB) or 4 (RGBA, straight i.e. non-premultiplied
// alpha, as PNG stores it), or float [H,W,C] in [0,1] where noted.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace nd {

struct ImageInfo {
  int width = 0, height = 0;
  int channels = 0;  // channels in the file: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
};

// Reads only the file's header (cheap). Throws InputError naming the path when it is not a readable image.
ImageInfo read_image_info(const std::string& path);

// Loads a PNG or JPEG (8- or 16-bit; 16-bit is reduced to 8). Returns uint8 [H,W,C], contiguous:
// C = 3 for gray or RGB files (gray is replicated), C = 4 for gray+alpha or RGBA files.
// Throws InputError "<path>: cannot read image (<stb's reason>)" for a missing, unreadable or corrupt file.
at::Tensor load_image(const std::string& path);

// Writes a PNG atomically (core/atomic_file.h). image: uint8 [H,W,C] or [H,W], C in {1,2,3,4}, or a
// floating-point tensor of the same shapes with values in [0,1] (clamped, then rounded to 0..255).
void save_png(const std::string& path, const at::Tensor& image);

// Writes a baseline JPEG atomically; same inputs as save_png but C in {1,3} (alpha cannot be stored).
// quality: 1..100.
void save_jpeg(const std::string& path, const at::Tensor& image, int quality = 95);

// Box-filter downscale by an integer factor: uint8 [H,W,C] → uint8 [H/factor, W/factor, C] (integer
// division: the last H % factor rows and W % factor columns are dropped, so output pixel (i, j) is exactly
// the mean of input pixels [i·f, (i+1)·f) × [j·f, (j+1)·f)). Rounded to nearest.
// With C = 4 the filter is alpha-aware: RGB is averaged weighted by alpha (so fully transparent pixels do not
// bleed their colour into the edge), alpha is averaged plainly; a block with zero total alpha averages its
// RGB plainly. factor = 1 returns the input unchanged. Throws InputError if factor < 1 or the result is
// empty.
at::Tensor downscale_image(const at::Tensor& uint8_hwc, int factor);

// Tiles equal-size images into a grid, row-major, `columns` per row: images: each [H,W,C] (any dtype, all the
// same shape and dtype) → [rows·H, columns·W, C] with rows = ceil(n / columns); unused cells are zero.
// columns is clamped to n when larger.
at::Tensor image_grid(const std::vector<at::Tensor>& images, int columns);

}  // namespace nd
