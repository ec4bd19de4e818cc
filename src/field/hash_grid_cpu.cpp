// Fused CPU kernels of the hash grid encoding (forward, and backward to the table and to x).
//
// The cost is 16 levels × 8 corners of random reads (forward) and read-modify-writes (backward) into
// tables of up to 2^19 rows (4 MB per level at F = 2, 46 MB in all: more than the L3 cache). So:
//  - the work is split by LEVEL: a task streams all points through one level, whose table (and, in
//    backward, its gradient) stays in cache. A level is owned by one thread in backward, so the table
//    gradient needs neither atomics nor per-thread copies, and it is deterministic;
//  - a level's table slice is first streamed in with sequential prefetches (warm()), then the random
//    accesses mostly hit the cache;
//  - points go in batches of kBatch: the corner rows and weights of a batch are computed 8 points at a
//    time (AVX2, SoA), and the rows of the NEXT batch are prefetched while the current batch is
//    interpolated, so that many cache misses are in flight at once;
//  - x01 = clamp((x + bound)/(2·bound), 0, 1) is computed once per call, in SoA layout;
//  - a level task reads and writes its own contiguous [N, F] slice of a level-major copy of the
//    output (or of grad_out): one transpose per call instead of every level touching every 128-byte
//    output row (which costs ~16 passes over the output, more than half of the forward's time);
//  - scratch buffers persist between calls (a fresh 16 MB buffer costs ~9 ms of page faults here).
// Measured on the 2-core dev box (N = 131072, default config): see bench/bench_hash_grid.cpp.
#include <ATen/Parallel.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "field/hash_grid.h"

namespace nd {
namespace {

constexpr uint32_t kPrimeY = 2654435761u, kPrimeZ = 805459861u;
constexpr int kBatch = 32;  // points per batch (a multiple of 8, the AVX2 width)
static_assert(kBatch % 8 == 0, "kBatch must be a multiple of 8");
// Points per kernel pass: bounds the scratch memory (~180 bytes per point at L·F = 32) that the calling
// thread keeps between calls; each pass streams the whole table through the cache once.
constexpr int64_t kMaxPoints = int64_t{1} << 17;

struct LevelParams {
  float scale;
  uint32_t res, res2, size, mask;
  bool hashed;
  int64_t offset;
};

std::vector<LevelParams> level_params(const HashGridLayout& layout) {
  std::vector<LevelParams> out;
  for (const auto& l : layout.levels) {
    LevelParams p;
    p.scale = static_cast<float>(l.scale);
    p.res = static_cast<uint32_t>(l.resolution);
    p.res2 = l.hashed ? 0 : p.res * p.res;
    p.size = static_cast<uint32_t>(l.size);
    p.mask = p.size - 1;  // used for hashed levels only, whose size is a power of two
    p.hashed = l.hashed;
    p.offset = l.offset;
    TORCH_CHECK(!l.hashed || (l.size & (l.size - 1)) == 0,
                "hash grid: hashed level size must be a power of 2");
    out.push_back(p);
  }
  return out;
}

// The 8 corners of kBatch points on one level; corner k = cx | cy<<1 | cz<<2.
struct Corners {
  alignas(64) uint32_t row[8][kBatch];
  alignas(64) float w[8][kBatch];
  alignas(64) float frac[3][kBatch];
};

// x, y, z: kBatch values of x01 each. Portable version (builds without AVX2 + FMA).
template <bool kHashed>
inline void compute_corners(const LevelParams& lv, const float* __restrict x, const float* __restrict y,
                            const float* __restrict z, Corners& c) {
  const float s = lv.scale;
  const uint32_t res = lv.res, res2 = lv.res2, size = lv.size, mask = lv.mask;
  for (int j = 0; j < kBatch; ++j) {
    // fmaf: one rounding, as tiny-cuda-nn; the reference computes the same in float64 and rounds once.
    const float px = std::fma(x[j], s, 0.5f), py = std::fma(y[j], s, 0.5f), pz = std::fma(z[j], s, 0.5f);
    const float flx = std::floor(px), fly = std::floor(py), flz = std::floor(pz);
    const float fx = px - flx, fy = py - fly, fz = pz - flz;
    const uint32_t ix = static_cast<uint32_t>(static_cast<int32_t>(flx));
    const uint32_t iy = static_cast<uint32_t>(static_cast<int32_t>(fly));
    const uint32_t iz = static_cast<uint32_t>(static_cast<int32_t>(flz));
    c.frac[0][j] = fx;
    c.frac[1][j] = fy;
    c.frac[2][j] = fz;
    const float gx = 1.0f - fx, gy = 1.0f - fy, gz = 1.0f - fz;
    c.w[0][j] = gx * gy * gz;
    c.w[1][j] = fx * gy * gz;
    c.w[2][j] = gx * fy * gz;
    c.w[3][j] = fx * fy * gz;
    c.w[4][j] = gx * gy * fz;
    c.w[5][j] = fx * gy * fz;
    c.w[6][j] = gx * fy * fz;
    c.w[7][j] = fx * fy * fz;
    if constexpr (kHashed) {
      const uint32_t hy0 = iy * kPrimeY, hy1 = hy0 + kPrimeY, hz0 = iz * kPrimeZ, hz1 = hz0 + kPrimeZ;
      const uint32_t h00 = hy0 ^ hz0, h10 = hy1 ^ hz0, h01 = hy0 ^ hz1, h11 = hy1 ^ hz1;
      const uint32_t ix1 = ix + 1;
      c.row[0][j] = (ix ^ h00) & mask;
      c.row[1][j] = (ix1 ^ h00) & mask;
      c.row[2][j] = (ix ^ h10) & mask;
      c.row[3][j] = (ix1 ^ h10) & mask;
      c.row[4][j] = (ix ^ h01) & mask;
      c.row[5][j] = (ix1 ^ h01) & mask;
      c.row[6][j] = (ix ^ h11) & mask;
      c.row[7][j] = (ix1 ^ h11) & mask;
    } else {
      // A corner coordinate can reach res (x01 = 1 with frac(scale) ≥ 0.5): tiny-cuda-nn wraps such
      // rows modulo the level size; they stay below 2·size, so one conditional subtraction does it.
      const uint32_t b = ix + iy * res + iz * res2;
      const uint32_t r[8] = {b,        b + 1,        b + res,        b + res + 1,
                             b + res2, b + res2 + 1, b + res2 + res, b + res2 + res + 1};
      for (int k = 0; k < 8; ++k) c.row[k][j] = r[k] >= size ? r[k] - size : r[k];
    }
  }
}

#if defined(__AVX2__) && defined(__FMA__)
// The same for 8 points at a time with AVX2 (GCC does not vectorise the loop above by itself).
template <bool kHashed>
inline void compute_corners_avx2(const LevelParams& lv, const float* __restrict x, const float* __restrict y,
                                 const float* __restrict z, Corners& c) {
  const __m256 s = _mm256_set1_ps(lv.scale), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  for (int j = 0; j < kBatch; j += 8) {
    const __m256 px = _mm256_fmadd_ps(_mm256_loadu_ps(x + j), s, half);
    const __m256 py = _mm256_fmadd_ps(_mm256_loadu_ps(y + j), s, half);
    const __m256 pz = _mm256_fmadd_ps(_mm256_loadu_ps(z + j), s, half);
    const __m256 flx = _mm256_floor_ps(px), fly = _mm256_floor_ps(py), flz = _mm256_floor_ps(pz);
    const __m256 fx = _mm256_sub_ps(px, flx), fy = _mm256_sub_ps(py, fly), fz = _mm256_sub_ps(pz, flz);
    const __m256i ix = _mm256_cvttps_epi32(flx), iy = _mm256_cvttps_epi32(fly), iz = _mm256_cvttps_epi32(flz);
    _mm256_store_ps(&c.frac[0][j], fx);
    _mm256_store_ps(&c.frac[1][j], fy);
    _mm256_store_ps(&c.frac[2][j], fz);
    const __m256 gx = _mm256_sub_ps(one, fx), gy = _mm256_sub_ps(one, fy), gz = _mm256_sub_ps(one, fz);
    const __m256 g_xy = _mm256_mul_ps(gx, gy), f_xy = _mm256_mul_ps(fx, gy);
    const __m256 g_xfy = _mm256_mul_ps(gx, fy), f_xfy = _mm256_mul_ps(fx, fy);
    _mm256_store_ps(&c.w[0][j], _mm256_mul_ps(g_xy, gz));
    _mm256_store_ps(&c.w[1][j], _mm256_mul_ps(f_xy, gz));
    _mm256_store_ps(&c.w[2][j], _mm256_mul_ps(g_xfy, gz));
    _mm256_store_ps(&c.w[3][j], _mm256_mul_ps(f_xfy, gz));
    _mm256_store_ps(&c.w[4][j], _mm256_mul_ps(g_xy, fz));
    _mm256_store_ps(&c.w[5][j], _mm256_mul_ps(f_xy, fz));
    _mm256_store_ps(&c.w[6][j], _mm256_mul_ps(g_xfy, fz));
    _mm256_store_ps(&c.w[7][j], _mm256_mul_ps(f_xfy, fz));
    const __m256i ix1 = _mm256_add_epi32(ix, _mm256_set1_epi32(1));
    __m256i r[8];
    if constexpr (kHashed) {
      const __m256i py_ = _mm256_set1_epi32(static_cast<int>(kPrimeY)),
                    pz_ = _mm256_set1_epi32(static_cast<int>(kPrimeZ));
      const __m256i hy0 = _mm256_mullo_epi32(iy, py_), hy1 = _mm256_add_epi32(hy0, py_);
      const __m256i hz0 = _mm256_mullo_epi32(iz, pz_), hz1 = _mm256_add_epi32(hz0, pz_);
      const __m256i h[4] = {_mm256_xor_si256(hy0, hz0), _mm256_xor_si256(hy1, hz0),
                            _mm256_xor_si256(hy0, hz1), _mm256_xor_si256(hy1, hz1)};
      const __m256i mask = _mm256_set1_epi32(static_cast<int>(lv.mask));
      for (int k = 0; k < 4; ++k) {
        r[2 * k] = _mm256_and_si256(_mm256_xor_si256(ix, h[k]), mask);
        r[2 * k + 1] = _mm256_and_si256(_mm256_xor_si256(ix1, h[k]), mask);
      }
    } else {
      const __m256i res = _mm256_set1_epi32(static_cast<int>(lv.res)),
                    res2 = _mm256_set1_epi32(static_cast<int>(lv.res2));
      const __m256i b =
          _mm256_add_epi32(ix, _mm256_add_epi32(_mm256_mullo_epi32(iy, res), _mm256_mullo_epi32(iz, res2)));
      const __m256i by = _mm256_add_epi32(b, res), bz = _mm256_add_epi32(b, res2),
                    byz = _mm256_add_epi32(by, res2);
      const __m256i one_i = _mm256_set1_epi32(1);
      r[0] = b;
      r[1] = _mm256_add_epi32(b, one_i);
      r[2] = by;
      r[3] = _mm256_add_epi32(by, one_i);
      r[4] = bz;
      r[5] = _mm256_add_epi32(bz, one_i);
      r[6] = byz;
      r[7] = _mm256_add_epi32(byz, one_i);
      // Rows stay below 2·size < 2^31: signed compares are fine.
      const __m256i size = _mm256_set1_epi32(static_cast<int>(lv.size)),
                    size_m1 = _mm256_set1_epi32(static_cast<int>(lv.size) - 1);
      for (int k = 0; k < 8; ++k)
        r[k] = _mm256_sub_epi32(r[k], _mm256_and_si256(_mm256_cmpgt_epi32(r[k], size_m1), size));
    }
    for (int k = 0; k < 8; ++k) _mm256_store_si256(reinterpret_cast<__m256i*>(&c.row[k][j]), r[k]);
  }
}
#endif

inline void compute_corners(const LevelParams& lv, const float* x01, int64_t stride, int64_t i0, Corners& c) {
#if defined(__AVX2__) && defined(__FMA__)
  if (lv.hashed)
    compute_corners_avx2<true>(lv, x01 + i0, x01 + stride + i0, x01 + 2 * stride + i0, c);
  else
    compute_corners_avx2<false>(lv, x01 + i0, x01 + stride + i0, x01 + 2 * stride + i0, c);
#else
  if (lv.hashed)
    compute_corners<true>(lv, x01 + i0, x01 + stride + i0, x01 + 2 * stride + i0, c);
  else
    compute_corners<false>(lv, x01 + i0, x01 + stride + i0, x01 + 2 * stride + i0, c);
#endif
}

// Prefetches the rows of the even corners (the odd corner ix+1 shares the cache line 7 times in 8).
template <int F>
inline void prefetch_rows(const Corners& c, const float* tab, bool for_write) {
  for (int j = 0; j < kBatch; ++j)
    for (int k = 0; k < 8; k += 2) {
      const float* p = tab + static_cast<size_t>(c.row[k][j]) * F;
      if (for_write)
        __builtin_prefetch(p, 1, 3);
      else
        __builtin_prefetch(p, 0, 3);
    }
}

// Loads/stores F = 2 floats (one table row) as one 64-bit move.
#if defined(__AVX2__) && defined(__FMA__)
inline __m128 load2(const float* p) {
  return _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
inline void store2(float* p, __m128 v) {
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_castps_si128(v));
}
#endif

// Forward of point j of a batch: o[0..F) = Σ_k w_k · row_k.
template <int F>
inline void interpolate_point(const Corners& c, int j, const float* __restrict tab, float* __restrict o) {
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (F == 2) {
    __m128 acc = _mm_setzero_ps();
    for (int k = 0; k < 8; ++k)
      acc = _mm_fmadd_ps(_mm_set1_ps(c.w[k][j]), load2(tab + static_cast<size_t>(c.row[k][j]) * 2), acc);
    store2(o, acc);
    return;
  }
#endif
  float acc[F] = {};
  for (int k = 0; k < 8; ++k) {
    const float* r = tab + static_cast<size_t>(c.row[k][j]) * F;
    const float w = c.w[k][j];
    for (int f = 0; f < F; ++f) acc[f] += w * r[f];
  }
  for (int f = 0; f < F; ++f) o[f] = acc[f];
}

// Backward to the table of point j: row_k += w_k · g.
template <int F>
inline void scatter_point(const Corners& c, int j, const float* __restrict g, float* __restrict gtab) {
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (F == 2) {
    const __m128 gv = load2(g);
    for (int k = 0; k < 8; ++k) {
      float* r = gtab + static_cast<size_t>(c.row[k][j]) * 2;
      store2(r, _mm_fmadd_ps(_mm_set1_ps(c.w[k][j]), gv, load2(r)));
    }
    return;
  }
#endif
  for (int k = 0; k < 8; ++k) {
    float* r = gtab + static_cast<size_t>(c.row[k][j]) * F;
    const float w = c.w[k][j];
    for (int f = 0; f < F; ++f) r[f] += w * g[f];
  }
}

// Backward to x01 of point j on a level, added into d[0..3) (before the d x01/d x factor):
// with s_k = <g, row_k>, d out/d frac_x = Σ_k s_k · (±1) · w_y · w_z (+ for the corners at ix + 1), etc.
template <int F>
inline void grad_x_point(const Corners& c, int j, const float* __restrict g, const float* __restrict tab,
                         float scale, float* __restrict d) {
  float s[8];
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (F == 2) {
    // Two rows per register, times (g0 g1 g0 g1), pairwise sums → (s0 s1 s2 s3), (s4 s5 s6 s7).
    const __m128 gv = load2(g), gg = _mm_movelh_ps(gv, gv);
    auto pair = [&](int k) {
      return _mm_mul_ps(_mm_movelh_ps(load2(tab + static_cast<size_t>(c.row[k][j]) * 2),
                                      load2(tab + static_cast<size_t>(c.row[k + 1][j]) * 2)),
                        gg);
    };
    _mm_storeu_ps(s, _mm_hadd_ps(pair(0), pair(2)));
    _mm_storeu_ps(s + 4, _mm_hadd_ps(pair(4), pair(6)));
  } else
#endif
  {
    for (int k = 0; k < 8; ++k) {
      const float* r = tab + static_cast<size_t>(c.row[k][j]) * F;
      float a = 0.0f;
      for (int f = 0; f < F; ++f) a += g[f] * r[f];
      s[k] = a;
    }
  }
  const float fx = c.frac[0][j], fy = c.frac[1][j], fz = c.frac[2][j];
  const float gx = 1.0f - fx, gy = 1.0f - fy, gz = 1.0f - fz;
  const float dfx =
      (s[1] - s[0]) * gy * gz + (s[3] - s[2]) * fy * gz + (s[5] - s[4]) * gy * fz + (s[7] - s[6]) * fy * fz;
  const float dfy =
      (s[2] - s[0]) * gx * gz + (s[3] - s[1]) * fx * gz + (s[6] - s[4]) * gx * fz + (s[7] - s[5]) * fx * fz;
  const float dfz =
      (s[4] - s[0]) * gx * gy + (s[5] - s[1]) * fx * gy + (s[6] - s[2]) * gx * fy + (s[7] - s[3]) * fx * fy;
  d[0] += scale * dfx;
  d[1] += scale * dfy;
  d[2] += scale * dfz;
}

// Streams a level's table slice into the cache with sequential prefetches before the random accesses
// start: the tables (46 MB in all) don't stay in L3 from one pass to the next, and fetching the slice
// in address order is much faster than taking its misses in random order (~30% of the backward).
inline void warm(const float* p, size_t floats, bool for_write) {
  const char* c = reinterpret_cast<const char*>(p);
  const size_t bytes = floats * sizeof(float);
  for (size_t o = 0; o < bytes; o += 64) {
    if (for_write)
      __builtin_prefetch(c + o, 1, 2);
    else
      __builtin_prefetch(c + o, 0, 2);
  }
}

// x01 in SoA layout [3][npad] (padded with zeros to whole batches); also returns the d x01/d x factor
// (1/(2·bound) inside the cube, 0 where clamped) in `dscale` when it is non-null.
void compute_x01(const float* x, int64_t n, int64_t npad, double bound, float* x01, float* dscale) {
  const float b = static_cast<float>(bound), two_b = static_cast<float>(2 * bound);
  const float inv = static_cast<float>(1.0 / (2 * bound));
#pragma omp for schedule(static)
  for (int64_t i = 0; i < npad; ++i) {
    for (int d = 0; d < 3; ++d) {
      float v = 0.0f, g = 0.0f;
      if (i < n) {
        const float u = (x[i * 3 + d] + b) / two_b;
        // NaN → 0 (the comparisons fail), so that a NaN coordinate can't index out of the table.
        v = u > 0.0f ? (u < 1.0f ? u : 1.0f) : 0.0f;
        g = (u >= 0.0f && u <= 1.0f) ? inv : 0.0f;
      }
      x01[d * npad + i] = v;
      if (dscale) dscale[i * 3 + d] = g;
    }
  }
}

// Thread count for a kernel: nested calls (inside at::parallel_for) run single-threaded.
int kernel_threads() { return at::in_parallel_region() ? 1 : std::max(1, at::get_num_threads()); }

// [N, L·F] ↔ [L, npad, F] (level-major: one level's values contiguous), for rows [i0, i1). Moves whole
// F-float rows (8 bytes at F = 2).
template <int F>
struct alignas(4) Row {
  float v[F];
};
template <int F>
inline void rows_to_level_major(const float* rows, int num_levels, int64_t npad, int64_t i0, int64_t i1,
                                float* lm) {
  const Row<F>* src = reinterpret_cast<const Row<F>*>(rows);
  Row<F>* dst = reinterpret_cast<Row<F>*>(lm);
  // Blocks of 8 points: each level's destination gets whole cache lines (at F = 2).
  for (int64_t ib = i0; ib < i1; ib += 8) {
    const int64_t ie = std::min(ib + 8, i1);
    for (int l = 0; l < num_levels; ++l)
      for (int64_t i = ib; i < ie; ++i) dst[l * npad + i] = src[i * num_levels + l];
  }
}
template <int F>
inline void level_major_to_rows(const float* lm, int num_levels, int64_t npad, int64_t i0, int64_t i1,
                                float* rows) {
  const Row<F>* src = reinterpret_cast<const Row<F>*>(lm);
  Row<F>* dst = reinterpret_cast<Row<F>*>(rows);
  for (int64_t ib = i0; ib < i1; ib += 8) {
    const int64_t ie = std::min(ib + 8, i1);
    for (int l = 0; l < num_levels; ++l)
      for (int64_t i = ib; i < ie; ++i) dst[i * num_levels + l] = src[l * npad + i];
  }
}

// Scratch buffers kept by the calling thread between calls: a fresh multi-megabyte buffer costs a page
// fault per 4 KB (several ms per call for the 16 MB level-major copy). Slots: 0 x01, 1 level-major copy,
// 2 d x01/d x, 3 d/dx per thread. Uninitialised.
float* scratch(int slot, size_t count) {
  thread_local std::vector<float> buffers[4];
  auto& b = buffers[slot];
  if (b.size() < count) {
    b = std::vector<float>();  // free first: no copy, lower peak
    b.resize(count);
  }
  return b.data();
}

template <int F>
void forward_kernel(const float* x, int64_t n, const float* table, const HashGridLayout& layout, float* out) {
  const auto levels = level_params(layout);
  const int num_levels = static_cast<int>(levels.size());
  const int64_t nb = (n + kBatch - 1) / kBatch, npad = nb * kBatch;
  float* x01 = scratch(0, 3 * npad);
  // Each level writes its features contiguously here; one transpose at the end gives [N, L·F]. (Writing
  // 8 bytes into every 128-byte output row per level instead costs ~16 passes over the output.)
  float* level_major = scratch(1, static_cast<size_t>(num_levels) * npad * F);
  const int nt = kernel_threads();
  // Tasks = levels × point chunks (one chunk per level unless there are more threads than levels).
  const int chunks =
      static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((2 * nt + num_levels - 1) / num_levels, nb)));
  const int tasks = num_levels * chunks;
#pragma omp parallel num_threads(nt)
  {
    compute_x01(x, n, npad, layout.bound, x01, nullptr);
#pragma omp for schedule(dynamic, 1)
    for (int t = 0; t < tasks; ++t) {
      const int l = num_levels - 1 - t / chunks;  // finest (most expensive) levels first
      const int chunk = t % chunks;
      const LevelParams& lv = levels[l];
      const float* tab = table + lv.offset * F;
      float* o = level_major + l * npad * F;
      {  // each chunk warms its share of the table
        const size_t total = static_cast<size_t>(lv.size) * F, w0 = total * chunk / chunks;
        warm(tab + w0, total * (chunk + 1) / chunks - w0, false);
      }
      const int64_t b0 = nb * chunk / chunks, b1 = nb * (chunk + 1) / chunks;
      Corners corners[2];
      compute_corners(lv, x01, npad, b0 * kBatch, corners[b0 & 1]);
      prefetch_rows<F>(corners[b0 & 1], tab, false);
      for (int64_t b = b0; b < b1; ++b) {
        const Corners& c = corners[b & 1];
        if (b + 1 < b1) {
          compute_corners(lv, x01, npad, (b + 1) * kBatch, corners[(b + 1) & 1]);
          prefetch_rows<F>(corners[(b + 1) & 1], tab, false);
        }
        float* ob = o + b * kBatch * F;
        for (int j = 0; j < kBatch; ++j) interpolate_point<F>(c, j, tab, ob + j * F);
      }
    }
#pragma omp for schedule(static)
    for (int64_t b = 0; b < nb; ++b)
      level_major_to_rows<F>(level_major, num_levels, npad, b * kBatch, std::min(n, (b + 1) * kBatch), out);
  }
}

template <int F>
void backward_kernel(const float* x, int64_t n, const float* table, const HashGridLayout& layout,
                     const float* grad_out, float* grad_table, bool overwrite, float* grad_x) {
  const auto levels = level_params(layout);
  const int num_levels = static_cast<int>(levels.size());
  const int64_t nb = (n + kBatch - 1) / kBatch, npad = nb * kBatch;
  float* x01 = scratch(0, 3 * npad);
  float* dscale = grad_x ? scratch(2, 3 * npad) : nullptr;
  // grad_out level-major; the padded points' rows stay zero, so that they add nothing.
  float* go_level_major = scratch(1, static_cast<size_t>(num_levels) * npad * F);
  for (int l = 0; l < num_levels; ++l)
    std::fill(go_level_major + (l * npad + n) * F, go_level_major + (l + 1) * npad * F, 0.0f);
  // A level belongs to one thread (no races on the table gradient), so at most L threads help.
  const int nt = std::min(kernel_threads(), num_levels);
  // d/dx accumulates over levels that different threads own: one buffer per thread, summed at the end.
  float* dx_buffers = grad_x ? scratch(3, static_cast<size_t>(nt) * 3 * npad) : nullptr;
#pragma omp parallel num_threads(nt)
  {
    compute_x01(x, n, npad, layout.bound, x01, grad_x ? dscale : nullptr);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < nb; ++b)
      rows_to_level_major<F>(grad_out, num_levels, npad, b * kBatch, std::min(n, (b + 1) * kBatch),
                             go_level_major);
    float* dx = grad_x ? dx_buffers + static_cast<size_t>(omp_get_thread_num()) * 3 * npad : nullptr;
    if (dx) std::fill(dx, dx + 3 * npad, 0.0f);
#pragma omp for schedule(dynamic, 1)
    for (int t = 0; t < num_levels; ++t) {
      const int l = num_levels - 1 - t;
      const LevelParams& lv = levels[l];
      const float* tab = table + lv.offset * F;
      float* gtab = grad_table ? grad_table + lv.offset * F : nullptr;
      if (gtab && overwrite) std::memset(gtab, 0, sizeof(float) * F * lv.size);
      if (gtab && !overwrite) warm(gtab, static_cast<size_t>(lv.size) * F, true);
      if (dx) warm(tab, static_cast<size_t>(lv.size) * F, false);
      const float* go = go_level_major + l * npad * F;
      Corners corners[2];
      auto prefetch = [&](const Corners& c) {
        if (gtab) prefetch_rows<F>(c, gtab, true);
        if (dx) prefetch_rows<F>(c, tab, false);
      };
      compute_corners(lv, x01, npad, 0, corners[0]);
      prefetch(corners[0]);
      for (int64_t b = 0; b < nb; ++b) {
        const Corners& c = corners[b & 1];
        if (b + 1 < nb) {
          compute_corners(lv, x01, npad, (b + 1) * kBatch, corners[(b + 1) & 1]);
          prefetch(corners[(b + 1) & 1]);
        }
        const int64_t i0 = b * kBatch;
        // Padded points have a zero gradient: they add nothing.
        for (int j = 0; j < kBatch; ++j) {
          const float* g = go + (i0 + j) * F;
          if (gtab) scatter_point<F>(c, j, g, gtab);
          if (dx) grad_x_point<F>(c, j, g, tab, lv.scale, dx + (i0 + j) * 3);
        }
      }
    }
    if (grad_x) {
      const int team = omp_get_num_threads();  // the buffers of the threads that ran (≤ nt)
#pragma omp for schedule(static)
      for (int64_t i = 0; i < 3 * n; ++i) {
        float acc = 0.0f;
        for (int t = 0; t < team; ++t) acc += dx_buffers[static_cast<size_t>(t) * 3 * npad + i];
        grad_x[i] = acc * dscale[i];
      }
    }
  }
}

template <template <int> class Op, class... Args>
void dispatch_features(int f, Args&&... args) {
  switch (f) {
    case 1:
      return Op<1>::run(std::forward<Args>(args)...);
    case 2:
      return Op<2>::run(std::forward<Args>(args)...);
    case 3:
      return Op<3>::run(std::forward<Args>(args)...);
    case 4:
      return Op<4>::run(std::forward<Args>(args)...);
    case 5:
      return Op<5>::run(std::forward<Args>(args)...);
    case 6:
      return Op<6>::run(std::forward<Args>(args)...);
    case 7:
      return Op<7>::run(std::forward<Args>(args)...);
    case 8:
      return Op<8>::run(std::forward<Args>(args)...);
  }
  TORCH_CHECK(false, "hash grid: features_per_level must be in 1..8, got ", f);
}

template <int F>
struct ForwardOp {
  template <class... A>
  static void run(A&&... a) {
    forward_kernel<F>(std::forward<A>(a)...);
  }
};
template <int F>
struct BackwardOp {
  template <class... A>
  static void run(A&&... a) {
    backward_kernel<F>(std::forward<A>(a)...);
  }
};

void check_kernel_inputs(const at::Tensor& x, const at::Tensor& table, const HashGridLayout& layout) {
  TORCH_CHECK(
      x.dim() == 2 && x.size(1) == 3 && x.scalar_type() == at::kFloat && x.is_contiguous() && x.is_cpu(),
      "hash grid kernel: x must be a contiguous float32 CPU tensor [N,3]");
  TORCH_CHECK(table.dim() == 2 && table.size(0) == layout.total_entries && table.size(1) == layout.features &&
                  table.scalar_type() == at::kFloat && table.is_contiguous() && table.is_cpu(),
              "hash grid kernel: table must be a contiguous float32 CPU tensor [", layout.total_entries, ",",
              layout.features, "]");
}

}  // namespace

at::Tensor hash_grid_forward_cpu(const at::Tensor& x, const at::Tensor& table, const HashGridLayout& layout) {
  check_kernel_inputs(x, table, layout);
  const int64_t n = x.size(0);
  auto out = at::empty({n, layout.output_dim()}, x.options());
  if (n == 0) return out;
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for (int64_t i0 = 0; i0 < n; i0 += kMaxPoints) {
    const int64_t m = std::min(kMaxPoints, n - i0);
    dispatch_features<ForwardOp>(layout.features, xp + i0 * 3, m, table.data_ptr<float>(), layout,
                                 op + i0 * layout.output_dim());
  }
  return out;
}

at::Tensor hash_grid_backward_cpu(const at::Tensor& x, const at::Tensor& table, const HashGridLayout& layout,
                                  const at::Tensor& grad_out, const at::Tensor& grad_table, bool need_grad_x,
                                  bool overwrite_grad_table) {
  check_kernel_inputs(x, table, layout);
  const int64_t n = x.size(0);
  TORCH_CHECK(grad_out.dim() == 2 && grad_out.size(0) == n && grad_out.size(1) == layout.output_dim() &&
                  grad_out.scalar_type() == at::kFloat && grad_out.is_contiguous(),
              "hash grid kernel: grad_out must be a contiguous float32 [N, L·F]");
  if (grad_table.defined())
    TORCH_CHECK(grad_table.sizes() == table.sizes() && grad_table.scalar_type() == at::kFloat &&
                    grad_table.is_contiguous(),
                "hash grid kernel: grad_table must be a contiguous float32 tensor shaped like the table");
  at::Tensor grad_x = need_grad_x ? at::empty({n, 3}, x.options()) : at::Tensor();
  if (n == 0) {
    if (grad_table.defined() && overwrite_grad_table) grad_table.zero_();
    return grad_x;
  }
  const float* xp = x.data_ptr<float>();
  const float* gop = grad_out.data_ptr<float>();
  float* gtp = grad_table.defined() ? grad_table.data_ptr<float>() : nullptr;
  float* gxp = need_grad_x ? grad_x.data_ptr<float>() : nullptr;
  for (int64_t i0 = 0; i0 < n; i0 += kMaxPoints) {
    const int64_t m = std::min(kMaxPoints, n - i0);
    dispatch_features<BackwardOp>(layout.features, xp + i0 * 3, m, table.data_ptr<float>(), layout,
                                  gop + i0 * layout.output_dim(), gtp, overwrite_grad_table && i0 == 0,
                                  gxp ? gxp + i0 * 3 : nullptr);
  }
  return grad_x;
}

}  // namespace nd
