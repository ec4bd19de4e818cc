// The hash grid encoding from plain LibTorch ops: one gather over all levels and corners.
// Memory: N·L·8 rows of F values in flight (fine for tests, slow for training).
#include "field/hash_grid.h"

namespace nd {

at::Tensor hash_grid_encode_reference(const at::Tensor& x, const at::Tensor& table,
                                      const HashGridLayout& layout) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == 3, "hash grid: x must be [N,3], got ", x.sizes());
  TORCH_CHECK(table.dim() == 2 && table.size(0) == layout.total_entries && table.size(1) == layout.features,
              "hash grid: table must be [", layout.total_entries, ",", layout.features, "], got ",
              table.sizes());
  TORCH_CHECK(x.scalar_type() == table.scalar_type() &&
                  (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble),
              "hash grid: x and table must both be float32 or both float64");
  const int64_t n = x.size(0), num_levels = static_cast<int64_t>(layout.levels.size()), f = layout.features;
  const bool is_float = x.scalar_type() == at::kFloat;
  auto dbl = at::TensorOptions().dtype(at::kDouble);
  auto lng = at::TensorOptions().dtype(at::kLong);

  std::vector<double> scales;
  std::vector<int64_t> res, sizes, offsets, hashed;
  for (const auto& l : layout.levels) {
    // The fused kernels use the scale rounded to float32 (as tiny-cuda-nn does).
    scales.push_back(is_float ? static_cast<double>(static_cast<float>(l.scale)) : l.scale);
    res.push_back(l.resolution);
    sizes.push_back(l.size);
    offsets.push_back(l.offset);
    hashed.push_back(l.hashed);
  }
  auto scale_t = at::tensor(scales, dbl).view({1, num_levels, 1});
  auto res_t = at::tensor(res, lng).view({1, num_levels, 1});
  auto size_t_ = at::tensor(sizes, lng).view({1, num_levels, 1});
  auto offset_t = at::tensor(offsets, lng).view({1, num_levels, 1});
  auto hashed_t = at::tensor(hashed, lng).view({1, num_levels, 1}).to(at::kBool);

  auto x01 = ((x + layout.bound) / (2 * layout.bound)).clamp(0, 1);  // [N,3]
  // p = x01·scale + 0.5, rounded once (as the kernels' fmaf does): exact in float64, then to x's dtype.
  auto pos = (x01.unsqueeze(1).to(at::kDouble) * scale_t + 0.5).to(x.scalar_type());  // [N,L,3]
  auto cell = pos.detach().floor();
  auto frac = pos - cell;  // [N,L,3], differentiable w.r.t. x

  // Corner c = (cx, cy, cz) with x varying fastest.
  auto corner =
      at::tensor(std::vector<int64_t>{0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
                 lng)
          .view({3, 8})
          .t()
          .contiguous();                                                 // [8,3]
  auto c = cell.to(at::kLong).unsqueeze(2) + corner.view({1, 1, 8, 3});  // [N,L,8,3]
  auto cx = c.select(3, 0), cy = c.select(3, 1), cz = c.select(3, 2);    // [N,L,8]
  auto dense = (cx + cy * res_t + cz * res_t * res_t).remainder(size_t_);
  auto hash =
      at::bitwise_and(at::bitwise_xor(at::bitwise_xor(cx, cy * int64_t{2654435761}), cz * int64_t{805459861}),
                      int64_t{0xffffffff})
          .remainder(size_t_);
  auto index = at::where(hashed_t, hash, dense) + offset_t;  // [N,L,8]

  auto values = table.index_select(0, index.reshape({-1})).view({n, num_levels, 8, f});
  auto cf = corner.to(x.scalar_type()).view({1, 1, 8, 3});
  auto fr = frac.unsqueeze(2);                             // [N,L,1,3]
  auto weights = (cf * fr + (1 - cf) * (1 - fr)).prod(3);  // [N,L,8]
  return (weights.unsqueeze(3) * values).sum(2).reshape({n, num_levels * f});
}

}  // namespace nd
