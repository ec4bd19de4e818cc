// hash_grid_forward, hash_grid_train: the hash grid encoding (default config: 16 levels × 2 features,
// 2^19 rows) on N random points, fused kernels vs the plain-LibTorch reference, measured alternately.
// On stderr: each fused pass alone (median and min wall time, and CPU time per thread, which is the
// figure to look at on a busy shared machine).
//   bench_hash_grid [--quick] [--n N]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "core/threads.h"
#include "field/hash_grid.h"

using namespace nd;

namespace {

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

void report(const char* what, int reps, const std::function<void()>& fn) {
  fn();
  std::vector<double> wall, cpu;
  for (int r = 0; r < reps; ++r) {
    const double w0 = bench::now_seconds(), c0 = cpu_seconds();
    fn();
    wall.push_back(bench::now_seconds() - w0);
    cpu.push_back((cpu_seconds() - c0) / num_threads());
  }
  std::fprintf(stderr, "  %-32s median %7.1f ms, min %7.1f ms, CPU/thread %7.1f ms\n", what,
               bench::median(wall) * 1e3, *std::min_element(wall.begin(), wall.end()) * 1e3,
               bench::median(cpu) * 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = bench::has_flag(argc, argv, "--quick");
  int64_t n = 131072;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--n") && i + 1 < argc) {
      n = std::stoll(argv[++i]);
    } else if (std::strcmp(argv[i], "--quick") != 0) {
      std::fprintf(stderr, "usage: bench_hash_grid [--quick] [--n N]\n");
      return 2;
    }
  }
  set_threads(0);
  torch::manual_seed(0);
  HashGrid grid(HashGridConfig{});
  const auto& layout = grid->layout();
  auto table = grid->table;
  auto x = at::rand({n, 3}) * 2 - 1;
  auto grad_out = at::randn({n, grid->output_dim()});
  table.mutable_grad() = at::zeros_like(table);  // as in training: allocated once, zeroed in place
  const auto t = table.detach();
  const nlohmann::json config = {{"points", n},
                                 {"levels", 16},
                                 {"features", 2},
                                 {"log2_table", 19},
                                 {"threads", num_threads()},
                                 {"points_distribution", "uniform random"}};

  std::fprintf(stderr, "hash grid, N=%ld, %d threads, fused passes:\n", static_cast<long>(n), num_threads());
  const int reps = quick ? 5 : 20;
  report("forward", reps, [&] { hash_grid_forward_cpu(x, t, layout); });
  report("backward (table)", reps,
         [&] { hash_grid_backward_cpu(x, t, layout, grad_out, table.grad(), false); });
  report("backward (table and x)", reps,
         [&] { hash_grid_backward_cpu(x, t, layout, grad_out, table.grad(), true); });
  report("forward+backward (autograd)", reps, [&] { grid->forward(x).backward(grad_out); });

  const int rounds = quick ? 1 : 3;
  std::fprintf(stderr, "fused vs reference, %d rounds each (the reference takes seconds)\n", rounds);
  auto [f_fused, f_ref] = bench::time_alternating(
      [&] {
        at::NoGradGuard no_grad;
        grid->forward(x);
      },
      [&] {
        at::NoGradGuard no_grad;
        grid->forward_reference(x);
      },
      rounds);
  std::fprintf(stderr, "  forward: fused %.1f ms, reference %.1f ms\n", f_fused * 1e3, f_ref * 1e3);
  bench::print_figure("hash_grid_forward", n / f_fused, "samples/s", config, n / f_ref);
  auto [b_fused, b_ref] =
      bench::time_alternating([&] { grid->forward(x).backward(grad_out); },
                              [&] { grid->forward_reference(x).backward(grad_out); }, rounds);
  std::fprintf(stderr, "  forward+backward: fused %.1f ms, reference %.1f ms\n", b_fused * 1e3, b_ref * 1e3);
  bench::print_figure("hash_grid_train", n / b_fused, "samples/s", config, n / b_ref);
  return 0;
}
