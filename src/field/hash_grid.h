// Multiresolution hash encoding (Instant-NGP; tiny-cuda-nn's GridEncoding, "Hash" type, linear
// interpolation): x [N,3] → features [N, L·F].
//
// Level l has scale_l = base·b^l − 1 (b = (finest/base)^(1/(L−1))) and grid resolution
// res_l = ceil(scale_l) + 1. A point's position on the level is p = x01·scale_l + 0.5 with
// x01 = clamp((x + bound)/(2·bound), 0, 1); its features are the trilinear interpolation of the 8
// surrounding grid vertices' F-vectors. Vertex (ix,iy,iz) lives at row
//   dense  (res³ ≤ 2^T): (ix + iy·res + iz·res²) mod size,
//   hashed (otherwise):  (ix·1 ^ iy·2654435761 ^ iz·805459861) mod 2^T   (uint32 arithmetic)
// of the level's slice of the one parameter table [total_entries, F].
//
// Files: hash_grid.cpp (layout, autograd function, module), hash_grid_cpu.cpp (fused kernels),
// hash_grid_reference.cpp (plain LibTorch ops).
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <vector>

namespace nd {

struct HashGridConfig {
  int levels = 16;
  int features_per_level = 2;
  int log2_table_size = 19;
  int base_resolution = 16;
  double finest_resolution_per_bound = 2048;  // finest resolution = this × bound
  double bound = 1.0;                         // the encoded cube is [-bound, bound]^3
};

struct HashGridLevel {
  double scale = 0;     // base·b^l − 1 (the kernels use it rounded to float32, as tiny-cuda-nn does)
  int resolution = 0;   // ceil(scale) + 1 vertices per axis
  int64_t offset = 0;   // first row of this level in the table
  int64_t size = 0;     // rows: min(res³ rounded up to a multiple of 8, 2^T)
  bool hashed = false;  // res³ > 2^T
};

struct HashGridLayout {
  int features = 2;  // F
  double bound = 1.0;
  std::vector<HashGridLevel> levels;
  int64_t total_entries = 0;  // rows of the table
  int output_dim() const { return static_cast<int>(levels.size()) * features; }
};

// Throws InputError naming the field on an invalid config (levels 1..32, F 1..8, T 8..24, ...).
HashGridLayout make_layout(const HashGridConfig& config);

// x: [N,3] float32 in [-bound, bound] (outside is clamped; zero x-gradient there);
// table: [total_entries, F] float32 → [N, L·F] float32, level-major (level l at columns [l·F, (l+1)·F)).
// Fused multi-threaded kernels wrapped in an autograd function: backward gives d/d table when the table
// requires grad, and d/d x when x requires grad. For speed, when `table` is a leaf whose .grad() is
// already defined (the optimizer zeroes it in place), the table gradient is added directly into
// table.grad() instead of flowing through autograd (so tensor hooks on the table don't see it, and
// torch::autograd::grad() with the table as input is not supported in that case). Not twice
// differentiable.
at::Tensor hash_grid_encode(const at::Tensor& x, const at::Tensor& table, const HashGridLayout& layout);

// The same function from plain LibTorch ops (one gather over all levels and corners); differentiable by
// autograd in float32 and float64 (x and table of the same dtype). For tests and benchmarks.
at::Tensor hash_grid_encode_reference(const at::Tensor& x, const at::Tensor& table,
                                      const HashGridLayout& layout);

// Fused kernels without autograd (hash_grid_cpu.cpp). x: [N,3], table: [total, F], float32 contiguous.
// Forward → [N, L·F].
at::Tensor hash_grid_forward_cpu(const at::Tensor& x, const at::Tensor& table, const HashGridLayout& layout);
// grad_out: [N, L·F]. Adds d/d table into grad_table ([total, F] float32 contiguous) when it is defined
// (overwrites it instead when overwrite_grad_table: no need to zero it first); returns d/d x [N,3] when
// need_grad_x, else an undefined tensor.
at::Tensor hash_grid_backward_cpu(const at::Tensor& x, const at::Tensor& table, const HashGridLayout& layout,
                                  const at::Tensor& grad_out, const at::Tensor& grad_table, bool need_grad_x,
                                  bool overwrite_grad_table = false);

// The encoding as a module with one parameter "table" [total_entries, F], initialised uniform(−1e−4, 1e−4).
class HashGridImpl : public torch::nn::Module {
 public:
  explicit HashGridImpl(const HashGridConfig& config = {});
  // x: [N,3] float32 in [-bound, bound] → [N, output_dim()] (fused kernels).
  at::Tensor forward(const at::Tensor& x);
  // Same with the plain-LibTorch reference op.
  at::Tensor forward_reference(const at::Tensor& x);
  int output_dim() const { return layout_.output_dim(); }
  const HashGridConfig& config() const { return config_; }
  const HashGridLayout& layout() const { return layout_; }
  at::Tensor table;  // [total_entries, F]

 private:
  HashGridConfig config_;
  HashGridLayout layout_;
};
TORCH_MODULE(HashGrid);

}  // namespace nd
