// Ray marching through the scene cube with occupancy-grid culling (Instant-NGP's marcher, on the CPU).
//
// Each ray is cut into steps from near to far (ray_aabb against [-bound, bound]^3, near >= min_near). Step k
// covers [t_k, t_k + dt_k) and is sampled at its midpoint; the last step is clipped at far. A sample is
// emitted only where the grid cell of the midpoint is occupied; from an empty cell the marcher jumps to
// the first step whose midpoint lies past the cell's exit (past the exit of the cell's whole 8³ block when
// the grid's block mip says the block is empty). The step sequence t_k is a function of the ray
// alone (never of the grid), so culling on and off give bit-identical samples in occupied space.
//   fixed step (cone_angle = 0): dt = 2·√3·bound / max_steps, t_k = t_0 + k·dt;
//   cone_angle > 0: dt_k = clamp(t_k·cone_angle, 2·√3·bound / max_steps, max_step), t_{k+1} = t_k + dt_k.
#pragma once
#include <ATen/ATen.h>

#include <random>

#include "render/occupancy_grid.h"

namespace nd {

struct MarchOptions {
  int max_steps = 1024;            // steps across the box diagonal: base step = 2·√3·bound / max_steps
  int max_samples_per_ray = 1024;  // a ray stops after this many emitted samples
  double cone_angle = 0.0;         // 0 = fixed step; e.g. 1/256 for large real scenes
  double max_step = 0.0;           // cap of the cone step; 0 = 2·√3·bound / 128 (8 base steps by default)
  double min_near = 0.05;          // no samples closer than this to the origin
  bool jitter = false;             // random start offset in [0, dt) per ray (training)
};

struct RaySamples {
  at::Tensor positions;    // [S,3] float32, origin + t·dir
  at::Tensor dirs;         // [S,3] float32, the ray's direction, per sample
  at::Tensor ts;           // [S]   float32, t of the sample (the step midpoint)
  at::Tensor deltas;       // [S]   float32, step length
  at::Tensor ray_offsets;  // [R]   int64, exclusive scan of ray_counts
  at::Tensor ray_counts;   // [R]   int64
};

// origins, dirs: [R,3] float32 (dirs unit length, so that t is a distance). grid: nullptr = no culling
// (grid->bound() must equal bound). rng: needed only with opts.jitter; advanced by one draw. Deterministic
// for a given rng state, whatever the thread count. One multi-threaded pass: blocks of rays march into
// their own buffers, which are then copied into place in ray order.
RaySamples march_rays(const at::Tensor& origins, const at::Tensor& dirs, double bound,
                      const OccupancyGrid* grid, const MarchOptions& opts, std::mt19937_64* rng);

}  // namespace nd
