// Tiny-prior benchmarks (shared/spec/bench.md):
//   prior_train_throughput  images/s of a training step (forward + backward + Adam + EMA) at the training
//                           resolution, batch 64, the shipped prior's architecture
//   prior_sample            seconds for 8 images × 50 DDIM steps with classifier-free guidance (the shipped
//                           weights when present)
// Usage: bench_prior [--quick] [train|sample]
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <filesystem>

#include "bench/bench_common.h"
#include "core/threads.h"
#include "optim/adam.h"
#include "prior/prior_sampler.h"
#include "prior/tiny_prior.h"

using namespace nd;
using namespace nd::bench;

namespace {

std::unique_ptr<TinyPrior> bench_prior(bool* shipped) {
  const std::string path = NERFDREAM_SOURCE_ROOT "/models/tiny-prior/prior.safetensors";
  *shipped = std::filesystem::exists(path);
  if (*shipped) return TinyPrior::load(path);
  return std::make_unique<TinyPrior>(TinyPriorConfig{});
}

void train_throughput(bool quick) {
  bool shipped = false;
  auto loaded = bench_prior(&shipped);
  TinyPrior prior(loaded->config());  // fresh weights: the step's cost does not depend on them
  const int64_t b = 64, r = prior.config().resolution;
  std::vector<at::Tensor> params;
  for (const auto& [name, p] : prior.named_parameters()) params.push_back(p);
  std::vector<at::Tensor> ema;
  for (auto& p : params) ema.push_back(p.detach().clone());
  FusedAdam adam({AdamGroup{"model", params, 1e-4, 0.0}}, AdamOptions{0.9, 0.999, 1e-8});
  const at::Tensor x0 = at::rand({b, 3, r, r}) * 2 - 1;
  const at::Tensor ids = prior.tokenizer().encode("a red cube, front view").unsqueeze(0).expand({b, -1});
  const at::Tensor views = view_features(at::tensor({15.f, 0.f, 3.f, 45.f}).view({1, 4}).expand({b, 4}));
  prior.train(true);
  auto step = [&] {
    const at::Tensor t = at::randint(1000, {b}, at::kLong);
    const at::Tensor noise = at::randn_like(x0);
    const at::Tensor xt = prior.schedule().add_noise(x0, noise, t);
    adam.zero_grad();
    const at::Tensor loss = (prior.predict(xt, t, ids, views) - noise).pow(2).mean();
    loss.backward();
    adam.step();
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) ema[i].mul_(0.999).add_(params[i].detach(), 0.001);
  };
  const double seconds = time_median(step, quick ? 3 : 15);
  print_figure("prior_train_throughput", b / seconds, "images/s",
               {{"batch", b},
                {"resolution", r},
                {"parameters", prior.parameter_count()},
                {"architecture", prior.config().to_json()["unet"]},
                {"threads", at::get_num_threads()}});
}

void sample_time(bool quick) {
  bool shipped = false;
  auto prior = bench_prior(&shipped);
  PriorSampleOptions o;
  o.steps = 50;
  const std::vector<std::string> prompts(8, "a red cube, front view");
  const std::vector<View> views(8, View{15, 0, 3, 45});
  const double seconds = time_median([&] { sample_prior(*prior, prompts, views, o); }, quick ? 1 : 3);
  print_figure("prior_sample", seconds, "s",
               {{"images", 8},
                {"steps", 50},
                {"scheduler", "ddim"},
                {"cfg", o.guidance_scale},
                {"resolution", prior->config().resolution},
                {"weights", shipped ? "shipped" : "random (no shipped prior)"},
                {"threads", at::get_num_threads()}});
}

}  // namespace

int main(int argc, char** argv) {
  set_threads(0);
  const bool quick = has_flag(argc, argv, "--quick");
  const bool only_train = has_flag(argc, argv, "train"), only_sample = has_flag(argc, argv, "sample");
  if (!only_sample) train_throughput(quick);
  if (!only_train) sample_time(quick);
  return 0;
}
