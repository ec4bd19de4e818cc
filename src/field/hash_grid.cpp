// Hash grid: layout, the autograd function around the fused kernels, the module.
#include "field/hash_grid.h"

#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <string>

#include "core/error.h"

namespace nd {

HashGridLayout make_layout(const HashGridConfig& c) {
  require(c.levels >= 1 && c.levels <= 32,
          "hash grid: levels must be in 1..32, got " + std::to_string(c.levels));
  require(c.features_per_level >= 1 && c.features_per_level <= 8,
          "hash grid: features_per_level must be in 1..8, got " + std::to_string(c.features_per_level));
  require(c.log2_table_size >= 8 && c.log2_table_size <= 24,
          "hash grid: log2_table_size must be in 8..24, got " + std::to_string(c.log2_table_size));
  require(c.base_resolution >= 2, "hash grid: base_resolution must be >= 2");
  require(c.bound > 0 && std::isfinite(c.bound), "hash grid: bound must be > 0");
  const double finest = c.finest_resolution_per_bound * c.bound;
  require(finest >= c.base_resolution && finest <= 1 << 20,
          "hash grid: finest_resolution_per_bound × bound must be in [base_resolution, 2^20]");

  HashGridLayout layout;
  layout.features = c.features_per_level;
  layout.bound = c.bound;
  const double log_b = c.levels > 1 ? std::log(finest / c.base_resolution) / (c.levels - 1) : 0.0;
  const int64_t max_size = int64_t{1} << c.log2_table_size;
  int64_t offset = 0;
  for (int l = 0; l < c.levels; ++l) {
    HashGridLevel level;
    level.scale = c.base_resolution * std::exp(l * log_b) - 1.0;
    // b^l is not exact in floating point: snap near-integers so that e.g. the finest level's
    // 2048 − 1 stays 2047 and not 2047.0000000001 (which would change ceil()).
    if (std::abs(level.scale - std::round(level.scale)) < 1e-6) level.scale = std::round(level.scale);
    level.resolution = static_cast<int>(std::ceil(level.scale)) + 1;
    const int64_t res = level.resolution;
    const int64_t dense = (res * res * res + 7) / 8 * 8;
    level.hashed = res * res * res > max_size;
    level.size = std::min(dense, max_size);
    level.offset = offset;
    offset += level.size;
    layout.levels.push_back(level);
  }
  layout.total_entries = offset;
  return layout;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

void check_inputs(const at::Tensor& x, const at::Tensor& table, const HashGridLayout& layout) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == 3, "hash grid: x must be [N,3], got ", x.sizes());
  TORCH_CHECK(table.dim() == 2 && table.size(0) == layout.total_entries && table.size(1) == layout.features,
              "hash grid: table must be [", layout.total_entries, ",", layout.features, "], got ",
              table.sizes());
  TORCH_CHECK(x.device().is_cpu() && table.device().is_cpu(), "hash grid: the fused op runs on the CPU");
}

// The layout travels to backward as plain numbers in saved_data.
void save_layout(AutogradContext* ctx, const HashGridLayout& layout) {
  std::vector<double> scales;
  std::vector<int64_t> resolutions, offsets, sizes, hashed;
  for (const auto& l : layout.levels) {
    scales.push_back(l.scale);
    resolutions.push_back(l.resolution);
    offsets.push_back(l.offset);
    sizes.push_back(l.size);
    hashed.push_back(l.hashed);
  }
  ctx->saved_data["scales"] = scales;
  ctx->saved_data["resolutions"] = resolutions;
  ctx->saved_data["offsets"] = offsets;
  ctx->saved_data["sizes"] = sizes;
  ctx->saved_data["hashed"] = hashed;
  ctx->saved_data["features"] = static_cast<int64_t>(layout.features);
  ctx->saved_data["bound"] = layout.bound;
  ctx->saved_data["total"] = layout.total_entries;
}

HashGridLayout load_layout(AutogradContext* ctx) {
  HashGridLayout layout;
  auto scales = ctx->saved_data["scales"].toDoubleVector();
  auto resolutions = ctx->saved_data["resolutions"].toIntVector();
  auto offsets = ctx->saved_data["offsets"].toIntVector();
  auto sizes = ctx->saved_data["sizes"].toIntVector();
  auto hashed = ctx->saved_data["hashed"].toIntVector();
  for (size_t l = 0; l < scales.size(); ++l) {
    HashGridLevel level;
    level.scale = scales[l];
    level.resolution = static_cast<int>(resolutions[l]);
    level.offset = offsets[l];
    level.size = sizes[l];
    level.hashed = hashed[l] != 0;
    layout.levels.push_back(level);
  }
  layout.features = static_cast<int>(ctx->saved_data["features"].toInt());
  layout.bound = ctx->saved_data["bound"].toDouble();
  layout.total_entries = ctx->saved_data["total"].toInt();
  return layout;
}

struct HashGridFunction : public torch::autograd::Function<HashGridFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& table,
                            const HashGridLayout& layout) {
    auto xc = x.contiguous();
    auto tc = table.contiguous();
    save_layout(ctx, layout);
    ctx->save_for_backward({xc, table});  // (also checks that nobody changes the table before backward)
    // The table tensor itself, whose .grad() backward may add into.
    ctx->saved_data["table"] = table;
    return hash_grid_forward_cpu(xc, tc, layout);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto layout = load_layout(ctx);
    auto saved = ctx->get_saved_variables();
    auto x = saved[0];
    auto table = ctx->saved_data["table"].toTensor();
    auto grad_out = grads[0].contiguous();
    const bool need_x = ctx->needs_input_grad(0), need_table = ctx->needs_input_grad(1);
    at::Tensor grad_table, grad_table_out;
    if (need_table) {
      const auto& g = table.grad();
      if (table.is_leaf() && g.defined() && g.is_contiguous() && g.scalar_type() == at::kFloat &&
          g.sizes() == table.sizes() && !g.requires_grad()) {
        grad_table = g;  // accumulate in place; autograd gets no table gradient to add
      } else {
        grad_table = at::empty_like(table, at::MemoryFormat::Contiguous);
        grad_table_out = grad_table;
      }
    }
    auto tc = saved[1].contiguous();
    auto grad_x = hash_grid_backward_cpu(x, tc, layout, grad_out, grad_table, need_x,
                                         /*overwrite_grad_table=*/grad_table_out.defined());
    return {grad_x, grad_table_out, at::Tensor()};
  }
};

}  // namespace

at::Tensor hash_grid_encode(const at::Tensor& x, const at::Tensor& table, const HashGridLayout& layout) {
  check_inputs(x, table, layout);
  TORCH_CHECK(
      x.scalar_type() == at::kFloat && table.scalar_type() == at::kFloat,
      "hash grid: the fused op takes float32 x and table (use hash_grid_encode_reference for float64)");
  return HashGridFunction::apply(x, table, layout);
}

HashGridImpl::HashGridImpl(const HashGridConfig& config) : config_(config), layout_(make_layout(config)) {
  table =
      register_parameter("table", at::empty({layout_.total_entries, layout_.features}).uniform_(-1e-4, 1e-4));
}

at::Tensor HashGridImpl::forward(const at::Tensor& x) { return hash_grid_encode(x, table, layout_); }

at::Tensor HashGridImpl::forward_reference(const at::Tensor& x) {
  return hash_grid_encode_reference(x, table, layout_);
}

}  // namespace nd
