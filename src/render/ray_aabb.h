// Ray / axis-aligned box intersection (slab test) against the scene cube [-bound, bound]^3.
#pragma once
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace nd {

// origins, dirs: [R,3] float32 or float64 (dirs need not be unit length; t is in units of |dir|).
// Writes near, far: [R] (same dtype as origins), newly allocated. near is clamped to >= min_near.
// A ray that misses the box (or whose hit lies entirely before min_near, or whose direction is zero) gets
// near = far = min_near, i.e. an empty interval: no samples.
void ray_aabb(const at::Tensor& origins, const at::Tensor& dirs, double bound, double min_near,
              at::Tensor& near, at::Tensor& far);

namespace detail {
// One ray, the same rule as ray_aabb (shared with the ray marcher). Returns false on a miss, where
// near = far = min_near. A zero direction component is handled exactly: that slab is either always
// or never satisfied (no 0·inf = NaN).
template <class T>
inline bool ray_aabb_one(const T* o, const T* d, T bound, T min_near, T& near, T& far) {
  T tmin = min_near, tmax = std::numeric_limits<T>::infinity();
  for (int a = 0; a < 3; ++a) {
    if (d[a] == T(0)) {
      if (o[a] < -bound || o[a] > bound) {
        tmin = tmax = min_near;
        break;
      }
      continue;
    }
    const T inv = T(1) / d[a];
    T t0 = (-bound - o[a]) * inv, t1 = (bound - o[a]) * inv;
    if (t0 > t1) std::swap(t0, t1);
    tmin = std::max(tmin, t0);
    tmax = std::min(tmax, t1);
  }
  // !(tmin < tmax) also catches NaN from non-finite inputs; an infinite far means a zero direction.
  if (!(tmin < tmax) || std::isinf(tmax)) {
    near = far = min_near;
    return false;
  }
  near = tmin;
  far = tmax;
  return true;
}
}  // namespace detail

}  // namespace nd
