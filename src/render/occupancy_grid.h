// Instant-NGP's occupancy grid: a res³ grid over [-bound, bound]^3 holding an exponential moving maximum of
// the field's density, and the set of cells whose density is worth sampling. The ray marcher skips the rest.
//
// Cells: cell size h = 2·bound/res; cell (ix, iy, iz) covers [-bound + ix·h, -bound + (ix+1)·h) × … and has
// its centre at x = -bound + (ix + 0.5)·h (same for y, z); its flat index is ix + iy·res + iz·res².
//
// Update rule (torch-ngp's variant of Instant-NGP), per call of update():
//   * cells evaluated: every cell while step < 256; afterwards every occupied cell plus max(#occupied,
//   res³/16)
//     cells drawn uniformly at random (with replacement; the floor lets an empty grid recover);
//   * the new estimate of a cell is σ at one uniformly random point inside it (the max if drawn twice);
//   * density[c] = max(density[c]·decay, estimate[c]) for the evaluated cells; the others keep their value;
//   * occupied[c] = density[c] > min(mean(density), threshold / min_step), where threshold is the minimum
//     optical thickness of one marching step (Instant-NGP's NERF_MIN_OPTICAL_THICKNESS = 0.01) and min_step
//     is the marcher's base step, 2·√3·bound / 1024 unless given.
// A new grid (and mark_all_occupied()) has density 0 and every cell occupied, so nothing is culled before the
// first update.
//
// Blocks: a coarse copy, one byte per kBlock³ cells (1 = some cell of it is occupied), kept in step with
// the cells, lets the marcher leap over a whole empty block at once instead of crossing its cells one by
// one (a ray through empty space crosses ~res cells; most rays of a fit miss the object).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace nd {

class OccupancyGrid {
 public:
  // points: [M,3] float32 in [-bound, bound]^3 → σ: [M] (or [M,1]) float, >= 0. Called without grad.
  using DensityFn = std::function<at::Tensor(const at::Tensor& points)>;

  explicit OccupancyGrid(int resolution = 128, double bound = 1.0);

  // One update (see the rule above). `step` is the training step (full sweeps while step < 256). rng is
  // advanced by a fixed amount, so the result is deterministic for a given rng state and thread count
  // independent. min_step <= 0 means 2·√3·bound / 1024. The density function is called in chunks of
  // kChunk points under at::NoGradGuard; NaN and negative values count as 0.
  void update(const DensityFn& density_fn, int64_t step, std::mt19937_64& rng, double decay = 0.95,
              double threshold = 0.01, double min_step = 0.0);

  at::Tensor density() const { return density_; }    // [res³] float32, EMA of max density (do not modify)
  at::Tensor occupied() const { return occupied_; }  // [res³] bool (do not modify; use load_state)
  double occupied_fraction() const;
  void mark_all_occupied();
  // Training steps during which every update evaluates every cell (Instant-NGP: 256).
  void set_warmup_steps(int64_t steps) {
    warmup_steps_ = steps;
  }  // density 0, every cell occupied (nothing culled)

  // p: a point [3]. False outside [-bound, bound]^3 (a point on the boundary belongs to the edge cell).
  bool is_occupied(const float* p) const;
  // Cell index of p (clamped into the grid, for points on or just outside the boundary).
  int64_t cell_of(const float* p) const;
  // [res³,3] float32, the centre of every cell in flat-index order.
  at::Tensor cell_centers() const;

  int resolution() const { return res_; }
  double bound() const { return bound_; }
  double cell_size() const { return 2.0 * bound_ / res_; }
  // The compact form the marcher reads: [res³] bytes, 1 = occupied (aliases occupied()'s storage).
  const uint8_t* occupancy_bytes() const {
    return reinterpret_cast<const uint8_t*>(occupied_.data_ptr<bool>());
  }
  // [(res/kBlock)³] bytes, flat index bx + by·(res/kBlock) + bz·(res/kBlock)², 1 = some cell of the block is
  // occupied; nullptr when res is not a multiple of kBlock (or too small to gain from blocks).
  static constexpr int kBlock = 8;
  const uint8_t* block_bytes() const { return blocks_.empty() ? nullptr : blocks_.data(); }
  int block_resolution() const { return res_ / kBlock; }

  // Keys: "density" [res³] float32, "occupied" [res³] uint8, "resolution" [1] int64, "bound" [1] float64.
  std::map<std::string, at::Tensor> state() const;
  // Throws InputError when a key is missing or the resolution/bound differ from this grid's.
  void load_state(const std::map<std::string, at::Tensor>& state);

  static constexpr int64_t kChunk = 65536;
  int64_t warmup_steps_ = 256;

 private:
  int res_;
  double bound_;
  at::Tensor density_;   // [res³] float32
  at::Tensor occupied_;  // [res³] bool
  std::vector<uint8_t> blocks_;
  void refresh_blocks();  // after every change of occupied_
};

}  // namespace nd
