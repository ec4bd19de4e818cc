#include "mesh/fill_cavities.h"

#include <vector>

namespace nd {

at::Tensor fill_cavities(const at::Tensor& occupied) {
  TORCH_CHECK(occupied.dim() == 3 && occupied.scalar_type() == at::kBool, "fill_cavities: need [X,Y,Z] bool");
  const at::Tensor occ = occupied.contiguous();
  const int64_t nx = occ.size(0), ny = occ.size(1), nz = occ.size(2);
  const bool* o = occ.data_ptr<bool>();
  // Breadth-first search over empty cells from every empty border cell: what it reaches is outside.
  std::vector<uint8_t> outside(static_cast<size_t>(nx * ny * nz), 0);
  std::vector<int64_t> queue;
  auto visit = [&](int64_t x, int64_t y, int64_t z) {
    if (x < 0 || y < 0 || z < 0 || x >= nx || y >= ny || z >= nz) return;
    const int64_t i = (x * ny + y) * nz + z;
    if (o[i] || outside[i]) return;
    outside[i] = 1;
    queue.push_back(i);
  };
  for (int64_t x = 0; x < nx; ++x)
    for (int64_t y = 0; y < ny; ++y)
      for (int64_t z = 0; z < nz; ++z)
        if (x == 0 || y == 0 || z == 0 || x == nx - 1 || y == ny - 1 || z == nz - 1) visit(x, y, z);
  for (size_t head = 0; head < queue.size(); ++head) {
    const int64_t i = queue[head];
    const int64_t z = i % nz, y = (i / nz) % ny, x = i / (nz * ny);
    visit(x - 1, y, z);
    visit(x + 1, y, z);
    visit(x, y - 1, z);
    visit(x, y + 1, z);
    visit(x, y, z - 1);
    visit(x, y, z + 1);
  }
  at::Tensor filled = at::empty_like(occ);
  bool* f = filled.data_ptr<bool>();
  for (size_t i = 0; i < outside.size(); ++i) f[i] = !outside[i];
  return filled;
}

}  // namespace nd
