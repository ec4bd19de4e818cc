#include "optim/adam.h"

#include <ATen/Parallel.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include <cmath>
#include <cstring>
#include <set>

#include "core/error.h"

namespace nd {

namespace {

// Elements per parallel task: large enough that the pool's overhead is noise, small enough to share
// a 12M-element table between the threads evenly.
constexpr int64_t kGrain = 1 << 15;

struct AdamScalars {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, inv_sqrt_bc2, step_size, eps, weight_decay;
};

// The update of elements [begin, end): AVX2 (GCC won't vectorise std::sqrt without -fno-math-errno),
// then a scalar tail.
void adam_range(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                int64_t begin, int64_t end, const AdamScalars& s) {
  int64_t i = begin;
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 b1 = _mm256_set1_ps(s.beta1), c1 = _mm256_set1_ps(s.one_minus_beta1);
  const __m256 b2 = _mm256_set1_ps(s.beta2), c2 = _mm256_set1_ps(s.one_minus_beta2);
  const __m256 ib = _mm256_set1_ps(s.inv_sqrt_bc2), lr = _mm256_set1_ps(s.step_size);
  const __m256 eps = _mm256_set1_ps(s.eps), wd = _mm256_set1_ps(s.weight_decay);
  for (; i + 8 <= end; i += 8) {
    const __m256 pi = _mm256_loadu_ps(p + i);
    const __m256 grad = _mm256_fmadd_ps(wd, pi, _mm256_loadu_ps(g + i));
    const __m256 mi = _mm256_fmadd_ps(b1, _mm256_loadu_ps(m + i), _mm256_mul_ps(c1, grad));
    const __m256 vi =
        _mm256_fmadd_ps(b2, _mm256_loadu_ps(v + i), _mm256_mul_ps(c2, _mm256_mul_ps(grad, grad)));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    const __m256 denom = _mm256_fmadd_ps(_mm256_sqrt_ps(vi), ib, eps);
    _mm256_storeu_ps(p + i, _mm256_fnmadd_ps(lr, _mm256_div_ps(mi, denom), pi));
  }
#endif
  for (; i < end; ++i) {
    const float grad = g[i] + s.weight_decay * p[i];
    const float mi = s.beta1 * m[i] + s.one_minus_beta1 * grad;
    const float vi = s.beta2 * v[i] + s.one_minus_beta2 * (grad * grad);
    m[i] = mi;
    v[i] = vi;
    p[i] -= s.step_size * (mi / (std::sqrt(vi) * s.inv_sqrt_bc2 + s.eps));
  }
}

std::string shape_string(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

FusedAdam::FusedAdam(std::vector<AdamGroup> groups, AdamOptions options)
    : groups_(std::move(groups)), options_(options) {
  require(options_.beta1 >= 0 && options_.beta1 < 1 && options_.beta2 >= 0 && options_.beta2 < 1,
          "optimizer: betas must be in [0, 1)");
  require(options_.eps >= 0, "optimizer: eps must be >= 0");
  std::set<std::string> names;
  for (const auto& g : groups_) {
    require(names.insert(g.name).second, "optimizer: parameter group '" + g.name + "' appears twice");
    std::vector<ParamState> states;
    for (const auto& p : g.params) {
      TORCH_CHECK(p.defined() && p.scalar_type() == at::kFloat && p.is_contiguous() && p.device().is_cpu(),
                  "FusedAdam: parameters must be contiguous float32 CPU tensors (group ", g.name, ")");
      ParamState s;
      s.exp_avg = at::zeros_like(p, at::MemoryFormat::Contiguous);
      s.exp_avg_sq = at::zeros_like(p, at::MemoryFormat::Contiguous);
      states.push_back(std::move(s));
    }
    state_.push_back(std::move(states));
  }
}

void FusedAdam::step() {
  ++steps_;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const auto& group = groups_[gi];
    for (size_t pi = 0; pi < group.params.size(); ++pi) {
      const at::Tensor& p = group.params[pi];
      if (!p.grad().defined()) continue;
      ParamState& st = state_[gi][pi];
      const at::Tensor g = p.grad().contiguous();
      TORCH_CHECK(g.scalar_type() == at::kFloat && g.sizes() == p.sizes(),
                  "FusedAdam: bad gradient in group ", group.name);
      ++st.step;
      const double bc1 = 1 - std::pow(options_.beta1, static_cast<double>(st.step));
      const double bc2 = 1 - std::pow(options_.beta2, static_cast<double>(st.step));
      AdamScalars s;
      s.beta1 = static_cast<float>(options_.beta1);
      s.one_minus_beta1 = static_cast<float>(1 - options_.beta1);
      s.beta2 = static_cast<float>(options_.beta2);
      s.one_minus_beta2 = static_cast<float>(1 - options_.beta2);
      s.inv_sqrt_bc2 = static_cast<float>(1 / std::sqrt(bc2));
      s.step_size = static_cast<float>(group.lr / bc1);
      s.eps = static_cast<float>(options_.eps);
      s.weight_decay = static_cast<float>(group.weight_decay);
      float* pp = p.data_ptr<float>();
      const float* gp = g.data_ptr<float>();
      float* mp = st.exp_avg.data_ptr<float>();
      float* vp = st.exp_avg_sq.data_ptr<float>();
      at::parallel_for(0, p.numel(), kGrain,
                       [&](int64_t begin, int64_t end) { adam_range(pp, gp, mp, vp, begin, end, s); });
      // We wrote through raw pointers: tell autograd that p changed (a graph that saved p notices).
      p.unsafeGetTensorImpl()->bump_version();
    }
  }
}

void FusedAdam::zero_grad() {
  for (const auto& group : groups_) {
    for (const auto& p : group.params) {
      at::Tensor g = p.grad();
      if (!g.defined()) continue;
      if (!g.is_contiguous() || g.scalar_type() != at::kFloat) {
        g.zero_();
        continue;
      }
      float* d = g.data_ptr<float>();
      at::parallel_for(0, g.numel(), kGrain, [&](int64_t begin, int64_t end) {
        std::memset(d + begin, 0, sizeof(float) * (end - begin));
      });
      g.unsafeGetTensorImpl()->bump_version();
    }
  }
}

AdamGroup& FusedAdam::group(const std::string& name) {
  for (auto& g : groups_)
    if (g.name == name) return g;
  throw InputError("optimizer: no parameter group named '" + name + "'");
}

void FusedAdam::set_lr(const std::string& name, double lr) { group(name).lr = lr; }

double FusedAdam::lr(const std::string& name) const { return const_cast<FusedAdam*>(this)->group(name).lr; }

std::map<std::string, at::Tensor> FusedAdam::state(const std::string& prefix) const {
  std::map<std::string, at::Tensor> out;
  out[prefix + "steps"] = at::scalar_tensor(steps_, at::kLong);
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
      const std::string key = prefix + groups_[gi].name + "." + std::to_string(pi) + ".";
      const ParamState& st = state_[gi][pi];
      out[key + "exp_avg"] = st.exp_avg.clone();
      out[key + "exp_avg_sq"] = st.exp_avg_sq.clone();
      out[key + "step"] = at::scalar_tensor(st.step, at::kLong);
    }
  }
  return out;
}

void FusedAdam::load_state(const std::map<std::string, at::Tensor>& state, const std::string& prefix) {
  auto find = [&](const std::string& key) -> const at::Tensor& {
    auto it = state.find(key);
    require(it != state.end() && it->second.defined(), key + ": missing from the optimizer state");
    return it->second;
  };
  auto scalar = [&](const std::string& key) {
    const at::Tensor& t = find(key);
    require(t.numel() == 1 && !t.is_floating_point(), key + ": expected an integer scalar");
    const int64_t v = t.item<int64_t>();
    require(v >= 0, key + ": must be >= 0");
    return v;
  };
  // Check everything before changing anything, so that a bad checkpoint leaves the optimizer as it was.
  const int64_t steps = scalar(prefix + "steps");
  std::vector<std::vector<ParamState>> loaded(groups_.size());
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
      const std::string key = prefix + groups_[gi].name + "." + std::to_string(pi) + ".";
      const at::Tensor& p = groups_[gi].params[pi];
      ParamState st;
      for (const char* name : {"exp_avg", "exp_avg_sq"}) {
        const at::Tensor& t = find(key + name);
        require(t.sizes() == p.sizes(), key + name + ": shape " + shape_string(t.sizes()) +
                                            " does not match the parameter's " + shape_string(p.sizes()));
        require(t.is_floating_point(), key + name + ": expected floating-point values");
        (std::string(name) == "exp_avg" ? st.exp_avg : st.exp_avg_sq) = t.to(at::kFloat).contiguous().clone();
      }
      st.step = scalar(key + "step");
      loaded[gi].push_back(std::move(st));
    }
  }
  state_ = std::move(loaded);
  steps_ = steps;
}

}  // namespace nd
