#include "render/ray_aabb.h"

#include <ATen/Parallel.h>

namespace nd {

void ray_aabb(const at::Tensor& origins, const at::Tensor& dirs, double bound, double min_near,
              at::Tensor& near, at::Tensor& far) {
  TORCH_CHECK(origins.dim() == 2 && origins.size(1) == 3, "ray_aabb: origins must be [R,3], got ",
              origins.sizes());
  TORCH_CHECK(dirs.sizes() == origins.sizes(), "ray_aabb: dirs must match origins ", origins.sizes(),
              ", got ", dirs.sizes());
  TORCH_CHECK(origins.scalar_type() == dirs.scalar_type(), "ray_aabb: origins and dirs must share a dtype");
  TORCH_CHECK(origins.device().is_cpu() && dirs.device().is_cpu(), "ray_aabb: CPU tensors only");
  TORCH_CHECK(bound > 0, "ray_aabb: bound must be > 0");
  const auto o = origins.contiguous(), d = dirs.contiguous();
  const int64_t R = o.size(0);
  near = at::empty({R}, o.options());
  far = at::empty({R}, o.options());
  AT_DISPATCH_FLOATING_TYPES(o.scalar_type(), "ray_aabb", [&] {
    const scalar_t* po = o.data_ptr<scalar_t>();
    const scalar_t* pd = d.data_ptr<scalar_t>();
    scalar_t* pn = near.data_ptr<scalar_t>();
    scalar_t* pf = far.data_ptr<scalar_t>();
    at::parallel_for(0, R, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        detail::ray_aabb_one<scalar_t>(po + 3 * r, pd + 3 * r, scalar_t(bound), scalar_t(min_near), pn[r],
                                       pf[r]);
    });
  });
}

}  // namespace nd
