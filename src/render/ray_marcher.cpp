#include "render/ray_marcher.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "render/ray_aabb.h"

namespace nd {

namespace {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

struct Marcher {
  double bound, dt_min, dt_max, cone, min_near;
  int64_t max_samples;
  const uint8_t* occ = nullptr;     // nullptr: no culling
  const uint8_t* blocks = nullptr;  // the grid's blocks (nullptr: cross empty space cell by cell)
  int64_t res = 0, block_res = 0;
  double h = 0, inv_h = 0, eps = 0;

  double step_at(double t) const { return cone > 0 ? std::min(std::max(t * cone, dt_min), dt_max) : dt_min; }

  // Marches one ray, writing its samples to pos/ts/deltas (room for min(max_samples, max_steps + 2)).
  // Returns the number of samples.
  int64_t run(const float* of, const float* df, double jitter_u, float* pos, float* ts, float* deltas) const {
    const double o[3] = {of[0], of[1], of[2]}, d[3] = {df[0], df[1], df[2]};
    double near, far;
    if (!detail::ray_aabb_one<double>(o, d, bound, min_near, near, far)) return 0;
    const double t0 = near + jitter_u * step_at(near);
    double t = t0;
    int64_t k = 0, n = 0;
    while (t < far && n < max_samples) {
      const double dt = step_at(t);
      const double seg = std::min(dt, far - t);
      const double tm = t + 0.5 * seg;
      const double p[3] = {o[0] + d[0] * tm, o[1] + d[1] * tm, o[2] + d[2] * tm};
      if (occ) {
        int64_t ijk[3];
        for (int a = 0; a < 3; ++a)
          ijk[a] =
              std::min<int64_t>(std::max<int64_t>(int64_t(std::floor((p[a] + bound) * inv_h)), 0), res - 1);
        if (!occ[ijk[0] + res * (ijk[1] + res * ijk[2])]) {
          // Exit of this (convex) cell — or of its whole block when the block is empty — along the ray;
          // every midpoint before it is in empty space.
          double size = h;
          int64_t lo[3] = {ijk[0], ijk[1], ijk[2]};
          if (blocks) {
            const int64_t b[3] = {ijk[0] / OccupancyGrid::kBlock, ijk[1] / OccupancyGrid::kBlock,
                                  ijk[2] / OccupancyGrid::kBlock};
            if (!blocks[b[0] + block_res * (b[1] + block_res * b[2])]) {
              size = h * OccupancyGrid::kBlock;
              for (int a = 0; a < 3; ++a) lo[a] = b[a];
            }
          }
          double to_exit = std::numeric_limits<double>::infinity();
          for (int a = 0; a < 3; ++a) {
            if (d[a] == 0) continue;
            const double plane = -bound + double(lo[a] + (d[a] > 0 ? 1 : 0)) * size;
            to_exit = std::min(to_exit, (plane - p[a]) / d[a]);
          }
          const double target = tm + to_exit - eps;  // eps: never skip a midpoint that rounding puts past it
          if (cone <= 0) {
            const double kk = std::ceil((target - t0) / dt_min - 0.5);  // first k with midpoint >= target
            k = kk > double(k + 1) ? int64_t(std::min(kk, 1e15)) : k + 1;
            t = t0 + double(k) * dt_min;
          } else {
            do {
              t += step_at(t);
            } while (t < far && t + 0.5 * step_at(t) < target);
          }
          continue;
        }
      }
      for (int a = 0; a < 3; ++a) pos[3 * n + a] = float(p[a]);
      ts[n] = float(tm);
      deltas[n] = float(seg);
      ++n;
      if (cone <= 0) {
        ++k;
        t = t0 + double(k) * dt_min;  // by index, not by accumulation: same t whatever was skipped
      } else {
        t += dt;
      }
    }
    return n;
  }
};

}  // namespace

RaySamples march_rays(const at::Tensor& origins, const at::Tensor& dirs, double bound,
                      const OccupancyGrid* grid, const MarchOptions& opts, std::mt19937_64* rng) {
  TORCH_CHECK(origins.dim() == 2 && origins.size(1) == 3 && dirs.sizes() == origins.sizes(),
              "march_rays: origins and dirs must both be [R,3], got ", origins.sizes(), " and ",
              dirs.sizes());
  TORCH_CHECK(origins.scalar_type() == at::kFloat && dirs.scalar_type() == at::kFloat,
              "march_rays: origins and dirs must be float32");
  TORCH_CHECK(origins.device().is_cpu() && dirs.device().is_cpu(), "march_rays: CPU tensors only");
  require(bound > 0, "render.bound: must be > 0, got " + std::to_string(bound));
  require(opts.max_steps >= 1, "render.max_steps: must be >= 1, got " + std::to_string(opts.max_steps));
  require(opts.max_samples_per_ray >= 1,
          "render.max_samples_per_ray: must be >= 1, got " + std::to_string(opts.max_samples_per_ray));
  require(opts.cone_angle >= 0, "render.cone_angle: must be >= 0, got " + std::to_string(opts.cone_angle));
  require(opts.max_step >= 0, "render.max_step: must be >= 0, got " + std::to_string(opts.max_step));
  require(opts.min_near >= 0, "render.min_near: must be >= 0, got " + std::to_string(opts.min_near));
  TORCH_CHECK(!opts.jitter || rng, "march_rays: jitter needs an rng");
  if (grid)
    TORCH_CHECK(std::abs(grid->bound() - bound) <= 1e-9 * bound, "march_rays: grid bound ", grid->bound(),
                " differs from bound ", bound);

  const auto o = origins.contiguous(), d = dirs.contiguous();
  const int64_t R = o.size(0);
  Marcher m;
  m.bound = bound;
  m.dt_min = 2.0 * std::sqrt(3.0) * bound / opts.max_steps;
  m.dt_max = std::max(m.dt_min, opts.max_step > 0 ? opts.max_step : 2.0 * std::sqrt(3.0) * bound / 128.0);
  m.cone = opts.cone_angle;
  m.min_near = opts.min_near;
  m.max_samples = opts.max_samples_per_ray;
  if (grid) {
    m.occ = grid->occupancy_bytes();
    m.res = grid->resolution();
    m.h = grid->cell_size();
    m.inv_h = 1.0 / m.h;
    m.eps = 1e-6 * m.h;
    m.blocks = grid->block_bytes();
    m.block_res = grid->block_resolution();
  }
  // Per-ray jitter from one draw of rng: counter-based, so independent of the thread split.
  const uint64_t seed = opts.jitter ? (*rng)() : 0;
  auto jitter_of = [&](int64_t r) {
    return opts.jitter ? double(splitmix64(seed ^ splitmix64(uint64_t(r))) >> 11) * 0x1.0p-53 : 0.0;
  };

  const float* po = o.data_ptr<float>();
  const float* pd = d.data_ptr<float>();
  // One pass: each block of rays marches into its own buffer (a ray's samples are not known before it is
  // marched), then the buffers are copied into place in ray order.
  constexpr int64_t kRaysPerBlock = 64;
  const int64_t blocks = (R + kRaysPerBlock - 1) / kRaysPerBlock;
  struct Buffer {
    std::vector<float> pos, ts, deltas;
  };
  std::vector<Buffer> buffers(static_cast<size_t>(blocks));
  auto counts = at::empty({R}, at::kLong);
  int64_t* pc = counts.data_ptr<int64_t>();
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      Buffer& buf = buffers[static_cast<size_t>(b)];
      const int64_t r0 = b * kRaysPerBlock, r1 = std::min(R, r0 + kRaysPerBlock);
      // A ray marches into scratch room for its longest march; what it wrote is appended.
      const int64_t room = std::min<int64_t>(m.max_samples, opts.max_steps + 2);
      std::vector<float> scratch(static_cast<size_t>(5 * room));
      float *spos = scratch.data(), *sts = spos + 3 * room, *sdl = sts + room;
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = m.run(po + 3 * r, pd + 3 * r, jitter_of(r), spos, sts, sdl);
        pc[r] = n;
        buf.pos.insert(buf.pos.end(), spos, spos + 3 * n);
        buf.ts.insert(buf.ts.end(), sts, sts + n);
        buf.deltas.insert(buf.deltas.end(), sdl, sdl + n);
      }
    }
  });
  auto offsets = at::empty({R}, at::kLong);
  int64_t* pof = offsets.data_ptr<int64_t>();
  int64_t total = 0;
  for (int64_t r = 0; r < R; ++r) {
    pof[r] = total;
    total += pc[r];
  }

  RaySamples s;
  s.positions = at::empty({total, 3}, at::kFloat);
  s.dirs = at::empty({total, 3}, at::kFloat);
  s.ts = at::empty({total}, at::kFloat);
  s.deltas = at::empty({total}, at::kFloat);
  float* pp = s.positions.data_ptr<float>();
  float* pdir = s.dirs.data_ptr<float>();
  float* pt = s.ts.data_ptr<float>();
  float* pdl = s.deltas.data_ptr<float>();
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const Buffer& buf = buffers[static_cast<size_t>(b)];
      const int64_t r0 = b * kRaysPerBlock, r1 = std::min(R, r0 + kRaysPerBlock);
      if (r0 >= r1 || buf.ts.empty()) continue;
      const int64_t i = pof[r0], n = static_cast<int64_t>(buf.ts.size());
      std::memcpy(pp + 3 * i, buf.pos.data(), sizeof(float) * 3 * n);
      std::memcpy(pt + i, buf.ts.data(), sizeof(float) * n);
      std::memcpy(pdl + i, buf.deltas.data(), sizeof(float) * n);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t k = pof[r]; k < pof[r] + pc[r]; ++k)
          for (int a = 0; a < 3; ++a) pdir[3 * k + a] = pd[3 * r + a];
    }
  });
  s.ray_offsets = offsets;
  s.ray_counts = counts;
  return s;
}

}  // namespace nd
