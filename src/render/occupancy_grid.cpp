#include "render/occupancy_grid.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace nd {

namespace {

// Counter-based random numbers: every cell/point gets its own stream from (seed, index), so the update can
// run on any number of threads and still give the same result for a given rng state.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
inline float uniform01(uint64_t bits) { return float(bits >> 40) * (1.0f / 16777216.0f); }  // [0, 1)

}  // namespace

OccupancyGrid::OccupancyGrid(int resolution, double bound) : res_(resolution), bound_(bound) {
  require(resolution >= 1 && resolution <= 1024,
          "occupancy grid: resolution must be in [1, 1024], got " + std::to_string(resolution));
  require(bound > 0, "occupancy grid: bound must be > 0, got " + std::to_string(bound));
  const int64_t n = int64_t(res_) * res_ * res_;
  density_ = at::zeros({n}, at::kFloat);
  occupied_ = at::ones({n}, at::kBool);
  refresh_blocks();
}

void OccupancyGrid::mark_all_occupied() {
  density_.zero_();
  occupied_.fill_(true);
  refresh_blocks();
}

void OccupancyGrid::refresh_blocks() {
  if (res_ % kBlock != 0 || res_ < 2 * kBlock) return;
  const int64_t br = res_ / kBlock, r = res_;
  blocks_.assign(static_cast<size_t>(br * br * br), 0);
  const bool* occ = occupied_.data_ptr<bool>();
  // One z-slab of blocks per task: each task writes its own blocks.
  at::parallel_for(0, br, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bz = begin; bz < end; ++bz)
      for (int64_t z = bz * kBlock; z < (bz + 1) * kBlock; ++z)
        for (int64_t y = 0; y < r; ++y) {
          const bool* row = occ + (z * r + y) * r;
          uint8_t* brow = blocks_.data() + (bz * br + y / kBlock) * br;
          for (int64_t x = 0; x < r; ++x)
            if (row[x]) brow[x / kBlock] = 1;
        }
  });
}

double OccupancyGrid::occupied_fraction() const { return occupied_.to(at::kDouble).mean().item<double>(); }

int64_t OccupancyGrid::cell_of(const float* p) const {
  const double inv_h = res_ / (2.0 * bound_);
  int64_t idx[3];
  for (int a = 0; a < 3; ++a) {
    const double f = std::floor((double(p[a]) + bound_) * inv_h);
    idx[a] = int64_t(std::min(std::max(f, 0.0), double(res_ - 1)));
  }
  return idx[0] + idx[1] * res_ + idx[2] * int64_t(res_) * res_;
}

bool OccupancyGrid::is_occupied(const float* p) const {
  for (int a = 0; a < 3; ++a)
    if (!(p[a] >= -bound_ && p[a] <= bound_)) return false;
  return occupancy_bytes()[cell_of(p)] != 0;
}

at::Tensor OccupancyGrid::cell_centers() const {
  const int64_t n = int64_t(res_) * res_ * res_;
  auto out = at::empty({n, 3}, at::kFloat);
  float* po = out.data_ptr<float>();
  const double h = cell_size();
  const int64_t r = res_;
  at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      po[3 * c + 0] = float(-bound_ + (c % r + 0.5) * h);
      po[3 * c + 1] = float(-bound_ + ((c / r) % r + 0.5) * h);
      po[3 * c + 2] = float(-bound_ + (c / (r * r) + 0.5) * h);
    }
  });
  return out;
}

void OccupancyGrid::update(const DensityFn& density_fn, int64_t step, std::mt19937_64& rng, double decay,
                           double threshold, double min_step) {
  TORCH_CHECK(decay >= 0 && decay <= 1, "occupancy grid: decay must be in [0, 1]");
  const int64_t n = int64_t(res_) * res_ * res_;
  const uint64_t seed_cells = rng(), seed_points = rng();

  // Which cells to evaluate.
  std::vector<int64_t> cells;
  if (step < warmup_steps_) {
    cells.resize(n);
    for (int64_t c = 0; c < n; ++c) cells[c] = c;
  } else {
    const bool* occ = occupied_.data_ptr<bool>();
    for (int64_t c = 0; c < n; ++c)
      if (occ[c]) cells.push_back(c);
    const int64_t n_occ = int64_t(cells.size());
    const int64_t n_rand = std::max(n_occ, n / 16);
    cells.resize(n_occ + n_rand);
    at::parallel_for(0, n_rand, 16384, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j)
        cells[n_occ + j] = int64_t(splitmix64(seed_cells ^ splitmix64(uint64_t(j))) % uint64_t(n));
    });
  }
  const int64_t m = int64_t(cells.size());

  // One uniformly random point in each of them.
  auto points = at::empty({m, 3}, at::kFloat);
  {
    float* pp = points.data_ptr<float>();
    const double h = cell_size();
    const int64_t r = res_;
    at::parallel_for(0, m, 16384, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        const int64_t c = cells[j];
        const int64_t ijk[3] = {c % r, (c / r) % r, c / (r * r)};
        uint64_t state = splitmix64(seed_points ^ splitmix64(uint64_t(j)));
        for (int a = 0; a < 3; ++a) {
          state = splitmix64(state);
          const double x = -bound_ + (double(ijk[a]) + uniform01(state)) * h;
          pp[3 * j + a] = float(std::min(x, bound_));
        }
      }
    });
  }

  // Evaluate the density in chunks; the estimate of a cell drawn several times is the max.
  std::vector<float> estimate(n, -1.0f);  // -1: not evaluated this time
  {
    at::NoGradGuard no_grad;
    for (int64_t begin = 0; begin < m; begin += kChunk) {
      const int64_t len = std::min(kChunk, m - begin);
      at::Tensor sigma = density_fn(points.slice(0, begin, begin + len));
      TORCH_CHECK(sigma.numel() == len, "occupancy grid: density_fn returned ", sigma.numel(), " values for ",
                  len, " points");
      sigma = sigma.detach().reshape({len}).to(at::kFloat).contiguous();
      const float* ps = sigma.data_ptr<float>();
      for (int64_t j = 0; j < len; ++j) {
        float v = ps[j];
        if (!(v >= 0.0f)) v = 0.0f;  // NaN or negative
        float& e = estimate[cells[begin + j]];
        e = std::max(e, v);
      }
    }
  }

  // Moving maximum, then the threshold.
  float* pd = density_.data_ptr<float>();
  const float fdecay = float(decay);
  at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c)
      if (estimate[c] >= 0.0f) pd[c] = std::max(pd[c] * fdecay, estimate[c]);
  });
  if (min_step <= 0) min_step = 2.0 * std::sqrt(3.0) * bound_ / 1024.0;
  const double mean = density_.to(at::kDouble).mean().item<double>();
  const float cut = float(std::min(mean, threshold / min_step));
  bool* po = occupied_.data_ptr<bool>();
  at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) po[c] = pd[c] > cut;
  });
  refresh_blocks();
}

std::map<std::string, at::Tensor> OccupancyGrid::state() const {
  return {{"density", density_.clone()},
          {"occupied", occupied_.to(at::kByte)},
          {"resolution", at::full({1}, int64_t(res_), at::kLong)},
          {"bound", at::full({1}, bound_, at::kDouble)}};
}

void OccupancyGrid::load_state(const std::map<std::string, at::Tensor>& state) {
  const int64_t n = int64_t(res_) * res_ * res_;
  auto get = [&](const char* key) -> const at::Tensor& {
    auto it = state.find(key);
    require(it != state.end() && it->second.defined(),
            std::string("occupancy grid state: missing \"") + key + "\"");
    return it->second;
  };
  const auto& res = get("resolution");
  const auto& bnd = get("bound");
  require(res.numel() == 1 && res.item<int64_t>() == res_,
          "occupancy grid state: resolution " + std::to_string(res.numel() == 1 ? res.item<int64_t>() : -1) +
              " differs from this grid's " + std::to_string(res_));
  require(bnd.numel() == 1 && std::abs(bnd.item<double>() - bound_) <= 1e-6 * bound_,
          "occupancy grid state: bound differs from this grid's " + std::to_string(bound_));
  const auto& den = get("density");
  const auto& occ = get("occupied");
  require(den.numel() == n && occ.numel() == n,
          "occupancy grid state: \"density\"/\"occupied\" must hold " + std::to_string(n) + " values");
  density_ = den.reshape({n}).to(at::kFloat).contiguous().clone();
  occupied_ = (occ.reshape({n}) != 0).contiguous();
  refresh_blocks();
}

}  // namespace nd
