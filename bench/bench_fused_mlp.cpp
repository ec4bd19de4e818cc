// Fused MLP vs the plain-LibTorch reference (at::linear/at::relu), forward and forward+backward, for the
// NeRF field's two MLPs (32→64→16 density, 15→64→3 color) on N points, all cores, alternating runs.
// Prints JSON lines (shared/spec/bench.md): times in ms (ratio = reference / fused) and GFLOP/s, where
// forward+backward counts 3× the forward FLOPs (not the forward recomputed in backward).
//   bench_fused_mlp [--quick] [--n N] [--threads T]
#include <torch/csrc/autograd/autograd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_common.h"
#include "core/threads.h"
#include "field/fused_mlp.h"

namespace {

using nd::bench::time_alternating;

void print_time(const std::string& name, double fused_s, double ref_s, const nlohmann::json& config) {
  nlohmann::json j = {{"name", name},
                      {"value", fused_s * 1e3},
                      {"unit", "ms"},
                      {"baseline", ref_s * 1e3},
                      {"ratio", ref_s / fused_s},
                      {"config", config}};
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

struct Shape {
  int in, hidden, hidden_layers, out;
  std::string name() const {
    std::string s = std::to_string(in);
    for (int l = 0; l < hidden_layers; ++l) s += "-" + std::to_string(hidden);
    return s + "-" + std::to_string(out);
  }
};

// Returns {fused, reference} seconds of one forward+backward.
std::pair<double, double> run(const Shape& s, int64_t n, int rounds) {
  at::manual_seed(0);
  std::vector<at::Tensor> w, b;
  double macs = 0;  // multiply-adds per point
  for (int l = 0; l <= s.hidden_layers; ++l) {
    const int in = l == 0 ? s.in : s.hidden, out = l == s.hidden_layers ? s.out : s.hidden;
    w.push_back((at::randn({out, in}) / std::sqrt(in)).requires_grad_(true));
    b.push_back((0.1 * at::randn({out})).requires_grad_(true));
    macs += double(in) * out;
  }
  at::Tensor x = at::randn({n, s.in}).requires_grad_(true);
  at::Tensor gy = at::randn({n, s.out});
  std::vector<at::Tensor> inputs{x};
  inputs.insert(inputs.end(), w.begin(), w.end());
  inputs.insert(inputs.end(), b.begin(), b.end());
  const nlohmann::json config = {
      {"n", n}, {"mlp", s.name()}, {"threads", nd::num_threads()}, {"tile", nd::kFusedMLPTile}};
  const double fwd_flops = 2 * macs * n, train_flops = 3 * fwd_flops;  // backward: input and weight grads

  auto fused_fwd = [&] {
    torch::NoGradGuard no_grad;
    nd::fused_mlp(x, w, b);
  };
  auto ref_fwd = [&] {
    torch::NoGradGuard no_grad;
    nd::fused_mlp_reference(x, w, b);
  };
  auto train = [&](nd::MLPActivations mode) {
    return [&, mode] { torch::autograd::grad({nd::fused_mlp(x, w, b, mode)}, inputs, {gy}); };
  };
  auto ref_train = [&] { torch::autograd::grad({nd::fused_mlp_reference(x, w, b)}, inputs, {gy}); };

  std::fprintf(stderr, "fused_mlp %s, N = %lld, %d threads\n", s.name().c_str(), static_cast<long long>(n),
               nd::num_threads());
  auto [f, r] = time_alternating(fused_fwd, ref_fwd, rounds);
  print_time("fused_mlp.forward." + s.name(), f, r, config);
  nd::bench::print_figure("fused_mlp.forward_gflops." + s.name(), fwd_flops / f * 1e-9, "GFLOP/s", config,
                          fwd_flops / r * 1e-9);
  auto [fr, rr] = time_alternating(train(nd::MLPActivations::kRecompute), ref_train, rounds);
  print_time("fused_mlp.forward_backward." + s.name(), fr, rr, config);
  nd::bench::print_figure("fused_mlp.forward_backward_gflops." + s.name(), train_flops / fr * 1e-9, "GFLOP/s",
                          config, train_flops / rr * 1e-9);
  auto [fs, rs] = time_alternating(train(nd::MLPActivations::kSave), ref_train, rounds);
  print_time("fused_mlp.forward_backward_saved." + s.name(), fs, rs, config);
  return {fr, rr};
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int64_t n = 131072;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--n") && i + 1 < argc) {
      n = std::stoll(argv[++i]);
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::stoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_fused_mlp [--quick] [--n N] [--threads T]\n");
      return 2;
    }
  }
  nd::set_threads(threads);
  const int rounds = quick ? 5 : 21;
  auto [density, density_ref] = run({32, 64, 1, 16}, n, rounds);
  auto [color, color_ref] = run({15, 64, 1, 3}, n, rounds);
  // The NeRF field's budget: both MLPs' forward+backward in ~40 ms at N = 131072 on 2 cores.
  print_time("fused_mlp.field_mlps_forward_backward", density + color, density_ref + color_ref,
             {{"n", n}, {"mlps", "32-64-16 + 15-64-3"}, {"threads", nd::num_threads()}});
  return 0;
}
