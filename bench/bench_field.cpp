// field_train_step: forward + backward + Adam of the default NeRF field (hash grid L=16 F=2 T=19 +
// density and color MLPs) on 131072 random points, fused kernels vs the plain-LibTorch reference ops,
// measured alternately in one process.
#include <cstdio>

#include "bench/bench_common.h"
#include "core/threads.h"
#include "field/nerf_field.h"
#include "optim/adam.h"

using namespace nd;

namespace {
struct FieldStep {
  NerfField field{nullptr};
  std::unique_ptr<FusedAdam> adam;
  at::Tensor x;
  FieldStep(bool fused, int64_t n) {
    FieldConfig cfg;
    cfg.fused = fused;
    field = NerfField(cfg);
    adam = std::make_unique<FusedAdam>(std::vector<AdamGroup>{{"grid", field->grid_parameters(), 1e-2},
                                                              {"mlp", field->mlp_parameters(), 1e-3}},
                                       AdamOptions{});
    x = at::rand({n, 3}) * 2 - 1;
  }
  void run() {
    auto out = field->forward(x);
    // A loss that touches both outputs, as rendering does.
    auto loss = out.sigma.mean() + out.rgb.mean();
    adam->zero_grad();
    loss.backward();
    adam->step();
  }
};
}  // namespace

int main(int argc, char** argv) {
  const bool quick = bench::has_flag(argc, argv, "--quick");
  set_threads(0);
  keep_freed_memory();
  const int64_t n = 131072;
  torch::manual_seed(0);
  FieldStep fused(true, n), reference(false, n);
  const int rounds = quick ? 3 : 7;
  std::fprintf(stderr, "field_train_step: %d rounds of fused vs reference at N=%ld, %d threads\n", rounds,
               long(n), num_threads());
  auto [t_fused, t_ref] = bench::time_alternating([&] { fused.run(); }, [&] { reference.run(); }, rounds);
  std::fprintf(stderr, "  fused %.1f ms/step, reference %.1f ms/step\n", t_fused * 1e3, t_ref * 1e3);
  bench::print_figure("field_train_step", n / t_fused, "samples/s",
                      {{"points", n},
                       {"levels", 16},
                       {"features", 2},
                       {"log2_table", 19},
                       {"hidden", 64},
                       {"threads", num_threads()},
                       {"points_distribution", "uniform random"}},
                      n / t_ref);
  return 0;
}
