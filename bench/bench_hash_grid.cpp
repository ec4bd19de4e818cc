// Hash grid encoding: fused kernels vs the plain-LibTorch reference, forward and backward, on N random
// points (default config: 16 levels × 2 features, 2^19 rows). Prints JSON lines (shared/spec/bench.md).
//   bench_hash_grid [--quick] [--n N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/threads.h"
#include "field/hash_grid.h"

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median time in ms of fn() over `reps` runs (after one warm-up run).
double time_ms(int reps, const std::function<void()>& fn) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_ms();
    fn();
    t.push_back(now_ms() - t0);
  }
  return median(t);
}

void print(const std::string& name, double value, const char* unit, double baseline, int64_t n) {
  std::printf(
      "{\"name\": \"%s\", \"value\": %.4g, \"unit\": \"%s\", \"baseline\": %.4g, \"ratio\": %.4g, "
      "\"config\": {\"n\": %lld, \"levels\": 16, \"features_per_level\": 2, \"log2_table_size\": 19, "
      "\"threads\": %d}}\n",
      name.c_str(), value, unit, baseline, baseline / value, static_cast<long long>(n), nd::num_threads());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int64_t n = 131072;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--n") && i + 1 < argc) n = std::stoll(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_hash_grid [--quick] [--n N]\n");
      return 2;
    }
  }
  nd::set_threads(0);
  torch::manual_seed(0);
  nd::HashGrid grid(nd::HashGridConfig{});
  auto table = grid->table;
  auto x = at::rand({n, 3}) * 2 - 1;
  auto grad_out = at::randn({n, grid->output_dim()});
  const int reps = quick ? 5 : 20, ref_reps = quick ? 1 : 3;
  table.mutable_grad() = at::zeros_like(table);  // as in training: zeroed once per step by the optimizer

  // Fused forward through the autograd op (the table requires grad, as in training).
  const double fwd = time_ms(reps, [&] { grid->forward(x); });
  at::Tensor out;
  const double bwd = time_ms(reps, [&] {
    out = grid->forward(x);
    const double t0 = now_ms();
    out.backward(grad_out);
    (void)t0;
  });
  // Backward alone: the kernel writing into table.grad.
  auto xc = x.contiguous();
  const double bwd_kernel = time_ms(reps, [&] {
    nd::hash_grid_backward_cpu(xc, table.detach(), grid->layout(), grad_out, table.grad(), false);
  });
  auto xr = x.clone().requires_grad_(true);
  const double bwd_x = time_ms(reps, [&] {
    nd::hash_grid_backward_cpu(xc, table.detach(), grid->layout(), grad_out, table.grad(), true);
  });
  (void)xr;
  std::fprintf(stderr, "fused: forward %.1f ms, forward+backward %.1f ms, backward kernel %.1f ms (with d/dx %.1f ms)\n",
               fwd, bwd, bwd_kernel, bwd_x);

  const double ref_fwd = time_ms(ref_reps, [&] {
    at::NoGradGuard no_grad;
    grid->forward_reference(x);
  });
  const double ref_both = time_ms(ref_reps, [&] { grid->forward_reference(x).backward(grad_out); });
  std::fprintf(stderr, "reference: forward %.1f ms, forward+backward %.1f ms\n", ref_fwd, ref_both);

  print("hash_grid_forward_ms", fwd, "ms", ref_fwd, n);
  print("hash_grid_forward_backward_ms", bwd, "ms", ref_both, n);
  print("hash_grid_train_samples_per_s", n / (bwd / 1000.0), "samples/s", n / (ref_both / 1000.0), n);
  return 0;
}
