// Fused MLP kernels on the CPU, and the autograd Function around them.
//
// Each thread runs whole tiles of T = kFusedMLPTile points through every layer, so that a tile's
// activations stay in L1/L2 and never make the round trip through DRAM that [N, 64] matmuls make.
// Inside a tile the activations are feature-major, A^T: [width, T], so the SIMD lanes run over points
// and any layer width (3 outputs, 15 inputs) fills whole vectors. All matmuls are one register-blocked
// GEMM (broadcast one operand, stream rows of the other):
//   C[m, 0:n] (op)= bias[m] + sum_k A(m, k) · B[k, 0:n],   A(m, k) = a[m * a_rs + k * a_cs],
// with B rows contiguous and n a multiple of 8:
//   forward      A_{l+1}^T = relu(W_l · A_l^T + b_l)         A = W_l,           B = A_l^T
//   hidden grad  G_l^T = (W_l^T · G_{l+1}^T) ⊙ [A_l^T > 0]     A = W_l^T,         B = G_{l+1}^T
//   weight grad  dW_l += G_{l+1}^T · A_l                      A = G_{l+1}^T,     B = A_l point-major
//   input grad   dX = G_1 · W_0 (point-major, into dx)        A = G_1 (strided), B = W_0 (padded)
// The weight-gradient GEMM needs the tile's activations point-major: an 8×8 SIMD transpose. Backward
// recomputes the tile's hidden activations by default (MLPActivations). Weight gradients are summed per
// thread over a fixed partition of the tiles and reduced in order: deterministic for a thread count.
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "field/fused_mlp.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define ND_MLP_AVX2 1
#endif

namespace nd {
namespace {

constexpr int T = kFusedMLPTile;
static_assert(T % 16 == 0, "the tile must be a multiple of 16 points");

// Register block of the GEMM micro-kernel: kMR rows × kNV vectors of 8 columns, kMR·kNV accumulators.
// AVX-512VL gives 32 vector registers even to 256-bit code (24 accumulators: ~15% faster than 12).
#if defined(__AVX512VL__)
constexpr int kMR = 6, kNV = 4;
#elif defined(ND_MLP_AVX2)
constexpr int kMR = 6, kNV = 2;
#else
constexpr int kMR = 3, kNV = 2;  // 16 SSE/NEON registers
#endif

// ---- 8-float vectors: AVX2/FMA intrinsics, or GCC/Clang 4-float vector extensions (SSE, NEON) ----------
#ifdef ND_MLP_AVX2
using Vec = __m256;
inline Vec vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec vbroadcast(const float* p) { return _mm256_broadcast_ss(p); }
inline Vec vzero() { return _mm256_setzero_ps(); }
inline Vec vfmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec vadd(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline Vec vrelu(Vec a) { return _mm256_max_ps(_mm256_setzero_ps(), a); }  // NaN stays NaN, as in at::relu
// a where m > 0, else 0 (the ReLU derivative from the post-ReLU activation m).
inline Vec vmask(Vec a, Vec m) { return _mm256_and_ps(a, _mm256_cmp_ps(m, _mm256_setzero_ps(), _CMP_GT_OQ)); }
inline float vsum(Vec v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#else
// Portable: two 4-float GCC/Clang vectors (SSE, NEON) per 8-float Vec.
typedef float V4 __attribute__((vector_size(16)));
struct Vec {
  V4 lo, hi;
};
inline Vec vload(const float* p) {
  Vec r;
  std::memcpy(&r.lo, p, 16);
  std::memcpy(&r.hi, p + 4, 16);
  return r;
}
inline void vstore(float* p, Vec a) {
  std::memcpy(p, &a.lo, 16);
  std::memcpy(p + 4, &a.hi, 16);
}
inline Vec vbroadcast(const float* p) {
  const V4 s = V4{} + *p;
  return {s, s};
}
inline Vec vzero() { return {V4{}, V4{}}; }
inline Vec vfmadd(Vec a, Vec b, Vec c) { return {a.lo * b.lo + c.lo, a.hi * b.hi + c.hi}; }
inline Vec vadd(Vec a, Vec b) { return {a.lo + b.lo, a.hi + b.hi}; }
inline Vec vrelu(Vec a) { return {a.lo < 0.f ? V4{} : a.lo, a.hi < 0.f ? V4{} : a.hi}; }
inline Vec vmask(Vec a, Vec m) { return {m.lo > 0.f ? a.lo : V4{}, m.hi > 0.f ? a.hi : V4{}}; }
inline float vsum(Vec a) {
  const V4 s = a.lo + a.hi;
  return (s[0] + s[1]) + (s[2] + s[3]);
}
#endif

// ---- the GEMM ---------------------------------------------------------------------------------------
enum class Epi {
  kStore,       // C = acc
  kRelu,        // C = max(acc, 0)
  kMask,        // C = acc where mask > 0 else 0 (mask: same layout as C)
  kAccumulate,  // C += acc
};

struct GemmArgs {
  int kc;  // contraction length
  const float* a;
  ptrdiff_t a_rs, a_cs;  // A(m, k) = a[m * a_rs + k * a_cs]
  const float* b;
  ptrdiff_t ldb;  // B[k, j] = b[k * ldb + j]
  float* c;
  ptrdiff_t ldc;      // C[m, j] = c[m * ldc + j]
  const float* bias;  // [m] or nullptr
  const float* mask;  // kMask: mask[m * ldc + j]
};

// Rows [0, MR) × columns [0, 8·NV) of C. acc lives in registers (MR·NV ≤ 12 for AVX2's 16 registers).
template <int MR, int NV, Epi E>
inline void micro_kernel(const GemmArgs& g) {
  // Locals and early unrolling let GCC keep acc in registers (otherwise it spills it every iteration).
  const int kc = g.kc;
  const ptrdiff_t a_rs = g.a_rs, a_cs = g.a_cs, ldb = g.ldb, ldc = g.ldc;
  const float* a = g.a;
  const float* b = g.b;
  float* const c = g.c;
  Vec acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      if constexpr (E == Epi::kAccumulate)
        acc[r][v] = vload(c + r * ldc + 8 * v);
      else
        acc[r][v] = g.bias ? vbroadcast(g.bias + r) : vzero();
    }
  for (int k = 0; k < kc; ++k, a += a_cs, b += ldb) {
    Vec bv[NV];
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) bv[v] = vload(b + 8 * v);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const Vec av = vbroadcast(a + r * a_rs);
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[r][v] = vfmadd(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      float* cp = c + r * ldc + 8 * v;
      if constexpr (E == Epi::kRelu)
        vstore(cp, vrelu(acc[r][v]));
      else if constexpr (E == Epi::kMask)
        vstore(cp, vmask(acc[r][v], vload(g.mask + r * ldc + 8 * v)));
      else
        vstore(cp, acc[r][v]);
    }
}

// The last `rows` (< kMR) rows of a column panel.
template <int R, int NV, Epi E>
inline void micro_rows(int rows, const GemmArgs& g) {
  if constexpr (R >= 1) {
    if (rows == R)
      micro_kernel<R, NV, E>(g);
    else
      micro_rows<R - 1, NV, E>(rows, g);
  }
}

// All m rows of one column panel of 8·NV columns.
template <int NV, Epi E>
void gemm_panel(int m, GemmArgs g) {
  int i = 0;
  for (; i + kMR <= m; i += kMR) {
    micro_kernel<kMR, NV, E>(g);
    g.a += kMR * g.a_rs;
    g.c += kMR * g.ldc;
    if (g.bias) g.bias += kMR;
    if (g.mask) g.mask += kMR * g.ldc;
  }
  if (i < m) micro_rows<kMR - 1, NV, E>(m - i, g);
}

// The last `nv` (< kNV) vectors of columns.
template <int NV, Epi E>
inline void gemm_tail(int nv, int m, const GemmArgs& g) {
  if constexpr (NV >= 1) {
    if (nv == NV)
      gemm_panel<NV, E>(m, g);
    else
      gemm_tail<NV - 1, E>(nv, m, g);
  }
}

// C[m, n] (op)= bias + A · B, n a multiple of 8. Column panels outside, rows inside, so a panel of B
// (kc × 8·kNV) stays in L1 while all rows of A stream past it.
template <Epi E>
void gemm(int m, int n, GemmArgs g) {
  auto at_column = [&](int j) {
    GemmArgs p = g;
    p.b += j;
    p.c += j;
    if (p.mask) p.mask += j;
    return p;
  };
  int j = 0;
  for (; j + 8 * kNV <= n; j += 8 * kNV) gemm_panel<kNV, E>(m, at_column(j));
  if (j < n) gemm_tail<kNV - 1, E>((n - j) / 8, m, at_column(j));
}

// ---- transposes -------------------------------------------------------------------------------------
#ifdef ND_MLP_AVX2
inline void transpose8x8(const float* s, ptrdiff_t lds, float* d, ptrdiff_t ldd) {
  __m256 r0 = _mm256_loadu_ps(s + 0 * lds), r1 = _mm256_loadu_ps(s + 1 * lds);
  __m256 r2 = _mm256_loadu_ps(s + 2 * lds), r3 = _mm256_loadu_ps(s + 3 * lds);
  __m256 r4 = _mm256_loadu_ps(s + 4 * lds), r5 = _mm256_loadu_ps(s + 5 * lds);
  __m256 r6 = _mm256_loadu_ps(s + 6 * lds), r7 = _mm256_loadu_ps(s + 7 * lds);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  _mm256_storeu_ps(d + 0 * ldd, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(d + 1 * ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}
#endif

// dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols.
void transpose(const float* src, ptrdiff_t lds, int rows, int cols, float* dst, ptrdiff_t ldd) {
  int r = 0;
#ifdef ND_MLP_AVX2
  for (; r + 8 <= rows; r += 8) {
    int c = 0;
    for (; c + 8 <= cols; c += 8) transpose8x8(src + r * lds + c, lds, dst + c * ldd + r, ldd);
    for (; c < cols; ++c)
      for (int i = 0; i < 8; ++i) dst[c * ldd + r + i] = src[(r + i) * lds + c];
  }
#endif
  for (; r < rows; ++r)
    for (int c = 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
}

// Zeroes columns [c0, c1) of rows [0, rows) of a row-major buffer.
inline void zero_columns(float* p, ptrdiff_t ld, int rows, int c0, int c1) {
  if (c0 >= c1) return;
  for (int r = 0; r < rows; ++r) std::memset(p + r * ld + c0, 0, sizeof(float) * (c1 - c0));
}

// dst[r * ldd + c] = src[r * lds + c] for r < rows, c < cols, and 0 for cols <= c < pad8(cols).
void copy_rows_padded(const float* src, ptrdiff_t lds, int rows, int cols, float* dst, ptrdiff_t ldd) {
#ifdef ND_MLP_AVX2
  const int full = cols / 8 * 8, rest = cols - full;
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int r = 0; r < rows; ++r) {
    const float* s = src + r * lds;
    float* d = dst + r * ldd;
    for (int c = 0; c < full; c += 8) _mm256_storeu_ps(d + c, _mm256_loadu_ps(s + c));
    if (rest) _mm256_storeu_ps(d + full, _mm256_maskload_ps(s + full, mask));  // never reads past the row
  }
#else
  const int padded = (cols + 7) / 8 * 8;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < padded; ++c) dst[r * ldd + c] = c < cols ? src[r * lds + c] : 0.f;
#endif
}

// dst[r * cols + c] = src[r * lds + c] for r < rows, c < cols: rows packed back to back in dst.
void copy_rows_packed(const float* src, ptrdiff_t lds, int rows, int cols, float* dst) {
  int r = 0;
#ifdef ND_MLP_AVX2
  // Each row's last vector spills into the following rows, which are written afterwards; the rows
  // whose spill would pass dst[rows * cols] are copied element-wise (maskstore is slow on AMD).
  const int64_t spill_end = static_cast<int64_t>(rows) * cols - (cols + 7) / 8 * 8;
  for (; static_cast<int64_t>(r) * cols <= spill_end; ++r) {
    const float* s = src + r * lds;
    float* d = dst + r * cols;
    for (int c = 0; c < cols; c += 8) _mm256_storeu_ps(d + c, _mm256_loadu_ps(s + c));
  }
#endif
  for (; r < rows; ++r)
    for (int c = 0; c < cols; ++c) dst[r * cols + c] = src[r * lds + c];
}

// ---- the network and its per-thread scratch ------------------------------------------------------------
inline int pad8(int n) { return (n + 7) / 8 * 8; }
inline int64_t pad16(int64_t n) { return (n + 15) / 16 * 16; }

struct Net {
  int layers = 0;
  std::vector<int> in, out, in_pad;    // per layer
  std::vector<const float*> w, b;      // per layer; b empty without bias
  std::vector<int64_t> hidden_offset;  // per layer l >= 1: offset of A_l^T in a tile's [hidden_sum, T]
  int64_t hidden_sum = 0;              // sum of the hidden widths
  int max_width = 0, max_in_pad = 0;
  int in0() const { return in[0]; }
  int out_last() const { return out[layers - 1]; }
};

// weights/biases must already be contiguous float32 (kept alive by the caller).
Net make_net(const std::vector<at::Tensor>& weights, const std::vector<at::Tensor>& biases) {
  Net net;
  net.layers = static_cast<int>(weights.size());
  net.hidden_offset.assign(net.layers, 0);
  for (int l = 0; l < net.layers; ++l) {
    net.out.push_back(static_cast<int>(weights[l].size(0)));
    net.in.push_back(static_cast<int>(weights[l].size(1)));
    net.in_pad.push_back(pad8(net.in.back()));
    net.w.push_back(weights[l].data_ptr<float>());
    if (!biases.empty()) net.b.push_back(biases[l].data_ptr<float>());
    net.max_width = std::max({net.max_width, net.in.back(), net.out.back()});
    net.max_in_pad = std::max(net.max_in_pad, net.in_pad.back());
    if (l >= 1) {
      net.hidden_offset[l] = net.hidden_sum * T;
      net.hidden_sum += net.in[l];
    }
  }
  return net;
}

// A 64-byte aligned float buffer cut into 64-byte aligned pieces.
class Scratch {
 public:
  explicit Scratch(int64_t floats)
      : data_(static_cast<float*>(
            std::aligned_alloc(64, sizeof(float) * pad16(std::max<int64_t>(floats, 16))))) {
    TORCH_CHECK(data_, "fused_mlp: out of memory");
  }
  float* take(int64_t floats) {
    float* p = data_.get() + used_;
    used_ += pad16(floats);
    return p;
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  int64_t used_ = 0;
};

// X^T [in0, T] ← rows [t0, t0 + nt) of x [N, in0], zero beyond nt (padded points stay finite).
void load_x_tile(const Net& net, const float* x, int64_t t0, int nt, float* xt) {
  transpose(x + t0 * net.in0(), net.in0(), nt, net.in0(), xt, T);
  zero_columns(xt, T, net.in0(), nt, T);
}

// Runs one tile through the network: hidden [hidden_sum, T] receives the post-ReLU activations,
// yt [out_last, T] the output (nullptr: hidden layers only).
void tile_forward(const Net& net, const float* xt, float* hidden, float* yt) {
  const float* in = xt;
  for (int l = 0; l < net.layers; ++l) {
    bool last = l + 1 == net.layers;
    float* dst = last ? yt : hidden + net.hidden_offset[l + 1];
    if (!dst) break;
    GemmArgs g{net.in[l], net.w[l], net.in[l], 1, in, T, dst, T, net.b.empty() ? nullptr : net.b[l], nullptr};
    if (last)
      gemm<Epi::kStore>(net.out[l], T, g);
    else
      gemm<Epi::kRelu>(net.out[l], T, g);
    in = dst;
  }
}

void check_cpu_float(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat, "fused_mlp: ", what,
              " must be a float32 CPU tensor, got ", t.scalar_type(), " on ", t.device());
}

std::vector<at::Tensor> contiguous_all(const std::vector<at::Tensor>& ts) {
  std::vector<at::Tensor> r;
  for (const at::Tensor& t : ts) r.push_back(t.contiguous());
  return r;
}

}  // namespace

// ---- forward ------------------------------------------------------------------------------------------
FusedMLPForward fused_mlp_forward_cpu(const at::Tensor& x_in, const std::vector<at::Tensor>& weights_in,
                                      const std::vector<at::Tensor>& biases_in, bool save_activations) {
  check_mlp_arguments(x_in, weights_in, biases_in);
  check_cpu_float(x_in, "x");
  const at::Tensor x = x_in.contiguous();
  const std::vector<at::Tensor> weights = contiguous_all(weights_in), biases = contiguous_all(biases_in);
  const Net net = make_net(weights, biases);
  const int64_t n = x.size(0), tiles = (n + T - 1) / T;

  FusedMLPForward result;
  result.y = at::empty({n, net.out_last()}, x.options());
  if (save_activations) result.activations = at::empty({tiles, net.hidden_sum, T}, x.options());
  if (n == 0) return result;

  const float* xp = x.data_ptr<float>();
  float* yp = result.y.data_ptr<float>();
  float* ap = save_activations ? result.activations.data_ptr<float>() : nullptr;
  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    Scratch scratch(net.in0() * T + net.hidden_sum * T + net.out_last() * T + 64);
    float* xt = scratch.take(net.in0() * T);
    float* hidden_scratch = scratch.take(net.hidden_sum * T);
    float* yt = scratch.take(net.out_last() * T);
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t t0 = tile * T;
      const int nt = static_cast<int>(std::min<int64_t>(T, n - t0));
      load_x_tile(net, xp, t0, nt, xt);
      tile_forward(net, xt, ap ? ap + tile * net.hidden_sum * T : hidden_scratch, yt);
      transpose(yt, T, net.out_last(), nt, yp + t0 * net.out_last(), net.out_last());
    }
  });
  return result;
}

// ---- backward -----------------------------------------------------------------------------------------
FusedMLPGrads fused_mlp_backward_cpu(const at::Tensor& grad_y_in, const at::Tensor& x_in,
                                     const std::vector<at::Tensor>& weights_in,
                                     const std::vector<at::Tensor>& biases_in, const at::Tensor& activations,
                                     bool need_grad_x, bool need_grad_params) {
  check_mlp_arguments(x_in, weights_in, biases_in);
  check_cpu_float(x_in, "x");
  check_cpu_float(grad_y_in, "grad_y");
  const at::Tensor x = x_in.contiguous(), grad_y = grad_y_in.contiguous();
  const std::vector<at::Tensor> weights = contiguous_all(weights_in), biases = contiguous_all(biases_in);
  const Net net = make_net(weights, biases);
  const int L = net.layers;
  const int64_t n = x.size(0), tiles = (n + T - 1) / T;
  TORCH_CHECK(grad_y.dim() == 2 && grad_y.size(0) == n && grad_y.size(1) == net.out_last(),
              "fused_mlp: grad_y must be [", n, ", ", net.out_last(), "], got ", grad_y.sizes());
  const bool saved = activations.defined();
  if (saved) {
    check_cpu_float(activations, "activations");
    TORCH_CHECK(activations.is_contiguous() && activations.dim() == 3 && activations.size(0) == tiles &&
                    activations.size(1) == net.hidden_sum && activations.size(2) == T,
                "fused_mlp: activations must be [", tiles, ", ", net.hidden_sum, ", ", T, "], got ",
                activations.sizes());
  }
  const bool bias = !net.b.empty();

  // Per-thread accumulator layout: for each layer dW [out, in_pad] then db [out], each 16-float aligned.
  std::vector<int64_t> dw_offset(L), db_offset(L);
  int64_t acc_size = 0;
  for (int l = 0; l < L; ++l) {
    dw_offset[l] = acc_size;
    acc_size += pad16(static_cast<int64_t>(net.out[l]) * net.in_pad[l]);
    db_offset[l] = acc_size;
    acc_size += bias ? pad16(net.out[l]) : 0;
  }

  FusedMLPGrads grads;
  if (need_grad_x) grads.grad_x = at::empty({n, net.in0()}, x.options());
  // A fixed partition of the tiles into one chunk per thread, each with its own accumulators.
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), tiles));
  at::Tensor acc = need_grad_params ? at::zeros({chunks, acc_size}, x.options()) : at::Tensor();

  if (n > 0 && (need_grad_x || need_grad_params)) {
    const float* xp = x.data_ptr<float>();
    const float* gyp = grad_y.data_ptr<float>();
    const float* ap = saved ? activations.data_ptr<float>() : nullptr;
    float* dxp = need_grad_x ? grads.grad_x.data_ptr<float>() : nullptr;
    float* accp = need_grad_params ? acc.data_ptr<float>() : nullptr;
    const int out_last = net.out_last(), in0 = net.in0(), in0_pad = net.in_pad[0];
    // W_0 with its rows zero-padded to in0_pad columns: B of the point-major input-gradient GEMM.
    std::vector<float> w0_padded;
    const float* w0p = net.w[0];
    if (in0 != in0_pad) {
      w0_padded.resize(static_cast<size_t>(net.out[0]) * in0_pad);
      copy_rows_padded(net.w[0], in0, net.out[0], in0, w0_padded.data(), in0_pad);
      w0p = w0_padded.data();
    }

    // One tile's backward pass; acc_c: this chunk's dW/db accumulators (nullptr without param grads).
    auto tile_backward = [&](int64_t tile, float* acc_c, float* xt, float* hidden_scratch, float* g0,
                             float* g1, float* apm, float* dx_tile) {
      const int64_t t0 = tile * T;
      const int nt = static_cast<int>(std::min<int64_t>(T, n - t0));
      const float* hidden = ap ? ap + tile * net.hidden_sum * T : hidden_scratch;
      if (!ap) {
        load_x_tile(net, xp, t0, nt, xt);
        tile_forward(net, xt, hidden_scratch, nullptr);
      }
      float* g = g0;  // G_{l+1}^T: gradient w.r.t. layer l's output, [out_l, T]
      float* gn = g1;
      transpose(gyp + t0 * out_last, out_last, nt, out_last, g, T);
      zero_columns(g, T, out_last, nt, T);  // padded points contribute nothing
      for (int l = L - 1; l >= 0; --l) {
        const int in = net.in[l], out = net.out[l], in_pad = net.in_pad[l];
        if (acc_c) {
          const float* bpm;  // A_l point-major [T, in_pad]
          ptrdiff_t ldb = in_pad;
          if (l == 0 && in % 8 == 0 && nt == T) {
            bpm = xp + t0 * in;
          } else {
            if (l == 0) {
              copy_rows_padded(xp + t0 * in, in, nt, in, apm, in_pad);
              if (nt < T) std::memset(apm + nt * in_pad, 0, sizeof(float) * (T - nt) * in_pad);
            } else {
              transpose(hidden + net.hidden_offset[l], T, in, T, apm, in_pad);
              zero_columns(apm, in_pad, T, in, in_pad);
            }
            bpm = apm;
          }
          gemm<Epi::kAccumulate>(
              out, in_pad, GemmArgs{T, g, T, 1, bpm, ldb, acc_c + dw_offset[l], in_pad, nullptr, nullptr});
          if (bias) {
            float* db = acc_c + db_offset[l];
            for (int m = 0; m < out; ++m) {
              Vec s = vzero();
              for (int t = 0; t < T; t += 8) s = vadd(s, vload(g + m * T + t));
              db[m] += vsum(s);
            }
          }
        }
        if (l > 0) {
          gemm<Epi::kMask>(
              in, T, GemmArgs{out, net.w[l], 1, in, g, T, gn, T, nullptr, hidden + net.hidden_offset[l]});
          std::swap(g, gn);
        } else if (dxp) {
          // Point-major, straight into dx rows when they are whole vectors: dX[t, :] = sum_m G^T[m, t] W_0[m,
          // :]
          float* dst = in0 == in0_pad ? dxp + t0 * in0 : dx_tile;
          gemm<Epi::kStore>(nt, in0_pad,
                            GemmArgs{out, g, 1, T, w0p, in0_pad, dst, in0_pad, nullptr, nullptr});
          if (dst == dx_tile) copy_rows_packed(dx_tile, in0_pad, nt, in0, dxp + t0 * in0);
        }
      }
    };

    at::parallel_for(0, chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
      const int64_t w = net.max_width;
      Scratch s(in0 * T + net.hidden_sum * T + 2 * w * T + T * net.max_in_pad + T * in0_pad + 128);
      float* xt = s.take(in0 * T);
      float* hidden_scratch = s.take(net.hidden_sum * T);
      float* g0 = s.take(w * T);
      float* g1 = s.take(w * T);
      float* apm = s.take(T * net.max_in_pad);
      float* dx_tile = s.take(T * in0_pad);
      for (int64_t c = chunk_begin; c < chunk_end; ++c) {
        const int64_t first = c * tiles / chunks, last = (c + 1) * tiles / chunks;
        float* acc_c = accp ? accp + c * acc_size : nullptr;
        for (int64_t tile = first; tile < last; ++tile)
          tile_backward(tile, acc_c, xt, hidden_scratch, g0, g1, apm, dx_tile);
      }
    });
  }

  if (need_grad_params) {
    const at::Tensor total = acc.sum(0);  // chunks in order: deterministic
    for (int l = 0; l < L; ++l) {
      grads.grad_weights.push_back(
          total.narrow(0, dw_offset[l], static_cast<int64_t>(net.out[l]) * net.in_pad[l])
              .view({net.out[l], net.in_pad[l]})
              .narrow(1, 0, net.in[l])
              .contiguous());
      if (bias) grads.grad_biases.push_back(total.narrow(0, db_offset[l], net.out[l]).clone());
    }
  }
  return grads;
}

// ---- autograd -----------------------------------------------------------------------------------------
namespace {

// Inputs: x, then params = [W_0 .. W_{L-1}, b_0 .. b_{L-1}] (no b without bias).
class FusedMLPFunction : public torch::autograd::Function<FusedMLPFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, at::TensorList params,
                            int64_t layers, bool save_activations) {
    std::vector<at::Tensor> weights(params.begin(), params.begin() + layers);
    std::vector<at::Tensor> biases(params.begin() + layers, params.end());
    FusedMLPForward fwd = fused_mlp_forward_cpu(x, weights, biases, save_activations);
    std::vector<at::Tensor> saved{x, fwd.activations};
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["layers"] = layers;
    return fwd.y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const int64_t layers = ctx->saved_data["layers"].toInt();
    const int64_t params = static_cast<int64_t>(saved.size()) - 2;
    std::vector<at::Tensor> weights(saved.begin() + 2, saved.begin() + 2 + layers);
    std::vector<at::Tensor> biases(saved.begin() + 2 + layers, saved.end());
    bool need_params = false;
    for (int64_t i = 0; i < params; ++i) need_params = need_params || ctx->needs_input_grad(1 + i);
    FusedMLPGrads g = fused_mlp_backward_cpu(grad_outputs[0], saved[0], weights, biases, saved[1],
                                             ctx->needs_input_grad(0), need_params);
    torch::autograd::variable_list out{g.grad_x};
    for (int64_t l = 0; l < layers; ++l) out.push_back(need_params ? g.grad_weights[l] : at::Tensor());
    for (int64_t l = 0; l < params - layers; ++l)
      out.push_back(need_params ? g.grad_biases[l] : at::Tensor());
    out.push_back(at::Tensor());  // layers
    out.push_back(at::Tensor());  // save_activations
    return out;
  }
};

}  // namespace

at::Tensor fused_mlp(const at::Tensor& x, const std::vector<at::Tensor>& weights,
                     const std::vector<at::Tensor>& biases, MLPActivations activations) {
  check_mlp_arguments(x, weights, biases);
  check_cpu_float(x, "x");
  bool needs_grad = x.requires_grad();
  for (const at::Tensor& w : weights) needs_grad = needs_grad || w.requires_grad();
  for (const at::Tensor& b : biases) needs_grad = needs_grad || b.requires_grad();
  if (!needs_grad || !c10::GradMode::is_enabled()) return fused_mlp_forward_cpu(x, weights, biases, false).y;
  std::vector<at::Tensor> params(weights);
  params.insert(params.end(), biases.begin(), biases.end());
  return FusedMLPFunction::apply(x, at::TensorList(params), static_cast<int64_t>(weights.size()),
                                 activations == MLPActivations::kSave);
}

}  // namespace nd
